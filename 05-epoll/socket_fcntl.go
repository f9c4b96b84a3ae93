//go:build unix && !linux && !freebsd

// socket_fcntl.go makes stage 05's sockets on macOS (and any other Unix
// whose socket(2) takes no flags), the way stages 02–04 do: socket(2), then
// O_NONBLOCK with fcntl(2). Go's net package does the same on macOS, in
// net/sys_cloexec.go. On Linux, socket_flags.go does it in one call.

package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// newSocket makes a TCP socket with socket(2), in the server address's
// family (AF_INET for IPv4, AF_INET6 for IPv6), and makes it nonblocking
// with fcntl(2): read the file status flags (F_GETFL), then write them back
// with O_NONBLOCK added (F_SETFL). Close-on-exec, which Linux sets in the
// same call, would be one more fcntl (F_SETFD FD_CLOEXEC); this program
// execs nothing, so it goes without.
func newSocket(r *request) (int, error) {
	fd, err := unix.Socket(r.family, unix.SOCK_STREAM, 0)
	r.record("socket", fd, err)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	r.record("fcntl", flags, err)
	if err == nil {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags|unix.O_NONBLOCK)
		r.record("fcntl", 0, err)
	}
	if err != nil {
		closeSocket(r, fd)
		return -1, fmt.Errorf("fcntl O_NONBLOCK: %w", err)
	}
	return fd, nil
}
