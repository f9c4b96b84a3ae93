//go:build !unix

// The stages this program measures are made of Unix system calls, and on
// Windows, or any other system that is not a Unix, they build into programs
// that only say where to run them instead. So measure says the same.
package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	fmt.Fprintf(os.Stderr, "measure: the stages it measures use Unix system calls, and this is %s.\n", runtime.GOOS)
	fmt.Fprintln(os.Stderr, "Run it on Linux: in WSL 2 on Windows, or in a Linux VM (macOS and FreeBSD work too).")
	os.Exit(2)
}
