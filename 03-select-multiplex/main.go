//go:build unix

// Stage 03-select-multiplex: sleep until some socket is ready.
//
// This mirrors section 三 of the notes (IO多路复用, 方式一). Stage 02 asked
// every socket again and again whether it could go on. select(2) asks the
// kernel instead: here are the sockets I want to write to (to finish
// connecting, or to send) and the ones I want to read from; put me to sleep
// until at least one of them is ready, and tell me which. "Writable" after a
// nonblocking connect means the handshake is over, successfully or not, so
// getsockopt(SO_ERROR) says which. "Readable" means bytes have arrived, or the
// server has closed (read will return 0).
//
// What to look for when you run it (go run ./03-select-multiplex): the same
// stack of parallel bars as stage 02, with the CPU time back near zero and a
// handful of select calls instead of hundreds of thousands of EAGAINs. Try
// -timeout 5ms (the notes' value) to see what a polling timeout costs, and -n
// 1100 to meet FD_SETSIZE: select cannot watch descriptor 1024 or above.
//
// Everything around the lesson (the shared flags, the requests, reading a
// response, the report) is in the scaffold*.go files, the same in every
// stage. Compare: make diff FROM=02 TO=03.
// Next: make diff FROM=03 TO=04.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

const stage = "03-select-multiplex"

// selectTimeout is the -timeout flag: how long one select call may sleep
// when nothing is ready. 0 (the default) means no limit but -deadline: sleep
// until a socket is ready, or until the run's time is up. The notes use
// 5ms, which wakes the process 200 times a second for nothing.
var selectTimeout time.Duration

func main() {
	os.Exit(program(os.Args[1:], os.Stdout, os.Stderr))
}

// program is the whole run: the command line, the requests, fetchAll (the
// lesson, below), and the report. It returns the exit code: 0 when every
// request got a complete response, 1 when some failed, 2 when the run could
// not start.
func program(args []string, stdout, stderr io.Writer) int {
	flags, cfg := sharedFlags(stage, stderr) // -n, -delay, -addr, … (scaffold.go)
	flags.DurationVar(&selectTimeout, "timeout", 0, "longest sleep of one select call; 0 sleeps until a socket is ready or -deadline (the notes use 5ms)")
	rn, err := newRun(flags, cfg, args) // the test server, unless -addr names one; the requests
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
// Here, all at once: start every request, then sleep in select until some
// sockets are ready, give each ready one a try, and sleep again, until every
// request is done or -deadline has passed.
func fetchAll(rn *run) {
	var pending []*conn
	for i, r := range rn.requests {
		r.begin()
		if rn.timeLeft() == 0 { // -deadline has passed: start nothing more
			r.finish(r.notStarted())
			continue
		}
		c, err := start(r)
		if err != nil {
			r.finish(err)
			if errors.Is(err, errFDSetFull) {
				refuse(rn.requests[i+1:], err) // select can watch no more sockets: start no more
				break
			}
			continue
		}
		pending = append(pending, c)
	}
	buf := make([]byte, 8192) // one buffer serves every socket: the loop reads one at a time
	for len(pending) > 0 {
		if rn.timeLeft() == 0 { // -deadline has passed: end every request still going
			endAll(pending, func(c *conn) error { return c.timedOut() })
			return
		}
		readable, writable, err := waitUntilReady(rn, pending)
		if err != nil { // select itself failed: no request can go on
			endAll(pending, func(*conn) error { return err })
			return
		}
		unfinished := pending[:0] // filtered in place: a new slice every round would be garbage
		for _, c := range pending {
			if !readable.IsSet(c.fd) && !writable.IsSet(c.fd) {
				unfinished = append(unfinished, c) // not ready: nothing to do for it this round
				continue
			}
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

// endAll ends every request still going, each with the error why gives it.
func endAll(pending []*conn, why func(c *conn) error) {
	for _, c := range pending {
		closeSocket(c.r, c.fd)
		c.r.finish(why(c))
	}
}

// waitUntilReady builds the two sets select(2) takes (a bit per descriptor)
// and sleeps in select until some of them are ready. A socket waits in the
// write set until it has connected and sent its request, then in the read
// set. select overwrites the sets with the ready ones, so they are built anew
// before every call. It sleeps until -deadline at most, and no longer than
// -timeout: select's last argument is how long it may sleep.
func waitUntilReady(rn *run, pending []*conn) (readable, writable *unix.FdSet, err error) {
	readable, writable = &unix.FdSet{}, &unix.FdSet{}
	highest := 0
	for _, c := range pending {
		if c.wantsToWrite() {
			writable.Set(c.fd)
		} else {
			readable.Set(c.fd)
		}
		highest = max(highest, c.fd)
	}
	sleep := rn.timeLeft()
	if selectTimeout > 0 {
		sleep = min(sleep, selectTimeout)
	}
	timeout := unix.NsecToTimeval(sleep.Nanoseconds())
	// The first argument is one more than the highest descriptor: the kernel
	// walks every descriptor number below it, and polls each one that is in
	// a set. The third set (nil here) is exceptfds: exceptional conditions,
	// for TCP urgent (out-of-band) data, not errors; a failed connect shows
	// up as writable (and readable), never there.
	n, err := unix.Select(highest+1, readable, writable, nil, &timeout)
	rn.record("select", n, err)
	if err == unix.EINTR {
		// A signal woke select before anything was ready. Report nothing
		// ready: the loop builds the sets again and goes back to sleep.
		return &unix.FdSet{}, &unix.FdSet{}, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("select: %w", err)
	}
	return readable, writable, nil
}

// errFDSetFull is why a request is not started once a descriptor reaches
// FD_SETSIZE: select's sets have a bit for descriptors 0 to 1023 only, and
// setting a bit beyond them would write past the end of the set.
var errFDSetFull = fmt.Errorf("not started: select(2) cannot watch descriptors at or above FD_SETSIZE (%d); poll(2) and epoll(7) (stage 05) have no such limit", unix.FD_SETSIZE)

// refuse ends requests that were never started, each with the same error.
func refuse(requests []*request, err error) {
	for _, r := range requests {
		r.begin()
		r.finish(err)
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
	if fd >= unix.FD_SETSIZE {
		closeSocket(r, fd)
		return nil, errFDSetFull
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

// wantsToWrite tells which set the socket waits in: the write set until it
// has connected and sent the whole request, the read set after that.
func (c *conn) wantsToWrite() bool {
	return !c.connected || c.sent < len(c.r.raw)
}

// step gives one ready request one try at whatever it needs next: finish
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

// checkConnected runs once select says the connecting socket is writable,
// which means the handshake is over, but not whether it worked: a refused
// connect is writable too. getsockopt(2) SO_ERROR says which: 0 is connected,
// anything else is why it failed (ECONNREFUSED…). The notes send without
// asking, and a refused socket's error kills their whole loop (their bug 4).
func (c *conn) checkConnected() error {
	soErr, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	c.r.record("getsockopt", soErr, err)
	if err != nil {
		return fmt.Errorf("getsockopt SO_ERROR: %w", err)
	}
	if soErr != 0 {
		return fmt.Errorf("connect to %s: %w", c.r.hostport, unix.Errno(soErr))
	}
	c.connected = true
	return nil
}

// sendRequest writes as much of the request as the socket takes now.
// write(2) may take fewer bytes than it was given (a "short write"); when the
// send buffer is full it takes none and says EAGAIN. The rest waits until
// select says the socket is writable again: sent remembers where to continue.
// The notes' sendall ignores this (their bug 7).
func (c *conn) sendRequest() error {
	for c.sent < len(c.r.raw) {
		n, err := unix.Write(c.fd, c.r.raw[c.sent:])
		c.r.record("write", n, err)
		if err == unix.EINTR {
			continue // a signal arrived before anything was written: try again
		}
		if err == unix.EAGAIN {
			return nil // the send buffer is full: wait until writable again
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
			return false, nil // nothing more has arrived: wait until readable again
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
