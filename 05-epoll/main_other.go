//go:build !linux

// Stage 05-epoll needs Linux: epoll(7) is Linux's own system call. This file
// stands in for main.go elsewhere, so that `go build ./...` still works on
// macOS and FreeBSD, and running the stage says plainly why it cannot run.
// Those systems have kqueue(2) instead, which the Go runtime uses for
// goroutines there (stage 06).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
)

const stage = "05-epoll"

var errNotLinux = fmt.Errorf("epoll(7) exists only on Linux, and this is %s: run stage 04 (select) or 06 (goroutines, on kqueue here) instead, or this stage on a Linux machine or VM", runtime.GOOS)

func main() {
	fmt.Fprintf(os.Stderr, "%s: %v\n", stage, errNotLinux)
	os.Exit(2)
}

// addStageFlags accepts the Linux build's flags, so scripts behave the same.
func addStageFlags(fs *flag.FlagSet) {
	fs.Duration("timeout", 0, "longest sleep of one epoll_wait (Linux only)")
	fs.Bool("edge", false, "edge-triggered epoll (Linux only)")
}

// fetchAll fails every request: there is no epoll here.
func fetchAll(rn *run) {
	for _, r := range rn.requests {
		r.begin()
		r.finish(errNotLinux)
	}
}
