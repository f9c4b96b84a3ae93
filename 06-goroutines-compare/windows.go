//go:build !unix

// This lesson is made of Unix system calls (socket, connect, read, write,
// select, epoll, kqueue), called through golang.org/x/sys/unix, which has
// none of them on Windows. So on Windows, and on any other system that is
// not a Unix, the stage builds into this program alone, which says where to
// run the lessons instead. Windows has its own ways to wait for many sockets
// (select in Winsock, WSAPoll, and the completion-based IOCP: see
// docs/select-poll-epoll.md), but they are not this course's.
package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	fmt.Fprintf(os.Stderr, "06-goroutines-compare: these lessons use Unix system calls, and this is %s.\n", runtime.GOOS)
	fmt.Fprintln(os.Stderr, "Run them on Linux: in WSL 2 on Windows, or in a Linux VM (macOS and FreeBSD work too).")
	os.Exit(2)
}
