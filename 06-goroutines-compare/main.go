//go:build unix

// Stage 06-goroutines-compare: one goroutine per request, each written like stage 01.
//
// Each request gets a goroutine of its own, and that goroutine does what
// stage 01 did: connect, write the request, read until the response is
// complete, close. It uses Go's net package instead of raw system calls, and
// none of its calls that look blocking really block. Underneath, the socket
// is nonblocking; when a system call cannot finish yet (connect says
// EINPROGRESS, read or write say EAGAIN), the runtime parks the goroutine and
// leaves the socket to its netpoller, which is epoll on Linux and kqueue on
// macOS and FreeBSD. When the socket is ready, the netpoller makes the
// goroutine runnable again, and the call carries on as if it had waited. So
// the code is as simple as stage 01's and the run as concurrent as stage
// 05's: the event loop of stages 03-05 is still there, inside the runtime,
// shared by every goroutine.
//
// Between stage 05 and the net package is -model epoll-goroutines (epoll.go,
// Linux): the same goroutines on raw nonblocking sockets, parked and woken by
// an epoll loop of this program's own, which is what the runtime does inside.
// Read it first: make diff FROM=05 TO=06 shows it beside 05's epoll.go.
//
// The notes' summary (总结) lists the ways to raise concurrency: more
// processes, more threads, or an asynchronous framework. -model runs the same
// requests each way: goroutines (the default, this file), threads (one OS
// thread per request, each making stage 01's blocking system calls) and
// processes (one process per request). The other two are in models.go.
//
// What to look for when you run it (go run ./06-goroutines-compare): a stack
// of bars, as in stages 03-05, and stage 01's calls in the report (less its
// setsockopt timeouts: a deadline here is a timer in the runtime).
// The calls counted here are calls into the net package, not system calls:
// strace shows the runtime's own (see the README). Then try -model threads
// and -model processes with -n 1000 -delay 1s against a standalone server
// (make server): threads take about as long, with a thousand threads;
// processes take seconds more, just to start a thousand programs.
//
// Everything around the lesson (the shared flags, the requests, reading a
// response, the report) is in the scaffold*.go files, the same in every
// stage. Compare: make diff FROM=01 TO=06 (stage 01's code, run
// concurrently) and make diff FROM=05 TO=06 (the event loop disappears into
// the runtime).
package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

const stage = "06-goroutines-compare"

func main() {
	if isChild() { // this process is one request of -model processes (models.go)
		os.Exit(runChild(os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(program(os.Args[1:], os.Stdout, os.Stderr))
}

// program is the whole run: the command line, the requests, fetchAll (the
// lesson, below), and the report. It returns the exit code: 0 when every
// request got a complete response, 1 when some failed, 2 when the run could
// not start.
func program(args []string, stdout, stderr io.Writer) int {
	flags, cfg := sharedFlags(stage, stderr) // -n, -delay, -addr, … (scaffold.go)
	flags.Func("model", "how each request runs: `goroutines` (the default: net, on the runtime's netpoller), epoll-goroutines (on a netpoller of this program's own, Linux), threads (an OS thread each), processes (a process each) or io_uring (completions, not readiness, Linux)", setModel)
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

// models are the ways to run one request that -model chooses from. Every
// model gives each request a goroutine; they differ in what it does there.
var models = map[string]func(r *request) error{
	"goroutines":       fetch,            // the net package, on the runtime's netpoller (this file)
	"epoll-goroutines": fetchOnOwnPoller, // raw sockets, parked and woken by an epoll loop of our own (epoll.go)
	"threads":          fetchOnThread,    // an OS thread of its own, blocking system calls (models.go)
	"processes":        fetchInProcess,   // a process of its own (models.go)
	"io_uring":         nil,              // no goroutine each: one loop of completions for the run (uring.go, Linux)
}

// model is the -model flag: the key in models that runs the requests.
var model = "goroutines"

// setModel checks a -model value, so a typo stops the run before it starts,
// and so does a kernel without io_uring.
func setModel(name string) error {
	if _, ok := models[name]; !ok {
		return fmt.Errorf("no model %q: want goroutines, epoll-goroutines, threads, processes or io_uring", name)
	}
	if name == "io_uring" {
		if err := uringAvailable(); err != nil {
			return err
		}
	}
	model = name
	return nil
}

// fetchAll is the part every stage rewrites: how the requests are driven.
// Here, each request runs in a goroutine of its own, from start to finish as
// in stage 01, and fetchAll waits until every one is done. There is no loop
// over sockets here: the runtime has it. A goroutine may first run some time
// after the go statement (thousands are started at once), so each looks at
// the clock when it does: once -deadline has passed, its request fails at
// once, without starting.
func fetchAll(rn *run) {
	if model == "io_uring" { // completions, not goroutines: the other way to wait (uring.go)
		fetchAllOnRing(rn)
		return
	}
	fetchOne := models[model]
	if model == "epoll-goroutines" { // the one model with a loop of its own to start (epoll.go)
		if err := startOwnPoller(rn); err != nil {
			for _, r := range rn.requests {
				r.begin()
				r.finish(err)
			}
			return
		}
		defer stopOwnPoller()
	}
	var wg sync.WaitGroup
	for _, r := range rn.requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.begin()
			if rn.timeLeft() == 0 {
				r.finish(r.notStarted())
				return
			}
			r.finish(fetchOne(r))
		}()
	}
	wg.Wait()
}

// fetch does one whole HTTP request with the net package. The calls it
// records are calls into net, named after the system calls of stage 01 that
// they stand for; the system calls net makes are more. One Dial is a
// nonblocking socket(2), a connect(2) that returns EINPROGRESS, an
// epoll_ctl(2) that adds the socket to the runtime's epoll, a park until
// epoll says it is writable, a getsockopt(2) SO_ERROR to learn whether the
// connect worked, and setsockopt(2) for TCP_NODELAY and keep-alive. The
// errors net returns already say which call failed and where ("dial tcp
// 127.0.0.1:1: connect: connection refused"), so they are returned as they
// are, except a timeout, which says which step -deadline ended.
func fetch(r *request) error {
	// The server's address is already resolved (r.addr): dialing the IP
	// address itself means no name lookup per request. The dialer gives up
	// at -deadline.
	dialer := net.Dialer{Deadline: r.rn.deadline}
	conn, err := dialer.Dial("tcp", addrPort(r.addr).String())
	r.record("dial", 0, err)
	if err != nil {
		return timedOutOr(r, err, "connecting") // net has closed the socket already
	}
	defer closeConn(r, conn)

	// SetDeadline makes every Read and Write on conn from now on fail once
	// -deadline has passed. It makes no system call: the runtime keeps a
	// timer, and when it fires, wakes the goroutine parked in the netpoller.
	if err := conn.SetDeadline(r.rn.deadline); err != nil {
		return err
	}
	if err := sendRequest(r, conn); err != nil {
		return timedOutOr(r, err, "sending the request")
	}
	if err := receiveResponse(r, conn); err != nil {
		return timedOutOr(r, err, fmt.Sprintf("reading the response (%d bytes so far)", len(r.response)))
	}
	return nil
}

// addrPort is a socket address as the net package writes it, an IP address
// of either family and a port: 127.0.0.1:8000, or [::1]:8000.
func addrPort(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port))
	}
	return netip.AddrPort{} // resolve (scaffold.go) makes no other kind
}

// timedOutOr turns net's "i/o timeout" (the deadline passed) into the error
// every stage gives then; any other error is returned as it is.
func timedOutOr(r *request, err error, doing string) error {
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return r.timedOut(doing)
	}
	return err
}

// sendRequest writes the request. One Write is enough: it returns only once
// every byte is written, or with an error. Underneath, the runtime calls
// write(2) until all is sent; when the send buffer is full, write(2) says
// EAGAIN and the runtime parks this goroutine until epoll says the socket is
// writable again. A signal's EINTR is retried there too.
func sendRequest(r *request, conn net.Conn) error {
	n, err := conn.Write(r.raw)
	r.record("write", n, err)
	return err
}

// receiveResponse reads until the response is complete: until the server
// closes the connection, which is how an HTTP/1.0 response ends, or until
// the response's own framing says it is whole (received tells), as from a
// server that keeps the connection open. Each Read returns the bytes that
// have arrived; when none have, read(2) says EAGAIN underneath and the
// runtime parks this goroutine until epoll says the socket is readable.
// read(2) returning 0 (end of file) comes back as io.EOF.
func receiveResponse(r *request, conn net.Conn) error {
	buf := make([]byte, 8192)
	for {
		n, err := conn.Read(buf)
		if err == io.EOF {
			err = nil // counted as stage 01 counts it: a read that returned 0
		}
		r.record("read", n, err)
		switch {
		case err != nil:
			return err
		case n == 0:
			return nil // end of file: the server closed (finish checks the response is whole)
		}
		if complete, err := r.received(buf[:n]); complete || err != nil {
			return err // whole by its framing, or broken (not HTTP, over -max-bytes…)
		}
	}
}

// closeConn closes the connection: the runtime takes the descriptor out of
// its epoll set (epoll_ctl DEL) and closes it. Every connection is closed
// exactly once, whether its request succeeded or not.
func closeConn(r *request, conn net.Conn) {
	err := conn.Close()
	r.record("close", 0, err)
}
