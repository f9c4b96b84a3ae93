//go:build unix

// Stage 02-nonblocking-spin: every socket at once, and nothing ever waits.
//
// This mirrors the second half of section 二 of the notes: setblocking(False).
// A nonblocking socket never puts the process to sleep. connect(2) returns at
// once with EINPROGRESS ("started, not finished"), and a read(2) or write(2)
// that would have to wait fails with EAGAIN ("try again") instead. So one
// loop can start every request, then go round and round them, giving each a
// try in turn. The requests now overlap; but the loop never sleeps either: it
// asks, hears EAGAIN, and asks again, millions of times, burning a whole core.
//
// What to look for when you run it (go run ./02-nonblocking-spin): the
// timeline is a stack of parallel bars, the test server has every request in
// flight at once, the wall time is one delay instead of five, and the CPU time
// is about the wall time, nearly all of it spent on wasted (EAGAIN) calls.
//
// Everything around the lesson (the shared flags, the requests, reading a
// response, the report) is in the scaffold*.go files, the same in every
// stage. Compare: make diff FROM=01 TO=02.
// Next: make diff FROM=02 TO=03.
package main

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

const stage = "02-nonblocking-spin"

func main() {
	os.Exit(program(os.Args[1:], os.Stdout, os.Stderr))
}

// program is the whole run: the command line, the requests, fetchAll (the
// lesson, below), and the report. It returns the exit code: 0 when every
// request got a complete response, 1 when some failed, 2 when the run could
// not start.
func program(args []string, stdout, stderr io.Writer) int {
	flags, cfg := sharedFlags(stage, stderr) // -n, -delay, -addr, … (scaffold.go); this stage has no flags of its own
	rn, err := newRun(flags, cfg, args)      // the test server, unless -addr names one; the requests
	if err != nil {
		return cannotStart(stderr, stage, err)
	}
	defer rn.close()
	rn.startClock() // and -deadline with it
	fetchAll(rn)
	rn.stopClock()
	return rn.report(stdout)
}

// fetchAll is the part every stage rewrites: how the requests are driven.
// Here, all at once: start every request, then go round the unfinished ones,
// giving each one nonblocking try per round, until every one is done or
// -deadline has passed.
func fetchAll(rn *run) {
	var pending []*conn
	for _, r := range rn.requests {
		r.begin()
		if rn.timeLeft() == 0 { // -deadline has passed: start nothing more
			r.finish(r.notStarted())
			continue
		}
		c, err := start(r)
		if err != nil {
			r.finish(err)
			continue
		}
		pending = append(pending, c)
	}
	buf := make([]byte, 8192) // one buffer serves every socket: the loop reads one at a time
	for len(pending) > 0 {
		if rn.timeLeft() == 0 { // -deadline has passed: end every request still going
			for _, c := range pending {
				closeSocket(c.r, c.fd)
				c.r.finish(c.timedOut())
			}
			return
		}
		unfinished := pending[:0] // filtered in place: a new slice every round would be garbage
		for _, c := range pending {
			done, err := c.step(buf)
			if done || err != nil {
				closeSocket(c.r, c.fd)
				c.r.finish(err)
				continue
			}
			unfinished = append(unfinished, c)
		}
		pending = unfinished
	}
}

// conn is what the loop remembers about one request between its tries.
type conn struct {
	r         *request
	fd        int
	connected bool // the TCP handshake has finished
	sent      int  // how many bytes of the request have been written
}

// timedOut is the error of a request still going when -deadline passes:
// it says how far the request had got.
func (c *conn) timedOut() error {
	switch {
	case !c.connected:
		return c.r.timedOut("connecting")
	case c.sent < len(c.r.raw):
		return c.r.timedOut("sending the request")
	}
	return c.r.timedOut(fmt.Sprintf("reading the response (%d bytes so far)", len(c.r.response)))
}

// start makes a nonblocking socket and starts connecting it.
func start(r *request) (*conn, error) {
	// socket(2) makes a TCP endpoint and returns its descriptor, a small
	// integer that names it in every later call. (Python: socket.socket())
	// Its family is the server address's: AF_INET for IPv4, AF_INET6 for IPv6.
	fd, err := unix.Socket(r.family, unix.SOCK_STREAM, 0)
	r.record("socket", fd, err)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}

	// fcntl(2) sets O_NONBLOCK on the descriptor (Python: setblocking(False)):
	// from now on, a call that would sleep fails with EAGAIN instead. It takes
	// two calls: read the file status flags (F_GETFL), then write them back
	// with O_NONBLOCK added (F_SETFL). (CPython's setblocking makes one call
	// instead where the system has it, as Linux does: ioctl(2) FIONBIO.)
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	r.record("fcntl", flags, err)
	if err == nil {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags|unix.O_NONBLOCK)
		r.record("fcntl", 0, err)
	}
	if err != nil {
		closeSocket(r, fd)
		return nil, fmt.Errorf("fcntl O_NONBLOCK: %w", err)
	}

	// connect(2) sends the SYN and returns at once: EINPROGRESS means the
	// handshake has started (Python raises it as BlockingIOError).
	err = unix.Connect(fd, r.addr)
	r.record("connect", 0, err)
	if err != nil && err != unix.EINPROGRESS {
		closeSocket(r, fd)
		return nil, fmt.Errorf("connect to %s: %w", r.hostport, err)
	}
	return &conn{r: r, fd: fd, connected: err == nil}, nil
}

// step gives one request one try at whatever it needs next: finish
// connecting (and then send at once), send, or receive. It never waits. done
// is true once the response is complete (end of file, or its framing); err
// says why the request failed.
func (c *conn) step(buf []byte) (done bool, err error) {
	if !c.connected {
		if err := c.checkConnected(); err != nil || !c.connected {
			return false, err // failed, or not connected yet
		}
		// Connected: the socket can take the request right away.
	}
	if c.sent < len(c.r.raw) {
		return false, c.sendRequest()
	}
	return c.receiveResponse(buf)
}

// checkConnected asks whether the handshake has finished by calling
// connect(2) again: EALREADY means "still connecting" (a wasted call), 0 or
// EISCONN means connected, any other error is why it failed (ECONNREFUSED…).
// The notes send right after connect without asking: on loopback the
// handshake is already over, on a real network the send fails (their bug 1).
func (c *conn) checkConnected() error {
	err := unix.Connect(c.fd, c.r.addr)
	c.r.record("connect", 0, err)
	switch err {
	case nil, unix.EISCONN:
		c.connected = true
		return nil
	case unix.EALREADY, unix.EINPROGRESS, unix.EINTR:
		return nil // not yet: ask again next round
	}
	return fmt.Errorf("connect to %s: %w", c.r.hostport, err)
}

// sendRequest writes as much of the request as the socket takes now.
// write(2) may take fewer bytes than it was given (a "short write"); when the
// send buffer is full it takes none and says EAGAIN. The rest waits for the
// next round: sent remembers where to continue.
func (c *conn) sendRequest() error {
	for c.sent < len(c.r.raw) {
		n, err := unix.Write(c.fd, c.r.raw[c.sent:])
		c.r.record("write", n, err)
		if err == unix.EINTR {
			continue // a signal arrived before anything was written: try again
		}
		if err == unix.EAGAIN {
			return nil // the send buffer is full: try again next round
		}
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		c.sent += n
	}
	return nil
}

// receiveResponse reads whatever has arrived. EAGAIN means "nothing more
// yet", not "the response is complete": the notes stop there and lose the
// rest of any response that comes in pieces (their bug 3). A response ends
// at end of file (read returns 0), which is how an HTTP/1.0 server ends it,
// or when its own framing says it is whole (received tells): Content-Length
// bytes of body, or the last chunk, from a server that keeps the connection
// open.
func (c *conn) receiveResponse(buf []byte) (done bool, err error) {
	for {
		n, err := unix.Read(c.fd, buf)
		c.r.record("read", n, err)
		switch {
		case err == unix.EINTR:
			continue // a signal arrived before any byte did: read again
		case err == unix.EAGAIN:
			return false, nil // nothing more has arrived: come back next round
		case err != nil:
			return false, fmt.Errorf("read: %w", err)
		case n == 0:
			return true, nil // end of file: the server closed (finish checks the response is whole)
		}
		if complete, err := c.r.received(buf[:n]); complete || err != nil {
			return complete, err // whole by its framing, or broken (not HTTP, over -max-bytes…)
		}
	}
}

// closeSocket gives the descriptor back to the kernel: every socket is closed
// exactly once, whether its request succeeded or not.
func closeSocket(r *request, fd int) {
	err := unix.Close(fd)
	r.record("close", 0, err)
}
