//go:build unix

// Stage 05-epoll: the event loop of stage 04 on epoll(7) instead of select(2).
//
// This mirrors the notes' summary (总结): select, poll and epoll. select has
// two costs that grow with the number of sockets: it watches at most 1024
// descriptors (FD_SETSIZE), and on every call the program rebuilds its sets,
// the kernel copies them in and checks every socket in them, and the program
// scans them again to find the ready ones. epoll keeps the watched set inside
// the kernel instead. epoll_create1(2) makes an epoll instance; epoll_ctl(2)
// adds a socket once (ADD), changes what it waits for (MOD) and removes it
// (DEL); and epoll_wait(2) sleeps until some are ready and returns only
// those. The kernel keeps a ready list, fed by the sockets themselves when
// their state changes, so one wait costs the same for 10 watched sockets as
// for 10,000. There is no 1024 limit: only the process's descriptor limit.
//
// epoll is level-triggered by default, like select and poll: a socket with
// unread bytes is reported ready at every wait. With -edge it is
// edge-triggered (EPOLLET): reported once per change, so each ready socket
// must be drained until EAGAIN or the rest of its bytes are never reported.
//
// What to look for when you run it (go run ./05-epoll): the same report as
// stage 04, with epoll_ctl and epoll_wait where select was; and with -n 5000
// against a standalone server (make server), all 5,000 in flight at once.
//
// This file is the loop, and it is the same on every system. What it asks
// of the kernel's watched set is four small functions, in epoll.go on Linux
// and in kqueue.go on macOS and FreeBSD, whose kqueue(2) does the same job
// (see the README): the way Go's runtime keeps its own netpoller, one
// contract with netpoll_epoll.go and netpoll_kqueue.go beside it. Its
// sockets are nonblocking from the call that makes them (socket_flags.go;
// socket_fcntl.go on macOS).
// Everything around the lesson (the shared flags, the requests, reading a
// response, the report) is in the scaffold*.go files, the same in every
// stage. Compare: make diff FROM=04 TO=05. Next: make diff FROM=05 TO=06.
package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

const stage = "05-epoll"

// waitTimeout is the -timeout flag: how long one wait (epoll_wait, kevent)
// may sleep when nothing is ready. 0 (the default) means no limit but
// -deadline: sleep until a socket is ready, or until the run's time is up.
var waitTimeout time.Duration

// edgeTriggered is the -edge flag: it asks the kernel to report a socket
// once per change (EPOLLET, EV_CLEAR) instead of at every wait while it
// stays ready.
var edgeTriggered bool

func main() {
	os.Exit(program(os.Args[1:], os.Stdout, os.Stderr))
}

// program is the whole run: the command line, the requests, fetchAll (the
// lesson, below), and the report. It returns the exit code: 0 when every
// request got a complete response, 1 when some failed, 2 when the run could
// not start.
func program(args []string, stdout, stderr io.Writer) int {
	flags, cfg := sharedFlags(stage, stderr) // -n, -delay, -addr, … (scaffold.go)
	flags.DurationVar(&waitTimeout, "timeout", 0, "longest sleep of one epoll_wait (kevent on macOS and FreeBSD); 0 sleeps until a socket is ready or -deadline")
	flags.BoolVar(&edgeTriggered, "edge", false, "edge-triggered (EPOLLET, or EV_CLEAR with kqueue): each ready socket is drained until EAGAIN")
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
// until every callback has been called. With thousands of requests, the
// loop also looks at what is ready between batches of Adds (Poll), so the
// first requests are sent while the last are still being started.
func fetchAll(rn *run) {
	loop, err := newEventLoop(rn)
	if err != nil { // without a watched set in the kernel no request can start
		for _, r := range rn.requests {
			r.begin()
			r.finish(err)
		}
		return
	}
	defer loop.Close()
	for i, r := range rn.requests {
		r.begin()
		loop.Add(r, func(response []byte, err error) {
			r.finish(err) // the response is r's own: received kept it as it came
		})
		if (i+1)%startBatch == 0 {
			loop.Poll()
		}
	}
	loop.Run()
}

// startBatch is how many requests fetchAll starts between two Polls. Without
// them, 5,000 connects (about 30µs each on loopback) would all come before
// the first request is sent, and every request would wait for that.
const startBatch = 64

// eventLoop drives requests with epoll(7) (kqueue(2) on macOS and FreeBSD)
// and calls each one's callback when it is over (the notes' Nb).
type eventLoop struct {
	rn      *run
	watched *watcher      // the kernel's copy of the watched set (epoll.go, kqueue.go)
	pending map[int]*conn // by descriptor: the wait names the ready descriptors
	buf     []byte        // one buffer serves every socket: the loop reads one at a time
}

// newEventLoop makes the watched set: epoll_create1(2) on Linux.
func newEventLoop(rn *run) (*eventLoop, error) {
	w, err := newWatcher(rn)
	if err != nil {
		return nil, err
	}
	return &eventLoop{rn: rn, watched: w, pending: map[int]*conn{}, buf: make([]byte, 8192)}, nil
}

// Close gives the watched set back to the kernel.
func (l *eventLoop) Close() {
	l.watched.close(l.rn)
}

// Add starts a request: it makes the socket, starts connecting (the notes'
// add) and adds the socket to the watched set. When that already fails, the
// callback is called at once with the error; otherwise Run calls it later.
// Once -deadline has passed, Add starts nothing.
func (l *eventLoop) Add(r *request, callback func(response []byte, err error)) {
	if l.rn.timeLeft() == 0 {
		callback(nil, r.notStarted())
		return
	}
	c, err := start(r)
	if err != nil {
		callback(nil, err)
		return
	}
	c.callback = callback
	if err := l.watch(c); err != nil {
		c.end(err)
		return
	}
	l.pending[c.fileno()] = c
}

// Run sleeps in epoll_wait (kevent) until some sockets are ready, gives each
// ready request a try, and sleeps again, until every request has completed
// or failed, or -deadline has passed. A failure ends its own request (and calls
// its callback), never the loop.
func (l *eventLoop) Run() {
	for len(l.pending) > 0 {
		if l.rn.timeLeft() == 0 { // -deadline has passed: end every request still going
			l.endAll(func(c *conn) error { return c.timedOut() })
			return
		}
		l.turn(l.sleepLimit())
	}
}

// endAll ends every request still going, each with the error why gives it,
// and calls its callback. A callback may Add a request meanwhile: Add starts
// nothing after -deadline, and after a failed wait the new request is in
// pending for the loop's next round.
func (l *eventLoop) endAll(why func(c *conn) error) {
	for _, c := range l.pending {
		l.forget(c)
		c.end(why(c))
	}
}

// sleepLimit is how long the next wait may sleep, in milliseconds:
// until -deadline at most, and no longer than -timeout. It is rounded up, so
// that the wait does not end a fraction of a millisecond early and go round
// once more for nothing.
func (l *eventLoop) sleepLimit() int {
	sleep := l.rn.timeLeft()
	if waitTimeout > 0 {
		sleep = min(sleep, waitTimeout)
	}
	return int((sleep + time.Millisecond - 1) / time.Millisecond)
}

// Poll gives every request that is ready right now a try, without sleeping.
func (l *eventLoop) Poll() {
	l.turn(0)
}

// turn is one round of the loop: wait (at most timeout milliseconds, 0 for
// not at all), then give each ready request a try.
func (l *eventLoop) turn(timeout int) {
	ready, err := l.watched.wait(l.rn, timeout)
	if err != nil { // the wait itself failed: no request can go on
		l.endAll(func(*conn) error { return err })
		return
	}
	// Only the ready ones: nothing to scan. Unlike select, nothing was rebuilt
	// either: the kernel already has the set, and said which are ready.
	for _, fd := range ready {
		c, ok := l.pending[fd]
		if !ok { // no longer a request of this loop (see forget)
			continue
		}
		done, err := c.step(l.buf)
		if err == nil && !done {
			err = l.watch(c) // it may wait for something else now
		}
		if done || err != nil {
			l.forget(c)
			c.end(err)
		}
	}
}

// interest is what the kernel watches a socket for.
type interest int

const (
	notWatched interest = iota
	readable            // EPOLLIN, EVFILT_READ
	writable            // EPOLLOUT, EVFILT_WRITE
	readWrite           // both (edge-triggered only)
)

// watch tells the kernel what the socket waits for, and only when that
// changes (the first time, it adds the socket to the set).
//
// Level-triggered, that is writability until the socket has connected and
// sent its request, then readability: a socket left watched for writability
// would be reported writable at every wait, for nothing, so each request
// switches once (epoll_ctl MOD).
//
// Edge-triggered, it is both from the start, and never changes: an edge is
// reported only when the socket's state changes (connected, bytes arrived,
// end of file), not at every wait while it stays writable. So the socket is
// added once and never switched, which is how Go's runtime registers every
// socket (netpollopen, EPOLLIN|EPOLLOUT|EPOLLET): one system call per
// request fewer.
func (l *eventLoop) watch(c *conn) error {
	want := readable
	switch {
	case edgeTriggered:
		want = readWrite
	case c.wantsToWrite():
		want = writable
	}
	if want == c.watching {
		return nil
	}
	if err := l.watched.watch(c, want); err != nil {
		return err
	}
	c.watching = want
	return nil
}

// forget takes a finished request out of the loop, before its socket is
// closed. It asks nothing of the kernel: close(2) takes the socket out of
// the watched set itself (epoll, kqueue), which saves one system call per
// request (epoll_ctl DEL, kevent EV_DELETE), as Go's runtime does on
// kqueue. A DEL is needed to stop watching a socket that stays open; and,
// with epoll, when another descriptor refers to the same socket (after a
// dup, or in a child between fork and exec), because epoll then keeps
// watching it until the last one is closed, and reports it under the old
// number. This program does neither. Should it happen, turn skips a report
// of a number no longer in pending; a report under a number a new socket
// has taken reaches that request as a wake-up with nothing to do, which its
// next call survives (it returns EAGAIN). Go's runtime tags each
// registration with a sequence number (fdseq, runtime/netpoll.go), so that
// a late report for a descriptor already closed is recognised and dropped.
func (l *eventLoop) forget(c *conn) {
	delete(l.pending, c.fileno())
}

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
	watching  interest                         // what the kernel watches it for
}

// fileno returns the descriptor, as Python's fileno() does: epoll and
// kqueue, like select, need only that number.
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
	// newSocket (socket_flags.go on Linux) makes a TCP endpoint that is
	// nonblocking from the start: a call that would sleep fails with EAGAIN
	// instead. (Python: socket.socket(), then setblocking(False).)
	fd, err := newSocket(r)
	if err != nil {
		return nil, err
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

// wantsToWrite tells what the socket waits for: writability until it has
// connected and sent the whole request, readability after that.
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

// checkConnected runs once epoll says the connecting socket is writable,
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
// the kernel says the socket is writable again: sent remembers where to continue.
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
