//go:build unix && !linux

// epoll_other.go stands in for epoll.go where there is no epoll: the model
// -model epoll-goroutines is Linux's, and elsewhere each request says so.

package main

import (
	"fmt"
	"runtime"
)

func startOwnPoller(*run) error {
	return fmt.Errorf("-model epoll-goroutines needs epoll(7), which is Linux's, and this is %s: use -model goroutines, whose runtime netpoller uses kqueue here", runtime.GOOS)
}

func stopOwnPoller() {}

func fetchOnOwnPoller(*request) error { return nil }
