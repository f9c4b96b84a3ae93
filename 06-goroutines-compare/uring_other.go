//go:build unix && !linux

// uring_other.go stands in for uring.go where there is no io_uring, which is
// Linux's: -model io_uring says so and does not start.

package main

import (
	"fmt"
	"runtime"
)

func uringAvailable() error {
	return fmt.Errorf("-model io_uring needs io_uring, which is Linux's, and this is %s", runtime.GOOS)
}

func fetchAllOnRing(*run) {}
