//go:build unix && !linux && !darwin && !freebsd

// other.go stands in for epoll.go and kqueue.go on the Unix systems that
// have neither epoll(7) (Linux) nor the kqueue(2) this stage is built for
// (macOS, FreeBSD): the stage builds, and every request fails saying why.

package main

import (
	"fmt"
	"runtime"
)

// waitCall is the name the report would give the wait.
const waitCall = "wait"

// watcher is never made here.
type watcher struct{}

func newWatcher(*run) (*watcher, error) {
	return nil, fmt.Errorf("this stage runs on Linux (epoll) and on macOS and FreeBSD (kqueue), and this is %s: run stage 04 (select) or 06 (goroutines) instead, or this stage on a Linux machine or VM", runtime.GOOS)
}

func (*watcher) close(*run)                    {}
func (*watcher) watch(*conn, interest) error   { return nil }
func (*watcher) wait(*run, int) ([]int, error) { return nil, nil }
