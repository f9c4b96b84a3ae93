//go:build !unix

// connects needs Unix system calls, as the stages do.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "connects: needs a Unix system (Linux, macOS, FreeBSD)")
	os.Exit(2)
}
