//go:build unix

// The tests particular to stage 02; the tests every stage passes are in
// scaffold_test.go.

package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestAllRequestsInFlightTogether proves the concurrency from the server's
// side: every request was being handled at the same moment. gather=5 makes
// the server hold each request until all five have arrived, so the peak is
// exactly 5 for a client that has them all open at once, however slow the
// machine, and 1 for a client that sends them one by one.
func TestAllRequestsInFlightTogether(t *testing.T) {
	srv := startServer(t)
	together := "/page?gather=5"
	rn := newTestRun(t, srv, 0, together, together, together, together, together)
	rn.fetch()
	sameResponses(t, srv, rn)
	st := srv.Stats(rn.tag)
	if st.Requests != 5 || st.PeakInFlight != 5 {
		t.Errorf("server saw %d requests with at most %d in flight; want 5, all at once", st.Requests, st.PeakInFlight)
	}
}

// TestSpinningWastesCalls shows the price: while the server waits, the loop
// keeps asking, and every read that finds nothing returns EAGAIN.
func TestSpinningWastesCalls(t *testing.T) {
	srv := startServer(t)
	rn := newTestRun(t, srv, 20*time.Millisecond, "", "")
	rn.fetch()
	sameResponses(t, srv, rn)
	if rn.counts()["read EAGAIN"] == 0 || rn.summary().Wasted < rn.counts()["read EAGAIN"] {
		t.Errorf("read EAGAIN %d, wasted %d: want wasted reads while the server waits", rn.counts()["read EAGAIN"], rn.summary().Wasted)
	}
	if rn.counts()["connect EINPROGRESS"] != 2 {
		t.Errorf("connect EINPROGRESS %d, want 2: a nonblocking connect returns before the handshake", rn.counts()["connect EINPROGRESS"])
	}
}

// TestNothingIsSentBeforeTheConnectFinishes guards against the notes' first
// bug: for every request, the trace must show a connect that succeeded
// (= 0, or EISCONN) before the first write.
func TestNothingIsSentBeforeTheConnectFinishes(t *testing.T) {
	var out, trace bytes.Buffer
	if code := program([]string{"-n", "4", "-delay", "0", "-trace"}, &out, &trace); code != 0 {
		t.Fatalf("exit code %d, stderr: %s", code, trace.String())
	}
	connected := map[string]bool{} // "req 1" → a connect has succeeded
	for _, line := range strings.Split(trace.String(), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 6 || fields[1] != "req" {
			continue
		}
		who, call, result := fields[1]+" "+fields[2], fields[3], strings.Join(fields[5:], " ")
		switch {
		case call == "connect" && (result == "0" || strings.Contains(result, "EISCONN")):
			connected[who] = true
		case call == "write" && !connected[who]:
			t.Errorf("%s writes before its connect finished:\n%s", who, trace.String())
			return
		}
	}
	if len(connected) != 4 {
		t.Errorf("%d requests connected, want 4:\n%s", len(connected), trace.String())
	}
}

// TestNotesConnectRace shows the notes' first bug on this machine, without
// root and without a slow network. A listening socket whose accept queue is
// full drops new SYNs, so a connect stays in progress until the client sends
// its SYN again, about a second later: a handshake as slow as a far-away
// server's. The notes' order (connect, then send at once) fails with EAGAIN,
// their BlockingIOError; this stage's order (send only once connect says it
// is done) succeeds once the server makes room.
func TestNotesConnectRace(t *testing.T) {
	server := newSlowHandshakeServer(t)

	// The notes' order: a nonblocking connect, then a write right away.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	if err := unix.Connect(fd, server.sockaddr); err != unix.EINPROGRESS {
		t.Fatalf("connect: %v, want EINPROGRESS", err)
	}
	_, err = unix.Write(fd, []byte("GET / HTTP/1.0\r\n\r\n"))
	t.Logf("the notes' order: write right after connect returned %v", err)
	if err != unix.EAGAIN {
		t.Errorf("write before the handshake: %v, want EAGAIN (the notes' BlockingIOError)", err)
	}
	unix.Close(fd) // done with it: its next SYN must not take the place meant for the stage's

	// This stage's order, on the same kind of slow handshake.
	rn, err := prepare(&config{stage: stage, n: 1, addr: server.addr.String()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r := rn.requests[0]
	r.begin()
	c, err := start(r)
	if err != nil {
		t.Fatal(err)
	}
	server.makeRoom() // the SYN sent again in about a second will be answered
	buf := make([]byte, 8192)
	giveUp := time.Now().Add(20 * time.Second) // not a timing assertion: only so that a broken run cannot hang
	for {
		done, err := c.step(buf)
		if err == nil && !done && time.Now().After(giveUp) {
			err = errors.New("no response after 20 s")
		}
		if done || err != nil {
			closeSocket(r, c.fd)
			r.finish(err)
			break
		}
	}
	t.Logf("this stage's order: %d connects returned EALREADY before the handshake finished; response %d, error %v", rn.counts()["connect EALREADY"], r.parse.status, r.err)
	if r.err != nil || r.parse.status != 200 || rn.counts()["connect EALREADY"] == 0 {
		t.Errorf("status %d, error %v, %d EALREADY: want 200 after a slow handshake", r.parse.status, r.err, rn.counts()["connect EALREADY"])
	}
	if r.err != nil {
		return // the server may still be waiting for a request that never came
	}
	if got := <-server.received; got != string(r.raw) {
		t.Errorf("the server received %q, want %q", got, r.raw)
	}
}

// slowHandshakeServer is a black hole that can make room: a listening
// socket whose accept queue (backlog 0: room for one) is filled at once by a
// connection it does not accept, so the kernel drops every SYN that comes
// after, until makeRoom accepts the filler. (testserver.BlackHole is the same
// hole without the room; this test needs the socket itself, to accept.)
type slowHandshakeServer struct {
	fd       int                 // the listening socket
	addr     *net.TCPAddr        // its address
	sockaddr *unix.SockaddrInet4 // the same, as unix.Connect takes it
	filler   net.Conn            // the connection that fills the queue
	received chan string         // the request of the connection after the filler
}

func newSlowHandshakeServer(t *testing.T) *slowHandshakeServer {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := &slowHandshakeServer{fd: fd, received: make(chan string, 1)}
	t.Cleanup(func() {
		if s.filler != nil {
			s.filler.Close()
		}
		unix.Close(fd)
	})
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	s.sockaddr = &unix.SockaddrInet4{Port: sa.(*unix.SockaddrInet4).Port, Addr: [4]byte{127, 0, 0, 1}}
	s.addr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: s.sockaddr.Port}
	if s.filler, err = net.Dial("tcp", s.addr.String()); err != nil {
		t.Fatal(err)
	}
	return s
}

// makeRoom accepts the filler, so the next SYN gets its handshake, then
// serves that next connection: read its request, answer, close.
func (s *slowHandshakeServer) makeRoom() {
	go func() {
		filler, _, err := unix.Accept(s.fd)
		if err != nil {
			s.received <- err.Error()
			return
		}
		unix.Close(filler)
		conn, _, err := unix.Accept(s.fd)
		if err != nil {
			s.received <- err.Error()
			return
		}
		defer unix.Close(conn)
		request := readRequest(conn)
		unix.Write(conn, []byte("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"))
		s.received <- request
	}()
}

// readRequest reads until the blank line that ends a request's header.
func readRequest(fd int) string {
	var request []byte
	buf := make([]byte, 1024)
	for !strings.HasSuffix(string(request), "\r\n\r\n") {
		n, err := unix.Read(fd, buf)
		if err != nil || n == 0 {
			break
		}
		request = append(request, buf[:n]...)
	}
	return string(request)
}

// TestShortWritesContinueWhenWritable: an 8 MB request to a server that
// reads late fills the send buffer, write returns EAGAIN, and the rest goes
// out once the socket can take more (the notes' bug 7). The request arrives
// whole (checked inside sendLargeRequest).
func TestShortWritesContinueWhenWritable(t *testing.T) {
	rn := sendLargeRequest(t)
	t.Logf("write: %d calls, %d of them EAGAIN", rn.counts()["write"], rn.counts()["write EAGAIN"])
	if rn.counts()["write EAGAIN"] == 0 || rn.counts()["write"] < 2 {
		t.Errorf("write %d, write EAGAIN %d: the request should not fit in one write", rn.counts()["write"], rn.counts()["write EAGAIN"])
	}
}
