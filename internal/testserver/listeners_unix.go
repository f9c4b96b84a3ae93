//go:build unix

package testserver

import (
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenBacklogZero calls listen(2) again on a listening socket, with a backlog of 0.
// Calling listen on a socket that already listens only changes its backlog, on Linux
// and on the BSDs. With a backlog of 0 the accept queue has room for one connection.
func listenBacklogZero(ln *net.TCPListener) error {
	raw, err := ln.SyscallConn()
	if err != nil {
		return err
	}
	var listenErr error
	if err := raw.Control(func(fd uintptr) { listenErr = unix.Listen(int(fd), 0) }); err != nil {
		return err
	}
	if listenErr != nil {
		return fmt.Errorf("listen with backlog 0: %w", listenErr)
	}
	return nil
}

// smallReceiveBuffer is a net.ListenConfig Control function that sets SO_RCVBUF to
// deafReceiveBuffer on the socket before it listens.
func smallReceiveBuffer(_, _ string, c syscall.RawConn) error {
	var setErr error
	if err := c.Control(func(fd uintptr) {
		setErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, deafReceiveBuffer)
	}); err != nil {
		return err
	}
	if setErr != nil {
		return fmt.Errorf("set SO_RCVBUF: %w", setErr)
	}
	return nil
}
