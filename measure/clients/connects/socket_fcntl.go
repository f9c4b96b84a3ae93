//go:build unix && !linux && !freebsd

package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// nonblockingSocket makes a TCP socket and sets O_NONBLOCK with fcntl(2), as
// stage 05 does on these systems (its socket_fcntl.go).
func nonblockingSocket(family int) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("fcntl O_NONBLOCK: %w", err)
	}
	return fd, nil
}
