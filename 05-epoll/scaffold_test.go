//go:build unix

// scaffold_test.go is the same, byte for byte, in every stage, like
// scaffold.go: the tests every stage must pass, whatever its way of driving
// the requests. What is particular to one stage is tested in main_test.go.

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"blocking-to-epoll/internal/testserver"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"
)

// startServer starts the test server for one test.
func startServer(t *testing.T) *testserver.Server {
	t.Helper()
	srv, err := testserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// newTestRun prepares a run of len(paths) requests to srv, each asking the
// server to wait delay. An empty path keeps the usual request for that id.
func newTestRun(t *testing.T, srv *testserver.Server, delay time.Duration, paths ...string) *run {
	t.Helper()
	rn, err := prepare(&config{stage: stage, n: len(paths), delay: delay, addr: srv.Addr(), deadline: time.Minute}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rn.embedded = srv                             // its record is read in this process, as a stage reads its own
	rn.deadline = time.Now().Add(rn.cfg.deadline) // for tests that drive a stage's loop themselves; fetch sets it again
	for i, path := range paths {
		if path != "" {
			rn.requests[i] = rn.newRequest(i+1, srv.Addr(), path)
		}
	}
	return rn
}

// fetch runs the lesson as program does, between the clock's start and stop.
func (rn *run) fetch() {
	rn.startClock()
	fetchAll(rn)
	rn.stopClock()
}

// outcome is what one request ended with, as the client saw it or as the
// server says it sent it.
type outcome struct {
	ID     string
	Status int
	Bytes  int
	SHA256 string
	Failed bool
}

func clientOutcomes(rn *run) []outcome {
	var out []outcome
	for _, r := range rn.requests {
		out = append(out, outcome{ID: strconv.Itoa(r.id), Status: r.parse.status, Bytes: len(r.parse.body), SHA256: sha(r.parse.body), Failed: r.err != nil})
	}
	return out
}

func serverOutcomes(st testserver.Stats) []outcome {
	var out []outcome
	for _, e := range st.Entries {
		out = append(out, outcome{ID: e.ID, Status: e.Status, Bytes: int(e.BodyBytes), SHA256: e.BodySHA256})
	}
	return out
}

// sameResponses fails the test unless every request got exactly the status
// and body bytes the server says it sent.
func sameResponses(t *testing.T, srv *testserver.Server, rn *run) {
	t.Helper()
	byID := cmpopts.SortSlices(func(a, b outcome) bool { return a.ID < b.ID })
	if diff := cmp.Diff(serverOutcomes(settledStats(t, srv, rn.tag)), clientOutcomes(rn), byID); diff != "" {
		t.Errorf("client and server disagree (-server +client):\n%s", diff)
	}
	for _, r := range rn.requests {
		if r.err != nil {
			t.Errorf("request %d failed: %v", r.id, r.err)
		}
	}
}

// settledStats is the server's record of a run once it has finished every
// request. A client that stops reading when the Content-Length has arrived
// can be done a moment before the server's handler has returned and
// completed its entry.
func settledStats(t *testing.T, srv *testserver.Server, tag string) testserver.Stats {
	t.Helper()
	st := srv.Stats(tag)
	for try := 0; st.InFlight > 0 && try < 250; try++ {
		time.Sleep(20 * time.Millisecond)
		st = srv.Stats(tag)
	}
	return st
}

func TestEveryResponseArrivesWhole(t *testing.T) {
	srv := startServer(t)
	rn := newTestRun(t, srv, 10*time.Millisecond, "", "", "", "")
	rn.fetch()
	sameResponses(t, srv, rn)
	if got := rn.summary().Bytes; got == 0 {
		t.Errorf("body bytes = 0, want the pages' bytes")
	}
}

func TestDrippedAndLargeResponsesArriveWhole(t *testing.T) {
	rn := fetchHardResponses(t)
	for i, fault := range []string{"a response dripped in 300-byte pieces", "a 3,000,000-byte body", "slow headers"} {
		logOutcome(t, fault, rn.requests[i])
	}
}

// fetchHardResponses fetches the responses that test the reading (dripped in
// pieces, 3 MB, slow headers) beside a plain one, and fails the test unless
// every byte is what the server sent.
func fetchHardResponses(t *testing.T) *run {
	t.Helper()
	srv := startServer(t)
	rn := newTestRun(t, srv, 0,
		"/page?fault=drip&size=6000&chunk=300&pause=5ms",
		"/page?fault=large&size=3000000",
		"/page?fault=slowheader&pause=5ms",
		"")
	rn.fetch()
	sameResponses(t, srv, rn)
	if got := len(rn.requests[1].parse.body); got != 3000000 {
		t.Errorf("large body: %d bytes, want 3000000", got)
	}
	return rn
}

// logOutcome records what a fault did to its request, in a line that
// docs/reliability.md collects from every stage (make docs).
func logOutcome(t *testing.T, fault string, r *request) {
	t.Helper()
	outcome := fmt.Sprintf("whole: status %d, %d body bytes, as sent", r.parse.status, len(r.parse.body))
	if r.err != nil {
		outcome = "fails alone: " + r.err.Error()
	}
	t.Logf("outcome | %s | %s", fault, outcome)
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) *net.TCPAddr {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close()
	return addr
}

func TestRefusedConnectionFailsOnlyThatRequest(t *testing.T) {
	srv := startServer(t)
	rn := newTestRun(t, srv, 10*time.Millisecond, "", "", "", "")
	withAddr(rn.requests[1], closedPort(t))
	rn.fetch()

	for _, r := range rn.requests {
		if r.id == 2 {
			continue
		}
		if r.err != nil || r.parse.status != 200 {
			t.Errorf("request %d: status %d, error %v; want 200 and no error", r.id, r.parse.status, r.err)
		}
	}
	logOutcome(t, "a closed port (connection refused)", rn.requests[1])
	err := rn.requests[1].err
	if err == nil {
		t.Fatal("request to a closed port succeeded")
	}
	for _, want := range []string{"connect", "connection refused", "nothing is listening"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// withAddr points r at another address (a copy: the requests share one).
func withAddr(r *request, addr *net.TCPAddr) {
	if ip4 := addr.IP.To4(); ip4 != nil {
		r.setAddr(&unix.SockaddrInet4{Port: addr.Port, Addr: [4]byte(ip4)})
	} else {
		r.setAddr(&unix.SockaddrInet6{Port: addr.Port, Addr: [16]byte(addr.IP.To16())})
	}
	r.hostport = addr.String()
}

// TestBothAddressFamilies: -addr takes an IPv4 or an IPv6 address, and the
// socket follows (AF_INET or AF_INET6). A name with addresses of both kinds,
// such as localhost, reaches a server that listens on ::1 alone.
func TestBothAddressFamilies(t *testing.T) {
	srv, err := testserver.Start("[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback (::1) here:", err)
	}
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Addr())
	addrs := []string{srv.Addr()}
	if ips, _ := net.LookupIP("localhost"); slices.ContainsFunc(ips, net.IP.IsLoopback) && slices.ContainsFunc(ips, func(ip net.IP) bool { return ip.To4() == nil }) {
		addrs = append(addrs, "localhost:"+port)
	} else {
		t.Logf("localhost has no IPv6 address here (%v): only [::1] is tried", ips)
	}
	for _, addr := range addrs {
		s := runJSON(t, "-n", "3", "-delay", "0", "-addr", addr)
		if s.OK != 3 || s.PeakInFlight == nil {
			t.Errorf("-addr %s: %d ok, peak %v; want 3 and the server's peak", addr, s.OK, s.PeakInFlight)
		}
	}
}

func TestBrokenServersGiveClearErrors(t *testing.T) {
	cases := []struct {
		fault string
		what  string
		want  string
	}{
		{"reset", "a reset (RST) instead of an answer", "reset"},
		{"close", "a close without an answer", "closed the connection without sending anything"},
		{"garbage", "garbage instead of HTTP", "not HTTP"},
		{"truncate", "a body cut short of its Content-Length", "cut short"},
	}
	for _, c := range cases {
		t.Run(c.fault, func(t *testing.T) {
			srv := startServer(t)
			rn := newTestRun(t, srv, 10*time.Millisecond, "", "/page?fault="+c.fault, "")
			rn.fetch()
			logOutcome(t, c.what, rn.requests[1])
			if err := rn.requests[1].err; err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("fault %s: error %v, want one that says %q", c.fault, err, c.want)
			}
			for _, r := range []*request{rn.requests[0], rn.requests[2]} {
				if r.err != nil || r.parse.status != 200 {
					t.Errorf("request %d next to the broken one: status %d, error %v", r.id, r.parse.status, r.err)
				}
			}
		})
	}
}

// TestServersNotWrittenHere: answers that ordinary servers give, and that a
// client which only knows "read until end of file" gets wrong, each beside
// a good request (see checkServersNotWrittenHere).
func TestServersNotWrittenHere(t *testing.T) {
	checkServersNotWrittenHere(t)
}

// checkServersNotWrittenHere fetches, with -deadline 10s and -max-bytes
// 1 MiB, one request per way of answering, beside a good one, and checks
// each outcome: a response that is whole by its framing completes at once
// (never by timing out at the deadline), with exactly the payload the
// server sent; what is not HTTP, or never ends, fails alone, saying why.
func checkServersNotWrittenHere(t *testing.T) {
	t.Helper()
	cases := []struct {
		fault string
		what  string // the row of docs/reliability.md
		want  string // "" for a whole response, else words of the error
	}{
		{"keepalive", "an HTTP/1.1 server that keeps the connection open after a Content-Length response", ""},
		{"chunked", "a chunked body (Transfer-Encoding: chunked), the connection kept open", ""},
		{"barelf", "a header whose lines end in a bare LF", ""},
		{"resetafter", "a reset right after a whole Content-Length response", ""},
		{"banner", "a server that greets with an SSH banner and waits", "not HTTP"},
		{"endlessheader", "a header that never ends, with -max-bytes 1048576", "larger than -max-bytes (1048576 bytes)"},
		{"overlong", "a body longer than its Content-Length (all in one piece)", "bytes more than the response it framed"},
	}
	srv := startServer(t)
	paths := []string{""}
	for _, c := range cases {
		paths = append(paths, "/page?fault="+c.fault)
	}
	rn := newTestRun(t, srv, 0, paths...)
	rn.cfg.deadline, rn.cfg.maxBytes = 10*time.Second, 1<<20
	rn.fetch()
	record := map[string]testserver.Entry{}
	for _, e := range settledStats(t, srv, rn.tag).Entries {
		record[e.ID] = e
	}
	if r := rn.requests[0]; r.err != nil || r.parse.status != 200 {
		t.Errorf("the good request beside them: status %d, error %v", r.parse.status, r.err)
	}
	for i, c := range cases {
		r := rn.requests[i+1]
		logOutcome(t, c.what, r)
		switch {
		case r.err != nil && errors.Is(r.err, errTimedOut):
			t.Errorf("%s: %v; want it over long before -deadline", c.fault, r.err)
		case c.want == "":
			sent := record[strconv.Itoa(r.id)]
			got := outcome{ID: strconv.Itoa(r.id), Status: r.parse.status, Bytes: len(r.parse.body), SHA256: sha(r.parse.body), Failed: r.err != nil}
			want := outcome{ID: sent.ID, Status: sent.Status, Bytes: int(sent.BodyBytes), SHA256: sent.BodySHA256}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: client and server disagree (-server +client), error %v:\n%s", c.fault, r.err, diff)
			}
		case r.err == nil || !strings.Contains(r.err.Error(), c.want):
			t.Errorf("%s: error %v, want one that says %q", c.fault, r.err, c.want)
		}
	}
}

// sha is the hex SHA-256 of a body, "" for none, as the server records it.
func sha(body []byte) string {
	if len(body) == 0 {
		return ""
	}
	h := sha256.Sum256(body)
	return hex.EncodeToString(h[:])
}

// TestHugeResponsesAreCapped: a server that sends far more than -max-bytes,
// or never stops sending, fails that request with a clear message once the
// cap is reached, and the requests beside it complete.
func TestHugeResponsesAreCapped(t *testing.T) {
	checkResponsesAreCapped(t)
}

// checkResponsesAreCapped runs a 5,000,000-byte body and an endless one with
// -max-bytes 1 MiB beside a good request.
func checkResponsesAreCapped(t *testing.T) {
	t.Helper()
	srv := startServer(t)
	rn := newTestRun(t, srv, 0, "/page?fault=large&size=5000000", "", "/page?fault=endless")
	rn.cfg.maxBytes = 1 << 20
	rn.fetch()
	logOutcome(t, "a 5,000,000-byte body, with -max-bytes 1048576", rn.requests[0])
	logOutcome(t, "a body that never ends, with -max-bytes 1048576", rn.requests[2])
	for _, r := range []*request{rn.requests[0], rn.requests[2]} {
		if r.err == nil || !strings.Contains(r.err.Error(), "larger than -max-bytes (1048576 bytes)") {
			t.Errorf("request %d: error %v, want the -max-bytes message", r.id, r.err)
		}
		if len(r.response) > 1<<20 {
			t.Errorf("request %d kept %d bytes, more than -max-bytes", r.id, len(r.response))
		}
	}
	if r := rn.requests[1]; r.err != nil || r.parse.status != 200 {
		t.Errorf("the good request beside them: status %d, error %v", r.parse.status, r.err)
	}
}

// TestLargeRequestIsSentWhole sends a request far larger than the socket's
// send buffer to a server that waits before it reads: write(2) cannot take it
// in one go, and every byte must still arrive (the notes' sendall on a
// nonblocking socket would fail half-way).
func TestLargeRequestIsSentWhole(t *testing.T) {
	sendLargeRequest(t)
}

// sendLargeRequest sends an 8 MB request to a server whose receive buffer is
// small (64 KB) and which waits 100 ms before it reads: far more than the
// kernel can hold for it, so writes come back short, or with EAGAIN on a
// nonblocking socket. The server answers with the number of bytes it got.
func sendLargeRequest(t *testing.T) *run {
	t.Helper()
	raw := largeRequest()
	ln := smallBufferListener(t)
	defer ln.Close()
	go func() { // a server that lets the client's send buffer fill up, then reads it all
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		time.Sleep(100 * time.Millisecond)
		n, _ := io.ReadFull(conn, make([]byte, len(raw)))
		got := strconv.Itoa(n)
		io.WriteString(conn, "HTTP/1.0 200 OK\r\nContent-Length: "+strconv.Itoa(len(got))+"\r\n\r\n"+got)
	}()

	srv := startServer(t)
	rn := newTestRun(t, srv, 0, "")
	withAddr(rn.requests[0], ln.Addr().(*net.TCPAddr))
	rn.requests[0].raw = []byte(raw)
	rn.fetch()
	r := rn.requests[0]
	logOutcome(t, "an 8 MB request to a server that reads late", r)
	if r.err != nil || string(r.parse.body) != strconv.Itoa(len(raw)) {
		t.Errorf("server received %q bytes (error %v); want all %d", r.parse.body, r.err, len(raw))
	}
	return rn
}

// largeRequest is an 8 MB request: far more than a socket's buffers hold.
func largeRequest() string {
	padding := strings.Repeat("x", 8<<20)
	return "GET /page HTTP/1.0\r\nHost: slow-reader\r\nX-Padding: " + padding + "\r\n\r\n"
}

// smallBufferListener listens with a receive buffer of 64 KB, so that a
// client's large request fills it and the client's send buffer behind it.
func smallBufferListener(t *testing.T) net.Listener {
	t.Helper()
	small := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10) })
		return err
	}}
	ln, err := small.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestDeadlineEndsTheRun: when -deadline passes, every request still going
// fails as timed out, with a message that says what it was waiting for,
// whichever step its server stopped at; the request beside it completes, the
// run ends, and nothing is left open.
func TestDeadlineEndsTheRun(t *testing.T) {
	checkDeadlineEndsTheRun(t)
}

// checkDeadlineEndsTheRun runs a good request beside one whose server stops
// at the handshake, at reading the request, before answering, or half-way
// through its answer, with -deadline 300ms.
func checkDeadlineEndsTheRun(t *testing.T) {
	t.Helper()
	cases := []struct {
		name string
		what string // the row of docs/reliability.md
		path string // request 2's path on the test server
		want string
	}{
		{"handshake", "a server that never answers the TCP handshake", "", "timed out connecting"},
		{"request", "a server that never reads the (8 MB) request", "", "timed out sending the request"},
		{"silent", "a server that never answers (fault=silent)", "/page?fault=silent", "timed out reading the response (0 bytes so far)"},
		{"stall", "a server that stops half-way (fault=stall)", "/page?fault=stall&size=100000", "timed out reading the response ("},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fdsBefore, goroutinesBefore := openDescriptors(t), runtime.NumGoroutine()
			srv, err := testserver.Start("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			rn := newTestRun(t, srv, 0, "", c.path)
			rn.cfg.deadline = 300 * time.Millisecond
			stop := stopsAt(t, c.name, rn.requests[1])
			rn.fetch()
			stop()
			srv.Close()

			r := rn.requests[1]
			logOutcome(t, c.what+", with -deadline 300ms", r)
			if r.err == nil || !strings.Contains(r.err.Error(), c.want) || !strings.Contains(r.err.Error(), "-deadline of 300ms passed") {
				t.Errorf("error %v, want one that says %q and names -deadline", r.err, c.want)
			}
			if c.name == "stall" && strings.Contains(r.err.Error(), "(0 bytes so far)") {
				t.Errorf("error %v: the server sent half of its response first", r.err)
			}
			if r := rn.requests[0]; r.err != nil || r.parse.status != 200 {
				t.Errorf("the request beside it: status %d, error %v", r.parse.status, r.err)
			}
			nothingLeftOpen(t, fdsBefore, goroutinesBefore)
		})
	}
}

// stopsAt points r at a server of its own that stops at the handshake or
// at reading the request, and returns the function that closes that server.
// The other cases use the test server's faults.
func stopsAt(t *testing.T, step string, r *request) (stop func()) {
	t.Helper()
	switch step {
	case "handshake":
		hole, err := testserver.BlackHole("tcp4")
		if err != nil {
			t.Fatal(err)
		}
		withAddr(r, hole.Addr())
		return func() { hole.Close() }
	case "request":
		deaf, err := testserver.Deaf("tcp4")
		if err != nil {
			t.Fatal(err)
		}
		withAddr(r, deaf.Addr())
		r.raw = []byte(largeRequest())
		return func() { deaf.Close() }
	}
	return func() {}
}

func TestSignalsCostNoRequest(t *testing.T) {
	checkSignalsCostNoRequest(t)
}

// checkSignalsCostNoRequest runs four requests, one dripped, while this
// process gets SIGURG and SIGWINCH every millisecond: every call a signal
// interrupts (EINTR) is made again, and every response arrives whole.
func checkSignalsCostNoRequest(t *testing.T) {
	t.Helper()
	srv := startServer(t)
	rn := newTestRun(t, srv, 30*time.Millisecond, "", "", "/page?fault=drip&size=3000&chunk=100&pause=2ms", "")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // a signal every millisecond, as a busy terminal or profiler might send
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				syscall.Kill(os.Getpid(), syscall.SIGURG)
				syscall.Kill(os.Getpid(), syscall.SIGWINCH)
			}
		}
	}()
	rn.fetch()
	close(stop)
	<-done
	sameResponses(t, srv, rn)
	interrupted := 0
	for key, count := range rn.counts() {
		if strings.HasSuffix(key, " EINTR") {
			t.Logf("%s: %d (interrupted, retried)", key, count)
			interrupted += count
		}
	}
	t.Logf("outcome | signals every millisecond | %d ok of %d, %d interrupted calls retried", rn.summary().OK, len(rn.requests), interrupted)
}

// openDescriptors lists this process's open file descriptors (Linux only).
func openDescriptors(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd here:", err)
	}
	var fds []string
	for _, e := range entries {
		target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		fds = append(fds, e.Name()+" → "+target)
	}
	return fds
}

func TestNothingIsLeftOpen(t *testing.T) {
	fdsBefore := openDescriptors(t)
	goroutinesBefore := runtime.NumGoroutine()

	srv, err := testserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rn := newTestRun(t, srv, 5*time.Millisecond, "", "/page?fault=reset", "/page?fault=garbage", "/page?fault=close", "")
	withAddr(rn.requests[4], closedPort(t))
	rn.fetch()
	srv.Close()
	nothingLeftOpen(t, fdsBefore, goroutinesBefore)
}

// nothingLeftOpen fails the test if this process holds a descriptor it did
// not hold before (fdsBefore from openDescriptors; a descriptor that closed
// meanwhile, such as a server connection of an earlier test, is no leak), or
// more goroutines. Closing is done when the code returns, but the runtime may
// take a moment to retire a goroutine, so it looks again for up to two
// seconds. The readdir of /proc/self/fd holds one descriptor while it runs,
// before and after alike, so the lists compare as they are.
func nothingLeftOpen(t *testing.T, fdsBefore []string, goroutinesBefore int) {
	t.Helper()
	var added []string
	for try := 0; try < 100; try++ {
		added = slices.DeleteFunc(openDescriptors(t), func(fd string) bool { return slices.Contains(fdsBefore, fd) })
		if len(added) == 0 && runtime.NumGoroutine() <= goroutinesBefore {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(added) > 0 {
		t.Errorf("descriptors left open: %s", strings.Join(added, ", "))
	}
	if n := runtime.NumGoroutine(); n > goroutinesBefore {
		t.Errorf("%d goroutines now, %d before the run", n, goroutinesBefore)
	}
}

func TestJSONSummaryHasEveryField(t *testing.T) {
	var out, errOut bytes.Buffer
	code := program([]string{"-n", "3", "-delay", "0", "-json"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit code %d, stderr: %s", code, errOut.String())
	}
	var fields map[string]any
	if err := json.Unmarshal(out.Bytes(), &fields); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	for _, key := range []string{"stage", "requests", "ok", "failed", "bytes", "wall_ms", "cpu_ms", "max_rss_kb", "deadline_ms", "syscalls", "peak_in_flight", "achieved_concurrency", "results"} {
		if _, ok := fields[key]; !ok {
			t.Errorf("JSON has no %q", key)
		}
	}
	var s struct {
		summary
		Results []result `json:"results"`
	}
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	if s.Stage != stage || s.Requests != 3 || s.OK != 3 || s.Failed != 0 || s.PeakInFlight == nil || len(s.Results) != 3 || s.Syscalls["write"] != 3 {
		t.Errorf("summary does not describe 3 good requests: %+v", s)
	}
	for i, r := range s.Results {
		if r.ID != i+1 || r.Status != 200 || r.Bytes == 0 || r.EndMS < r.StartMS || r.Error != "" {
			t.Errorf("result %d: %+v; want request %d's, a 200 with a body", i, r, i+1)
		}
	}
}

// TestWorksAgainstAnyHTTPServer points the stage at a server that is not the
// project's: responses still count, the peak is reported as unknown, and the
// server is sent the requests the user asked for and nothing else (no
// question for the test server's record).
func TestWorksAgainstAnyHTTPServer(t *testing.T) {
	paths := make(chan string, 10)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths <- r.URL.Path
		io.WriteString(w, "hello from another server")
	}))
	defer other.Close()
	s := runJSON(t, "-n", "3", "-addr", strings.TrimPrefix(other.URL, "http://"))
	if s.OK != 3 || s.Bytes != 3*len("hello from another server") || s.PeakInFlight != nil {
		t.Errorf("ok %d, bytes %d, peak %v; want 3, %d, null", s.OK, s.Bytes, s.PeakInFlight, 3*len("hello from another server"))
	}
	other.Close() // every handler has returned
	close(paths)
	var asked []string
	for path := range paths {
		asked = append(asked, path)
	}
	if diff := cmp.Diff([]string{"/page", "/s", "/s"}, asked, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("what the other server was asked (-want +got):\n%s", diff)
	}
}

// TestAStandaloneTestServerIsAskedForItsRecord: the project's test server in
// a process of its own (here: in this one, but reached only through -addr, as
// make server is) marks its responses, so the stage asks it for the peak.
func TestAStandaloneTestServerIsAskedForItsRecord(t *testing.T) {
	srv := startServer(t)
	s := runJSON(t, "-n", "3", "-delay", "0", "-addr", srv.Addr())
	if s.OK != 3 || s.PeakInFlight == nil || *s.PeakInFlight < 1 {
		t.Errorf("ok %d, peak %v; want 3 and the server's peak", s.OK, s.PeakInFlight)
	}
}

// runJSON runs the stage with -json and the given flags, and reads its summary.
func runJSON(t *testing.T, args ...string) summary {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := program(append(args, "-json"), &out, &errOut); code != 0 {
		t.Fatalf("%v: exit code %d, stderr: %s", args, code, errOut.String())
	}
	var s summary
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatalf("%v: the output is not the JSON summary: %v\n%s", args, err, out.String())
	}
	return s
}

// TestTheWholeRunEndsByTheDeadline: whatever a server does, the stage's
// whole run (the requests, the question for the record, the report) is over
// soon after -deadline: against a server that never reads, and against one
// that answers with the test server's mark and then never answers the
// question for its record.
func TestTheWholeRunEndsByTheDeadline(t *testing.T) {
	deaf, err := testserver.Deaf("tcp4")
	if err != nil {
		t.Fatal(err)
	}
	defer deaf.Close()
	hang := make(chan struct{})
	pretender := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(testserver.MarkHeader, testserver.MarkValue)
		if r.URL.Path == "/stats" {
			<-hang // the question for the record is never answered
			return
		}
		io.WriteString(w, "answered")
	}))
	defer pretender.Close()
	defer close(hang)

	const deadline = 500 * time.Millisecond
	for name, addr := range map[string]string{"deaf": deaf.Addr().String(), "stats never answered": strings.TrimPrefix(pretender.URL, "http://")} {
		var out, errOut bytes.Buffer
		began := time.Now()
		program([]string{"-n", "3", "-delay", "0", "-deadline", deadline.String(), "-addr", addr}, &out, &errOut)
		if took := time.Since(began); took > deadline+time.Second {
			t.Errorf("%s: the run took %v with -deadline %v", name, took, deadline)
		}
		if !strings.Contains(out.String(), "peak in flight at the server unknown") {
			t.Errorf("%s: the report does not say the peak is unknown:\n%s", name, out.String())
		}
	}
}

// TestOutOfDescriptorsSaysWhichLimit: when the process may open no more
// descriptors (EMFILE), each request fails saying which limit that is and
// how to live with it.
func TestOutOfDescriptorsSaysWhichLimit(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("lowering RLIMIT_NOFILE below the descriptors already open is checked on Linux only")
	}
	srv := startServer(t)
	rn := newTestRun(t, srv, 0, "", "")
	var saved unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &saved); err != nil {
		t.Skip("getrlimit:", err)
	}
	lowered := unix.Rlimit{Cur: 0, Max: saved.Max} // no new descriptor at all, whatever is open now
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lowered); err != nil {
		t.Skip("cannot lower RLIMIT_NOFILE here:", err)
	}
	rn.fetch()
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &saved); err != nil {
		t.Fatal("cannot put RLIMIT_NOFILE back:", err)
	}
	for _, r := range rn.requests {
		logOutcome(t, "no descriptor left (RLIMIT_NOFILE reached)", r)
		if r.err == nil || !strings.Contains(r.err.Error(), "too many open files") || !strings.Contains(r.err.Error(), "ulimit -n") {
			t.Errorf("request %d: error %v, want one that names the limit and ulimit -n", r.id, r.err)
		}
	}
}

func TestTextReportShowsEveryRequestAndTheTimeline(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := program([]string{"-n", "3", "-delay", "1ms"}, &out, &errOut); code != 0 {
		t.Fatalf("exit code %d, stderr: %s", code, errOut.String())
	}
	report := out.String()
	for _, want := range []string{"GET /s?wd=hello (www.baidu.com)", "GET /s?q=hello (www.so.com)", "GET /page (127.0.0.1:", "│", "3 ok, 0 failed", "peak in flight at the server", "system calls: ", "write 3"} {
		if !strings.Contains(report, want) {
			t.Errorf("report does not contain %q:\n%s", want, report)
		}
	}
}

func TestTraceShowsEachSystemCall(t *testing.T) {
	var out, trace bytes.Buffer
	if code := program([]string{"-n", "1", "-delay", "0", "-trace"}, &out, &trace); code != 0 {
		t.Fatalf("exit code %d, stderr: %s", code, trace.String())
	}
	for _, want := range []string{"req 1   write", "req 1   read", "req 1   close"} {
		if !strings.Contains(trace.String(), want) {
			t.Errorf("trace has no %q:\n%s", want, trace.String())
		}
	}
}

// TestHostNamesAreResolvedOnce: -addr takes a name as well as an address. The
// name is looked up once, before the first request (never inside the loop:
// the notes' bug 8), and a name that does not resolve stops the run with a
// message that says so, before any socket is made.
func TestHostNamesAreResolvedOnce(t *testing.T) {
	srv := startServer(t)
	_, port, _ := net.SplitHostPort(srv.Addr())
	var out, errOut bytes.Buffer
	if code := program([]string{"-n", "2", "-delay", "0", "-addr", "localhost:" + port, "-json"}, &out, &errOut); code != 0 {
		t.Fatalf("-addr localhost:%s: exit code %d, stderr: %s", port, code, errOut.String())
	}
	out.Reset()
	errOut.Reset()
	code := program([]string{"-n", "2", "-addr", "no-such-host.invalid:80"}, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), `cannot resolve "no-such-host.invalid"`) {
		t.Errorf("unresolvable name: exit code %d, stderr %q; want 2 and a message naming the host", code, errOut.String())
	}
}

func TestBadFlagsAreRefusedClearly(t *testing.T) {
	for _, args := range [][]string{{"-n", "0"}, {"-n", "200000000"}, {"-delay", "-1s"}, {"-max-bytes", "-1"}, {"-deadline", "0"}, {"-addr", "nonsense"}, {"-addr", "127.0.0.1:99999"}, {"extra"}} {
		var out, errOut bytes.Buffer
		if code := program(args, &out, &errOut); code != 2 || errOut.Len() == 0 {
			t.Errorf("%v: exit code %d, stderr %q; want 2 and a message", args, code, errOut.String())
		}
	}
}

// TestResponseFraming feeds responses to a request as a stage does: received
// after every read, here whole, in 3-byte pieces and byte by byte; and finish
// when received says complete, or at end of file. It checks when each is
// complete (before end of file only when its framing says so), its status
// and payload, and the words of every failure.
func TestResponseFraming(t *testing.T) {
	const chunkedBody = "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer-Field: x\r\n\r\n"
	cases := []struct {
		name       string
		raw        string
		wantFramed bool // complete by its framing, before end of file
		wantStatus int
		wantBody   string
		wantErr    string
	}{
		{"Content-Length", "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello", true, 200, "hello", ""},
		{"keep-alive, Content-Length", "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\ncontent-length:  2 \r\n\r\nok", true, 200, "ok", ""},
		{"no length: ends at end of file", "HTTP/1.1 404 Not Found\r\n\r\nnope", false, 404, "nope", ""},
		{"no reason phrase", "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", true, 200, "ok", ""},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedBody, true, 200, "hello world", ""},
		{"chunked wins over Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedBody, true, 200, "hello world", ""},
		{"another coding: ends at end of file", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 1\r\n\r\nabc", false, 200, "abc", ""},
		{"bare LF", "HTTP/1.0 200 OK\nContent-Length: 2\n\nok", true, 200, "ok", ""},
		{"bare LF, chunked", "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nok\n0\n\n", true, 200, "ok", ""},
		{"204 has no body", "HTTP/1.1 204 No Content\r\n\r\n", true, 204, "", ""},
		{"folded header line", "HTTP/1.0 200 OK\r\nX-Long: a\r\n b\r\nContent-Length: 2\r\n\r\nok", true, 200, "ok", ""},
		{"the same length twice", "HTTP/1.0 200 OK\r\nContent-Length: 2, 2\r\n\r\nok", true, 200, "ok", ""},
		{"empty", "", false, 0, "", "without sending anything"},
		{"an SSH banner", "SSH-2.0-OpenSSH_9.6\r\n", false, 0, "", "not HTTP"},
		{"garbage", "\x00\x01hello there", false, 0, "", "not HTTP"},
		{"status 099", "HTTP/1.0 099 Odd\r\n\r\n", false, 0, "", "not HTTP"},
		{"status 2x0", "HTTP/1.0 2x0 Odd\r\n\r\n", false, 0, "", "not HTTP"},
		{"header cut", "HTTP/1.0 200 OK\r\nContent-Le", false, 200, "", "ended inside its header"},
		{"body cut", "HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nhello", false, 200, "", "cut short: Content-Length says 10 bytes, 5 arrived"},
		{"chunked body cut", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", false, 200, "", "before the last chunk"},
		{"a chunk size that is not hex", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false, 200, "", "is not a chunk size"},
		{"a chunk longer than its size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nok\r\n0\r\n\r\n", false, 200, "", "longer than its size"},
		{"a length that is not a number", "HTTP/1.0 200 OK\r\nContent-Length: ten\r\n\r\n", false, 200, "", "is not a length"},
		{"two different lengths", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", false, 200, "", "two different Content-Lengths"},
		{"a header line without a colon", "HTTP/1.0 200 OK\r\nnonsense\r\n\r\n", false, 200, "", "not a field"},
	}
	for _, c := range cases {
		for _, piece := range []int{len(c.raw) + 1, 3, 1} {
			r, framed := feed(t, c.raw, piece)
			gotErr, gotBody := "", string(r.parse.body)
			if r.err != nil {
				gotErr, gotBody = r.err.Error(), "" // a failed request has no body to speak of
			}
			if framed != c.wantFramed || r.parse.status != c.wantStatus || gotBody != c.wantBody || !strings.Contains(gotErr, c.wantErr) || (c.wantErr == "") != (r.err == nil) {
				t.Errorf("%s, in pieces of %d: framed %v, status %d, body %q, error %v; want %v, %d, %q, %q",
					c.name, piece, framed, r.parse.status, gotBody, r.err, c.wantFramed, c.wantStatus, c.wantBody, c.wantErr)
			}
		}
	}
}

// feed gives raw to a new request in pieces of the given size, as a stage
// does, and says whether received called it complete before the end.
func feed(t *testing.T, raw string, piece int) (r *request, framed bool) {
	t.Helper()
	rn, err := prepare(&config{stage: stage, n: 1, addr: "127.0.0.1:80"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r = rn.newRequest(1, "test", "/")
	for rest := raw; len(rest) > 0; {
		size := min(piece, len(rest))
		complete, err := r.received([]byte(rest[:size]))
		rest = rest[size:]
		if complete || err != nil {
			r.finish(err)
			return r, complete && err == nil
		}
	}
	r.finish(nil) // end of file
	return r, false
}

// TestWhatComesAfterTheFramedEndIsAnError: bytes after the end that a
// response's framing gives (a body longer than its Content-Length, anything
// after the last chunk) are not silently kept or dropped when they arrive
// with the response: the request fails and says so.
func TestWhatComesAfterTheFramedEndIsAnError(t *testing.T) {
	for _, raw := range []string{
		"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nEXTRA",
		"HTTP/1.1 304 Not Modified\r\n\r\nEXTRA",
	} {
		r, _ := feed(t, raw, len(raw))
		if r.err == nil || !strings.Contains(r.err.Error(), "5 bytes more than the response it framed") {
			t.Errorf("%q: error %v, want one that counts the 5 extra bytes", raw, r.err)
		}
	}
}

// TestTheTestServersMarkIsSeen: a response that carries the test server's
// mark is known to come from it (and only then does a stage ask it for its
// record).
func TestTheTestServersMarkIsSeen(t *testing.T) {
	mark := testserver.MarkHeader + ": " + testserver.MarkValue
	for raw, want := range map[string]bool{
		"HTTP/1.0 200 OK\r\n" + mark + "\r\nContent-Length: 0\r\n\r\n":      true,
		"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n":                      false,
		"HTTP/1.0 200 OK\r\n" + testserver.MarkHeader + ": another\r\n\r\n": false,
	} {
		if r, _ := feed(t, raw, 7); r.parse.marked != want {
			t.Errorf("%q: marked %v, want %v", raw, r.parse.marked, want)
		}
	}
}

// FuzzResponseHandling feeds arbitrary bytes to a request the way a stage
// does (r.received once per read, the pieces cut at arbitrary points, until
// it says complete or fails; r.finish then, or at end of file) and checks
// what must hold whatever the server sends: no panic, the bytes kept are a
// prefix of what was sent, and a response accepted only if its header is whole
// and its body lies inside what arrived. Run it longer with
//
//	go test -run '^$' -fuzz FuzzResponseHandling -fuzztime 1000000x ./01-blocking
func FuzzResponseHandling(f *testing.F) {
	seeds := []string{
		"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 404 Not Found\r\n\r\nno length, ends at end of file",
		"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"HTTP/1.0 200 OK\r\nContent-Length: -3\r\n\r\nnegative",
		"HTTP/1.0 200 OK\r\ncontent-length:  2 \r\n\r\nok and more",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n0\r\nT: 1\r\n\r\n",
		"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nok\n0\n\n",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.0 200 OK\r\nContent-Le",
		"HTTP/1.0 2x0 OK\r\n\r\n",
		"SSH-2.0-OpenSSH_9.6\r\n",
		"\x00\x01garbage",
		"HTTP/",
		"",
	}
	for _, seed := range seeds {
		f.Add([]byte(seed), []byte{1, 7, 3})
	}
	rn, err := prepare(&config{stage: stage, n: 1, addr: "127.0.0.1:80"}, io.Discard)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw, cuts []byte) {
		r := rn.newRequest(1, "fuzz", "/")
		rest, stopped := raw, false
		for i := 0; len(rest) > 0 && !stopped; i++ { // one piece per "read", sized by cuts
			size := len(rest)
			if len(cuts) > 0 {
				size = min(len(rest), int(cuts[i%len(cuts)])+1)
			}
			complete, err := r.received(rest[:size])
			rest = rest[size:]
			if complete || err != nil {
				r.finish(err)
				stopped = true
			}
		}
		if !stopped {
			r.finish(nil) // end of file
		}

		if !bytes.HasPrefix(raw, r.response) {
			t.Fatalf("kept %q, which is not what the server sent", r.response[:min(len(r.response), 40)])
		}
		if r.err != nil {
			return
		}
		if !bytes.HasPrefix(r.response, []byte("HTTP/")) || r.parse.status < 100 || r.parse.status > 999 {
			t.Fatalf("accepted %q as a response (status %d)", r.response[:min(len(r.response), 40)], r.parse.status)
		}
		if !bytes.Contains(r.response, []byte("\n\n")) && !bytes.Contains(r.response, []byte("\n\r\n")) {
			t.Fatalf("accepted %q, whose header never ended", r.response[:min(len(r.response), 40)])
		}
		if len(r.parse.body) > len(r.response) {
			t.Fatalf("a body of %d bytes from %d bytes received", len(r.parse.body), len(r.response))
		}
	})
}

// TestScaffoldIsTheSameInEveryStage keeps the promise that make diff shows
// only the lesson: scaffold.go and this file are copies of stage 01's.
func TestScaffoldIsTheSameInEveryStage(t *testing.T) {
	names, _ := filepath.Glob("scaffold*.go")
	for _, name := range names {
		mine, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		copies, _ := filepath.Glob(filepath.Join("..", "[0-9][0-9]-*", name))
		for _, other := range copies {
			theirs, err := os.ReadFile(other)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(mine, theirs) {
				t.Errorf("%s differs from ../%s/%s: copy one over the other (make sync-scaffold)", name, filepath.Base(filepath.Dir(other)), name)
			}
		}
	}
}
