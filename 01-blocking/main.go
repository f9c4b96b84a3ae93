//go:build unix

// Stage 01-blocking: one socket at a time, and every system call waits.
//
// This mirrors the first half of section 二 of the notes (模拟socket发送http请求):
// an HTTP/1.0 request sent by hand over a TCP socket. A new socket is blocking:
// connect(2) returns when the TCP handshake is done, write(2) when the kernel
// has taken the bytes, and read(2) when some bytes have arrived or the server
// has closed its end. So the program does one request from start to finish,
// then the next: while it waits for one server, it cannot talk to any other.
//
// What to look for when you run it (go run ./01-blocking): the timeline is a
// staircase, the wall time is the sum of the waits, the test server never has
// more than one request in flight, and the CPU time is almost nothing, because
// a blocked process sleeps. A blocking call has no timeout of its own: to
// keep the run's -deadline, the stage sets one on the socket before each call
// (the setsockopt calls in the report).
//
// Everything around the lesson (the shared flags, the requests, reading a
// response, the report) is in the scaffold*.go files, the same in every
// stage. Next: make diff FROM=01 TO=02.
package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

const stage = "01-blocking"

func main() {
	os.Exit(program(os.Args[1:], os.Stdout, os.Stderr))
}

// program is the whole run: the command line, the requests, fetchAll (the
// lesson, below), and the report. It returns the exit code: 0 when every
// request got a complete response, 1 when some failed, 2 when the run could
// not start.
func program(args []string, stdout, stderr io.Writer) int {
	flags, cfg := sharedFlags(stage, stderr) // -n, -delay, -addr, … (scaffold.go); stage 01 has no flags of its own
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
// Here, one after another: the next request starts when the previous is done.
// Once -deadline has passed, the requests not started yet fail at once.
func fetchAll(rn *run) {
	for _, r := range rn.requests {
		r.begin()
		if rn.timeLeft() == 0 {
			r.finish(r.notStarted())
			continue
		}
		r.finish(fetch(r))
	}
}

// fetch does one whole HTTP request over a blocking socket.
func fetch(r *request) error {
	// socket(2) makes a TCP endpoint and returns its descriptor, a small
	// integer that names it in every later call. (Python: socket.socket())
	// Its family is the server address's: AF_INET for IPv4, AF_INET6 for IPv6.
	fd, err := unix.Socket(r.family, unix.SOCK_STREAM, 0)
	r.record("socket", fd, err)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer closeSocket(r, fd)

	if err := connect(r, fd); err != nil {
		return err
	}
	if err := sendRequest(r, fd); err != nil {
		return err
	}
	return receiveResponse(r, fd)
}

// connect calls connect(2), which sends the SYN and sleeps until the
// handshake is done, or fails (ECONNREFUSED when nothing listens there).
// With a timeout set (SO_SNDTIMEO), it gives up with EINPROGRESS when the
// time runs out: the handshake is still going on, and it is too late to wait.
//
// A signal can interrupt the sleep (EINTR), and the handshake goes on
// without the call. Calling connect again is not the way to wait for it:
// POSIX says a second call fails at once with EALREADY while the handshake
// goes on (Linux happens to wait again; macOS and FreeBSD do not). So the
// stage does what Go's net package does (connect in net/fd_unix.go): it
// waits until the socket is writable, then asks how the handshake ended.
func connect(r *request, fd int) error {
	if err := setTimeout(r, fd, unix.SO_SNDTIMEO, "connecting"); err != nil {
		return err
	}
	err := unix.Connect(fd, r.addr)
	r.record("connect", 0, err)
	switch err {
	case nil:
		return nil
	case unix.EINTR:
		return waitConnected(r, fd) // a signal arrived during the handshake
	case unix.EINPROGRESS:
		return r.timedOut("connecting") // SO_SNDTIMEO ran out
	}
	return fmt.Errorf("connect to %s: %w", r.hostport, err)
}

// waitConnected waits for a handshake that a signal took connect away from.
// poll(2) sleeps until the socket is writable, which it becomes when the
// handshake has ended, well or not, or until -deadline. getsockopt(2)
// SO_ERROR then says how it ended: 0 is connected, anything else is why not.
func waitConnected(r *request, fd int) error {
	for {
		left := r.rn.timeLeft()
		if left == 0 {
			return r.timedOut("connecting")
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(fds, int((left+time.Millisecond-1)/time.Millisecond))
		r.record("poll", n, err)
		if err != nil && err != unix.EINTR {
			return fmt.Errorf("poll: %w", err)
		}
		if n > 0 {
			break // writable: the handshake is over
		}
	}
	soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	r.record("getsockopt", soErr, err)
	if err != nil {
		return fmt.Errorf("getsockopt SO_ERROR: %w", err)
	}
	if soErr != 0 {
		return fmt.Errorf("connect to %s: %w", r.hostport, unix.Errno(soErr))
	}
	return nil
}

// setTimeout sets how long the next blocking call on fd may sleep: the time
// left before -deadline. The option SO_SNDTIMEO bounds connect(2) and
// write(2), SO_RCVTIMEO bounds read(2). A blocking call has no timeout
// argument, so the stage sets this socket option again before every call,
// each time with less time left; stages 03-05 hand the time left to their one
// wait call (select, epoll_wait) instead. Once no time is left, the request
// has timed out: doing says what it was doing.
func setTimeout(r *request, fd int, option int, doing string) error {
	left := r.rn.timeLeft()
	if left == 0 {
		return r.timedOut(doing)
	}
	// setsockopt(2). A timeout of 0 would mean "no limit": keep at least 1µs.
	tv := unix.NsecToTimeval(max(left, time.Microsecond).Nanoseconds())
	err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, option, &tv)
	r.record("setsockopt", 0, err)
	if err != nil {
		return fmt.Errorf("setsockopt: %w", err)
	}
	return nil
}

// sendRequest writes the request. write(2) may take fewer bytes than it was
// given (a "short write"), so it loops until every byte is sent, as Python's
// sendall does.
func sendRequest(r *request, fd int) error {
	for sent := 0; sent < len(r.raw); {
		if err := setTimeout(r, fd, unix.SO_SNDTIMEO, "sending the request"); err != nil {
			return err
		}
		n, err := unix.Write(fd, r.raw[sent:])
		r.record("write", n, err)
		switch {
		case err == unix.EINTR:
			continue // a signal arrived before anything was written: try again
		case err == unix.EAGAIN:
			return r.timedOut("sending the request") // SO_SNDTIMEO ran out
		case err != nil:
			return fmt.Errorf("write: %w", err)
		}
		sent += n
	}
	return nil
}

// receiveResponse reads until the response is complete: until the server
// closes the connection, which is how an HTTP/1.0 response ends (read(2)
// returns 0, end of file), or until the response's own framing says it is
// whole (received tells), as from a server that keeps the connection open.
// Until then each read sleeps until some bytes are there.
func receiveResponse(r *request, fd int) error {
	buf := make([]byte, 8192)
	for {
		doing := fmt.Sprintf("reading the response (%d bytes so far)", len(r.response))
		if err := setTimeout(r, fd, unix.SO_RCVTIMEO, doing); err != nil {
			return err
		}
		n, err := unix.Read(fd, buf)
		r.record("read", n, err)
		switch {
		case err == unix.EINTR:
			continue // a signal arrived before any byte did: read again
		case err == unix.EAGAIN:
			return r.timedOut(doing) // SO_RCVTIMEO ran out: nothing arrived in time
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

// closeSocket gives the descriptor back to the kernel: every socket is closed
// exactly once, whether its request succeeded or not.
func closeSocket(r *request, fd int) {
	err := unix.Close(fd)
	r.record("close", 0, err)
}
