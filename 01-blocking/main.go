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
// a blocked process sleeps.
//
// Everything around the lesson (flags, request bytes, the report) is in
// scaffold.go, the same file in every stage. Next: make diff FROM=01 TO=02.
package main

import (
	"flag"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

const stage = "01-blocking"

func main() {
	os.Exit(runStage(os.Args[1:], os.Stdout, os.Stderr))
}

// addStageFlags adds the flags only this stage has. Stage 01 has none: the
// flags every stage shares are in scaffold.go.
func addStageFlags(fs *flag.FlagSet) {}

// fetchAll is the part every stage rewrites: how the requests are driven.
// Here, one after another: the next request starts when the previous is done.
func fetchAll(rn *run) {
	for _, r := range rn.requests {
		r.begin()
		r.finish(fetch(r))
	}
}

// fetch does one whole HTTP request over a blocking socket.
func fetch(r *request) error {
	// socket(2) makes a TCP endpoint and returns its descriptor, a small
	// integer that names it in every later call. (Python: socket.socket())
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	r.record("socket", fd, err)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer closeSocket(r, fd)

	// connect(2) sends the SYN and sleeps until the handshake is done, or
	// fails (ECONNREFUSED when nothing listens there). Go installs its signal
	// handlers with SA_RESTART, so the kernel restarts this call by itself
	// when a signal arrives; the nonblocking stages must retry by hand.
	err = unix.Connect(fd, r.addr)
	r.record("connect", 0, err)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", r.target, err)
	}
	if err := sendRequest(r, fd); err != nil {
		return err
	}
	return receiveResponse(r, fd)
}

// sendRequest writes the request. write(2) may take fewer bytes than it was
// given (a "short write"), so it loops until every byte is sent, as Python's
// sendall does.
func sendRequest(r *request, fd int) error {
	for sent := 0; sent < len(r.raw); {
		n, err := unix.Write(fd, r.raw[sent:])
		r.record("write", n, err)
		if err == unix.EINTR {
			continue // a signal arrived before anything was written: try again
		}
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		sent += n
	}
	return nil
}

// receiveResponse reads until the server closes the connection. With
// HTTP/1.0 that is how a response ends: read(2) returns 0 (end of file).
// Until then each read sleeps until some bytes are there.
func receiveResponse(r *request, fd int) error {
	buf := make([]byte, 8192)
	for {
		n, err := unix.Read(fd, buf)
		r.record("read", n, err)
		switch {
		case err == unix.EINTR:
			continue // a signal arrived before any byte did: read again
		case err != nil:
			return fmt.Errorf("read: %w", err)
		case n == 0:
			return nil // end of file: the server closed, the response is complete
		}
		if err := r.checkSize(len(r.response) + n); err != nil {
			return err // a huge or endless response: stop here (-max-bytes)
		}
		r.received(buf[:n])
	}
}

// closeSocket gives the descriptor back to the kernel: every socket is closed
// exactly once, whether its request succeeded or not.
func closeSocket(r *request, fd int) {
	err := unix.Close(fd)
	r.record("close", 0, err)
}
