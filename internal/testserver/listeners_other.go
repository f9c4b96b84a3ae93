//go:build !unix

package testserver

import (
	"errors"
	"net"
	"runtime"
	"syscall"
)

// errNoListeners is why BlackHole and Deaf fail on systems that are not a Unix: the
// lessons run on Unix only.
var errNoListeners = errors.New("not available on " + runtime.GOOS + ": the lessons run on a Unix (Linux, macOS, FreeBSD)")

func listenBacklogZero(*net.TCPListener) error { return errNoListeners }

func smallReceiveBuffer(string, string, syscall.RawConn) error { return errNoListeners }
