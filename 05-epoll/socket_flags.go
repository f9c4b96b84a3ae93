//go:build linux || freebsd

// socket_flags.go makes stage 05's sockets on Linux (and FreeBSD), where
// socket(2) takes the descriptor's flags in its type argument. Go's net
// package does the same in net/sock_cloexec.go; macOS has no such flags, and
// socket_fcntl.go makes its sockets the way stages 02–04 do.

package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// newSocket makes a nonblocking TCP socket in one system call. socket(2)
// returns a descriptor, a small integer that names the endpoint in every
// later call; its family is the server address's: AF_INET for IPv4, AF_INET6
// for IPv6. Two flags ride in the type argument:
//
//   - SOCK_NONBLOCK sets O_NONBLOCK, which stages 02–04 set afterwards with
//     two fcntl(2) calls (F_GETFL, then F_SETFL): two system calls fewer per
//     request, for the same socket;
//   - SOCK_CLOEXEC closes the descriptor in any program this one might exec
//     (as EPOLL_CLOEXEC does for the epoll instance). This program execs
//     nothing; Go's net sets it on every socket, and it costs nothing here.
func newSocket(r *request) (int, error) {
	fd, err := unix.Socket(r.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	r.record("socket", fd, err)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	return fd, nil
}
