//go:build linux

// epoll.go is -model epoll-goroutines: the step from stage 05 to the net
// package, built by hand. Each request runs in a goroutine of its own whose
// code reads like stage 01's: connect, write the whole request, read until
// the response is complete, close. The difference is underneath: the socket
// is nonblocking, and when a call says EINPROGRESS or EAGAIN, the goroutine
// parks (it waits on a channel, and the Go scheduler runs other goroutines
// meanwhile) instead of spinning (stage 02) or sleeping in the kernel (stage
// 01). One poller goroutine owns an epoll set and, after every epoll_wait,
// wakes the goroutines whose sockets are ready.
//
// This is what Go's runtime does for every net.Conn, in the same few steps
// (runtime/netpoll.go and runtime/netpoll_epoll.go):
//
//	open  a socket joins the set once, for reading and writing, edge-triggered  netpollopen
//	park  a goroutine that met EAGAIN waits for its socket's next edge         netpollblock → gopark
//	wake  after epoll_wait, each ready socket's waiter is made runnable        netpoll → netpollready
//	close the socket leaves the set before it is closed                        netpollclose
//
// Stage 05's loop called a callback when a socket was ready; here it wakes a
// goroutine, which carries on from where it stopped, in straight-line code.

package main

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// poller is the loop goroutine's side: the epoll set and who waits on what.
type poller struct {
	rn      *run
	epfd    int               // the epoll instance: this program's own, not the runtime's
	wakeFD  int               // an eventfd in the set: writing to it wakes epoll_wait, to stop the loop
	expired chan struct{}     // closed at -deadline (see expire): every parked goroutine wakes and gives up
	stopped chan struct{}     // closed when the loop goroutine has returned
	mu      sync.Mutex        // guards descs: the requests' goroutines open and close, the loop looks up
	descs   map[int]*pollDesc // by descriptor: epoll_wait names the ready descriptors
	events  []unix.EpollEvent // where epoll_wait writes the ready ones
	timer   *time.Timer       // gives up at -deadline
	giveUp  sync.Once         // closes expired, once: at -deadline, or when the loop fails
	failed  error             // why the loop stopped early, if it did; set before expired is closed
}

// pollDesc is one socket in the set, as the runtime's pollDesc is: a token
// in readable (writable) means "ready since the goroutine last looked". The
// loop puts the token in; the goroutine takes it out when it parks. An edge
// that comes between the goroutine's EAGAIN and its park is not lost: the
// token is there when it parks, and it tries again at once.
type pollDesc struct {
	fd       int
	readable chan struct{} // capacity 1: the token, if any
	writable chan struct{}
}

// own is the poller of -model epoll-goroutines while a run uses it.
var own *poller

// startOwnPoller makes the epoll set, starts the loop goroutine, and arms
// the deadline. Every request of the model runs on it; stopOwnPoller ends it.
func startOwnPoller(rn *run) error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	rn.record("epoll_create1", epfd, err)
	if err != nil {
		return fmt.Errorf("epoll_create1: %w", err)
	}
	// eventfd(2) makes a counter the loop can be woken through: the runtime's
	// netpollBreak does the same to interrupt its own epoll_wait.
	wakeFD, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	rn.record("eventfd2", wakeFD, err)
	if err == nil {
		err = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakeFD, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakeFD)})
		rn.record("epoll_ctl ADD", 0, err)
	}
	if err != nil {
		unix.Close(epfd)
		return fmt.Errorf("the poller's eventfd: %w", err)
	}
	p := &poller{rn: rn, epfd: epfd, wakeFD: wakeFD, expired: make(chan struct{}), stopped: make(chan struct{}),
		descs: map[int]*pollDesc{}, events: make([]unix.EpollEvent, 256)}
	p.timer = time.AfterFunc(rn.timeLeft(), func() { p.expire(nil) })
	own = p
	go p.loop()
	return nil
}

// stopOwnPoller wakes the loop through the eventfd, waits until it has
// returned, and closes the set.
func stopOwnPoller() {
	p := own
	p.timer.Stop()
	_, err := unix.Write(p.wakeFD, []byte{1, 0, 0, 0, 0, 0, 0, 0}) // eventfd takes an 8-byte count
	p.rn.record("write", 8, err)
	<-p.stopped
	for _, fd := range []int{p.wakeFD, p.epfd} {
		err := unix.Close(fd)
		p.rn.record("close", 0, err)
	}
	own = nil
}

// loop is the poller goroutine: sleep in epoll_wait until some sockets are
// ready, wake their goroutines, and sleep again, until stopOwnPoller.
func (p *poller) loop() {
	defer close(p.stopped)
	for {
		n, err := unix.EpollWait(p.epfd, p.events, -1) // no timeout: the parked goroutines keep the deadline
		p.rn.record("epoll_wait", n, err)
		if err == unix.EINTR {
			continue // a signal woke it before anything was ready: wait again
		}
		if err != nil { // no socket can be woken any more: every parked goroutine must give up
			p.expire(fmt.Errorf("epoll_wait: %w", err))
			return
		}
		for _, event := range p.events[:n] {
			if int(event.Fd) == p.wakeFD {
				return
			}
			p.wake(int(event.Fd), event.Events)
		}
	}
}

// expire wakes every parked goroutine, and every later park, to give up:
// because -deadline has passed (why is nil), or because the loop failed.
func (p *poller) expire(why error) {
	p.giveUp.Do(func() {
		p.failed = why
		close(p.expired)
	})
}

// wake puts a token in for each way the socket is ready. A hang-up or an
// error counts as both: the goroutine's next call returns what happened.
func (p *poller) wake(fd int, events uint32) {
	p.mu.Lock()
	pd := p.descs[fd] // nil if the socket left the set after epoll_wait returned
	p.mu.Unlock()
	if pd == nil {
		return
	}
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		giveToken(pd.readable)
	}
	if events&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		giveToken(pd.writable)
	}
}

// giveToken puts the token in, unless one is there already.
func giveToken(ready chan struct{}) {
	select {
	case ready <- struct{}{}:
	default:
	}
}

// open adds a socket to the set, once, for reading and writing together,
// edge-triggered: as netpollopen does, so that nothing changes in the set
// until the socket leaves it, whatever the goroutine waits for.
func (p *poller) open(r *request, fd int) (*pollDesc, error) {
	pd := &pollDesc{fd: fd, readable: make(chan struct{}, 1), writable: make(chan struct{}, 1)}
	p.mu.Lock()
	p.descs[fd] = pd
	p.mu.Unlock()
	events := uint32(unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET)
	err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: events, Fd: int32(fd)})
	r.record("epoll_ctl ADD", 0, err)
	if err != nil {
		p.forget(fd)
		return nil, fmt.Errorf("epoll_ctl ADD: %w", err)
	}
	return pd, nil
}

// close takes the socket out of the set (epoll_ctl DEL) and out of descs.
func (p *poller) close(r *request, pd *pollDesc) {
	err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, pd.fd, nil)
	r.record("epoll_ctl DEL", 0, err)
	p.forget(pd.fd)
}

func (p *poller) forget(fd int) {
	p.mu.Lock()
	delete(p.descs, fd)
	p.mu.Unlock()
}

// errExpired is what park returns once -deadline has passed (or the loop
// has stopped): the goroutine gives up where it is.
var errExpired = errors.New("the poller gave up")

// park is where a goroutine waits for its socket: it takes the token, or
// waits until the loop puts one in. While it waits, it runs no code at all:
// the scheduler has other goroutines to run (the runtime's gopark).
func (p *poller) park(ready chan struct{}) error {
	select {
	case <-ready:
		return nil
	case <-p.expired:
		return errExpired
	}
}

// ---------------------------------------------------------------------------
// One request, as its goroutine runs it: stage 01's steps on a nonblocking
// socket, parking where stage 01 slept.

// fetchOnOwnPoller does one whole request on the poller.
func fetchOnOwnPoller(r *request) error {
	// SOCK_NONBLOCK makes the socket nonblocking as socket(2) makes it, with
	// no fcntl calls; SOCK_CLOEXEC closes it in any program started later.
	fd, err := unix.Socket(r.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	r.record("socket", fd, err)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer closeSocket(r, fd)
	pd, err := own.open(r, fd)
	if err != nil {
		return err
	}
	defer own.close(r, pd)

	if err := connectParked(r, pd); err != nil {
		return own.explain(r, err, "connecting")
	}
	if err := sendParked(r, pd); err != nil {
		return own.explain(r, err, "sending the request")
	}
	if err := receiveParked(r, pd); err != nil {
		return own.explain(r, err, fmt.Sprintf("reading the response (%d bytes so far)", len(r.response)))
	}
	return nil
}

// explain turns errExpired into the words every stage uses: timed out,
// saying where; or why the loop stopped, if it did.
func (p *poller) explain(r *request, err error, doing string) error {
	switch {
	case !errors.Is(err, errExpired):
		return err
	case p.failed != nil:
		return p.failed
	}
	return r.timedOut(doing)
}

// connectParked starts connecting; while the handshake goes on (EINPROGRESS,
// or EINTR), it parks until the socket is writable, then asks SO_ERROR how
// the handshake ended, as stage 05's checkConnected does.
func connectParked(r *request, pd *pollDesc) error {
	err := unix.Connect(pd.fd, r.addr)
	r.record("connect", 0, err)
	if err != unix.EINPROGRESS && err != unix.EINTR {
		if err != nil {
			return fmt.Errorf("connect to %s: %w", r.hostport, err)
		}
		return nil
	}
	if err := own.park(pd.writable); err != nil {
		return err
	}
	soErr, err := unix.GetsockoptInt(pd.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	r.record("getsockopt", soErr, err)
	if err != nil {
		return fmt.Errorf("getsockopt SO_ERROR: %w", err)
	}
	if soErr != 0 {
		return fmt.Errorf("connect to %s: %w", r.hostport, unix.Errno(soErr))
	}
	return nil
}

// sendParked writes the whole request, parking whenever the send buffer is
// full (EAGAIN) until the socket is writable again.
func sendParked(r *request, pd *pollDesc) error {
	for sent := 0; sent < len(r.raw); {
		n, err := unix.Write(pd.fd, r.raw[sent:])
		r.record("write", n, err)
		switch {
		case err == unix.EINTR:
			continue // a signal arrived before anything was written: try again
		case err == unix.EAGAIN:
			if err := own.park(pd.writable); err != nil {
				return err
			}
			continue
		case err != nil:
			return fmt.Errorf("write: %w", err)
		}
		sent += n
	}
	return nil
}

// receiveParked reads until the response is complete, parking whenever
// nothing has arrived (EAGAIN) until the socket is readable again.
func receiveParked(r *request, pd *pollDesc) error {
	buf := make([]byte, 8192)
	for {
		n, err := unix.Read(pd.fd, buf)
		r.record("read", n, err)
		switch {
		case err == unix.EINTR:
			continue // a signal arrived before any byte did: read again
		case err == unix.EAGAIN:
			if err := own.park(pd.readable); err != nil {
				return err
			}
			continue
		case err != nil:
			return fmt.Errorf("read: %w", err)
		case n == 0:
			return nil // end of file: the server closed (finish checks the response is whole)
		}
		if complete, err := r.received(buf[:n]); complete || err != nil {
			return err // whole by its framing, or broken (not HTTP, over -max-bytes…)
		}
	}
}
