//go:build unix && !linux && !darwin && !freebsd

// Stage 05-epoll needs epoll(7), which is Linux's own system call, or its
// twin on kqueue(2) for macOS and FreeBSD (main_kqueue.go). This file stands
// in for them on any other system, so that `go build ./...` still works
// there, and running the stage says plainly why it cannot run.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
)

const stage = "05-epoll"

var errNotLinux = fmt.Errorf("this stage runs on Linux (epoll), macOS and FreeBSD (kqueue), and this is %s: run stage 04 (select) or 06 (goroutines) instead, or this stage on a Linux machine or VM", runtime.GOOS)

func main() {
	fmt.Fprintf(os.Stderr, "%s: %v\n", stage, errNotLinux)
	os.Exit(2)
}

// addStageFlags accepts the Linux build's flags, so scripts behave the same.
func addStageFlags(fs *flag.FlagSet) {
	fs.Duration("timeout", 0, "longest sleep of one epoll_wait (Linux) or kevent wait (macOS, FreeBSD)")
	fs.Bool("edge", false, "edge-triggered epoll or kqueue (Linux, macOS, FreeBSD)")
}

// fetchAll fails every request: there is no epoll here.
func fetchAll(rn *run) {
	for _, r := range rn.requests {
		r.begin()
		r.finish(errNotLinux)
	}
}
