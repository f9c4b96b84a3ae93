package testserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
)

// This file holds two listeners that stand in for servers that break a client
// before HTTP even starts. They are not part of the test server: a stage's tests
// point one request at them to check how its client fails and that it gives up in
// time. Each lives on a loopback address of its own with a free port.

// deafReceiveBuffer is the receive buffer (SO_RCVBUF) of a DeafListener's connections:
// small, so that a client's large request fills it, and then the client's send buffer
// behind it, soon.
const deafReceiveBuffer = 64 << 10

// loopbackFor is the loopback address, with port 0, of network "tcp4" or "tcp6".
func loopbackFor(network string) (string, error) {
	switch network {
	case "tcp4":
		return "127.0.0.1:0", nil
	case "tcp6":
		return "[::1]:0", nil
	}
	return "", fmt.Errorf("network %q: want tcp4 or tcp6", network)
}

// Hole is a listener that never completes a TCP handshake: a connect to it waits,
// sending its SYN again and again, for as long as the client lets it, as a connect to a
// host behind a firewall that drops packets does. Make one with BlackHole.
type Hole struct {
	listener *net.TCPListener
	filler   net.Conn // the one connection that fills the accept queue

	closeOnce sync.Once
	closeErr  error
}

// BlackHole listens on a free port of the loopback address of network ("tcp4" for
// 127.0.0.1, "tcp6" for ::1) with a listen backlog of 0, which leaves room for one
// connection in the accept queue, and fills it at once with a connection it never
// accepts. The kernel then drops every SYN that comes after. Close it when done.
func BlackHole(network string) (*Hole, error) {
	addr, err := loopbackFor(network)
	if err != nil {
		return nil, fmt.Errorf("black hole: %w", err)
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("black hole: %w", err)
	}
	h := &Hole{listener: ln.(*net.TCPListener)}
	// net.Listen asks for the largest backlog there is; listen(2) again shrinks it.
	if err := listenBacklogZero(h.listener); err != nil {
		h.Close()
		return nil, fmt.Errorf("black hole: %w", err)
	}
	// net.Dial returns once the handshake is complete, so the filler is in the
	// queue from now on. Nobody accepts it, so it stays there until Close.
	if h.filler, err = net.Dial(network, h.Addr().String()); err != nil {
		h.Close()
		return nil, fmt.Errorf("black hole: fill the accept queue: %w", err)
	}
	return h, nil
}

// Addr is the address of the black hole, to point a client at.
func (h *Hole) Addr() *net.TCPAddr {
	return h.listener.Addr().(*net.TCPAddr)
}

// Close closes the filler and the listener. Calling it again returns the same result.
func (h *Hole) Close() error {
	h.closeOnce.Do(func() {
		if h.filler != nil {
			h.filler.Close() // ours alone, and about to go: its error tells nothing
		}
		h.closeErr = h.listener.Close()
	})
	return h.closeErr
}

// DeafListener accepts every connection and never reads from it, as a server that
// is stuck does: a client's request fills the small receive buffer, then the client's
// own send buffer, and its writes block (or return EAGAIN). Make one with Deaf.
type DeafListener struct {
	listener net.Listener
	accepted chan struct{} // closed when the accepting goroutine has returned

	mu    sync.Mutex
	conns []net.Conn // every connection accepted, to close in Close

	closeOnce sync.Once
	closeErr  error
}

// Deaf listens on a free port of the loopback address of network ("tcp4" or "tcp6"),
// with a receive buffer of 64 KiB set before listen(2) so that every accepted
// connection inherits it, and accepts connections in a goroutine of its own until
// Close. It never reads from or writes to them.
func Deaf(network string) (*DeafListener, error) {
	addr, err := loopbackFor(network)
	if err != nil {
		return nil, fmt.Errorf("deaf listener: %w", err)
	}
	// Control runs after socket(2) and before bind(2) and listen(2). The receive
	// buffer must be set that early: it decides the TCP window scale offered in
	// the handshake, which cannot change afterwards.
	config := net.ListenConfig{Control: smallReceiveBuffer}
	ln, err := config.Listen(context.Background(), network, addr)
	if err != nil {
		return nil, fmt.Errorf("deaf listener: %w", err)
	}
	d := &DeafListener{listener: ln, accepted: make(chan struct{})}
	go d.accept()
	return d, nil
}

// accept takes every connection that comes and keeps it, unread, until Close.
func (d *DeafListener) accept() {
	defer close(d.accepted)
	for {
		conn, err := d.listener.Accept()
		if errors.Is(err, net.ErrClosed) {
			return // Close closed the listener
		}
		if err != nil {
			continue // a connection that failed before it was accepted (ECONNABORTED): wait for the next
		}
		d.mu.Lock()
		d.conns = append(d.conns, conn)
		d.mu.Unlock()
	}
}

// Addr is the address of the listener, to point a client at.
func (d *DeafListener) Addr() *net.TCPAddr {
	return d.listener.Addr().(*net.TCPAddr)
}

// Close stops listening, waits for the accepting goroutine to return, and closes
// every connection it accepted. Calling it again returns the same result.
func (d *DeafListener) Close() error {
	d.closeOnce.Do(func() {
		d.closeErr = d.listener.Close()
		<-d.accepted // from now on nobody adds to conns
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, conn := range d.conns {
			conn.Close() // ours alone: closing it cannot fail in a way that matters
		}
		d.conns = nil
	})
	return d.closeErr
}
