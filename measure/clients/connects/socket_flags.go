//go:build linux || freebsd

package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// nonblockingSocket makes a nonblocking TCP socket in one call, as stage 05
// does on these systems (its socket_flags.go).
func nonblockingSocket(family int) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	return fd, nil
}
