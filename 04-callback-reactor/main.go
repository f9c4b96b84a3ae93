//go:build unix

// Stage 04-callback-reactor: the select loop as an event loop with callbacks.
//
// This mirrors section 四 of the notes (单线程高并发, the classes Req and Nb)
// and 方式二 of section 三 (select accepts any object with a fileno()). The
// system calls are exactly those of stage 03; what changes is the shape of
// the program. Each request becomes an object that owns its descriptor, its
// own request bytes and a callback. An event loop takes requests with Add
// and, in Run, sleeps in select(2), drives whichever requests are ready, and
// calls each one's callback with its response when it is over. The code that
// wants the pages no longer drives sockets: it says what to fetch and what to
// do with the result. That is the shape of every event loop since (Twisted,
// Node.js, Python's asyncio, Netty): the notes call it 异步非阻塞.
//
// What to look for when you run it (go run ./04-callback-reactor): the same
// report as stage 03, call for call. The difference is in main.go: fetchAll
// only says what to fetch and what to do with each response, and everything
// about sockets lives in the loop.
//
// Everything around the lesson (the shared flags, the requests, reading a
// response, the report) is in the scaffold*.go files, the same in every
// stage. Compare: make diff FROM=03 TO=04.
// Next: make diff FROM=04 TO=05.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

const stage = "04-callback-reactor"

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
// Here, by an event loop: each request is added with a callback, the function
// the loop calls with its response once it is over, and Run drives them all
// until every callback has been called.
func fetchAll(rn *run) {
	loop := newEventLoop(rn)
	for _, r := range rn.requests {
		r.begin()
		loop.Add(r, func(response []byte, err error) {
			r.finish(err) // the response is r's own: received kept it as it came
		})
	}
	loop.Run()
}

// eventLoop drives requests with select(2) and calls each one's callback
// when it is over (the notes' Nb).
type eventLoop struct {
	rn      *run
	pending []*conn // the requests the loop is driving
	added   []*conn // started by Add since the last round: they join pending at the next
	full    bool    // a descriptor reached FD_SETSIZE: Add starts no more requests
	buf     []byte  // one buffer serves every socket: the loop reads one at a time
}

func newEventLoop(rn *run) *eventLoop {
	return &eventLoop{rn: rn, buf: make([]byte, 8192)}
}

// Add starts a request: it makes the socket and starts connecting (the notes'
// add). When that already fails, the callback is called at once with the
// error; otherwise Run calls it later. Add may be called before Run or from
// a callback while Run runs: a request added during a round joins the loop
// at the next one, so that a round never changes the list it walks through.
// Once -deadline has passed, Add starts nothing.
func (l *eventLoop) Add(r *request, callback func(response []byte, err error)) {
	if l.rn.timeLeft() == 0 {
		callback(nil, r.notStarted())
		return
	}
	if l.full {
		callback(nil, errFDSetFull) // select can watch no more sockets: start no more
		return
	}
	c, err := start(r)
	if err != nil {
		l.full = errors.Is(err, errFDSetFull)
		callback(nil, err)
		return
	}
	c.callback = callback
	l.added = append(l.added, c)
}

// Run sleeps in select until some sockets are ready, gives each ready request
// a try, and sleeps again, until every request has completed or failed, or
// -deadline has passed. A failure ends its own request (and calls its
// callback), never the loop.
func (l *eventLoop) Run() {
	for len(l.pending)+len(l.added) > 0 {
		l.pending = append(l.pending, l.added...) // the requests added since the last round
		l.added = l.added[:0]
		if l.rn.timeLeft() == 0 { // -deadline has passed: end every request still going
			l.endAll(func(c *conn) error { return c.timedOut() })
			continue // a callback's Add has started nothing: the loop ends
		}
		readable, writable, err := l.waitUntilReady()
		if err != nil { // select itself failed: no request can go on
			l.endAll(func(*conn) error { return err })
			continue // requests their callbacks added get a try of their own
		}
		unfinished := l.pending[:0] // filtered in place: a new slice every round would be garbage
		for _, c := range l.pending {
			if !readable.IsSet(c.fileno()) && !writable.IsSet(c.fileno()) {
				unfinished = append(unfinished, c) // not ready: nothing to do for it this round
				continue
			}
			done, err := c.step(l.buf)
			if done || err != nil {
				c.end(err)
				continue
			}
			unfinished = append(unfinished, c)
		}
		l.pending = unfinished
	}
}

// endAll ends every request still going, each with the error why gives it,
// and calls its callback.
func (l *eventLoop) endAll(why func(c *conn) error) {
	for _, c := range l.pending {
		c.end(why(c))
	}
	l.pending = l.pending[:0]
}

// waitUntilReady builds the two sets select(2) takes (a bit per descriptor)
// and sleeps in select until some of them are ready. A socket waits in the
// write set until it has connected and sent its request, then in the read
// set. select overwrites the sets with the ready ones, so they are built anew
// before every call. It sleeps until -deadline at most, and no longer than
// -timeout: select's last argument is how long it may sleep.
func (l *eventLoop) waitUntilReady() (readable, writable *unix.FdSet, err error) {
	readable, writable = &unix.FdSet{}, &unix.FdSet{}
	highest := 0
	for _, c := range l.pending {
		if c.wantsToWrite() {
			writable.Set(c.fileno())
		} else {
			readable.Set(c.fileno())
		}
		highest = max(highest, c.fileno())
	}
	sleep := l.rn.timeLeft()
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
	l.rn.record("select", n, err)
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

// conn is one request in the loop (the notes' Req): its descriptor, how far
// it has got, what has arrived, and the callback to call when it is over.
// What to send and where are its own (r.raw, r.addr): the notes' Req sends
// one hard-coded request whatever its host (their bug 5).
type conn struct {
	r         *request
	fd        int
	connected bool                             // the TCP handshake has finished
	sent      int                              // how many bytes of the request have been written
	callback  func(response []byte, err error) // called once, when the request is over
}

// fileno returns the descriptor, as Python's fileno() does: select needs only
// that number, so any object that can give one can wait in select.
func (c *conn) fileno() int {
	return c.fd
}

// end closes the request's socket and calls its callback: every request
// passes here exactly once, whether it succeeded or not.
func (c *conn) end(err error) {
	closeSocket(c.r, c.fd)
	c.callback(c.r.response, err)
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
