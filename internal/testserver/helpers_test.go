package testserver

import (
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// sendRequest connects to addr and sends an HTTP/1.0 GET of target with the extra
// header lines given, and returns the connection, which the test's cleanup closes.
func sendRequest(t *testing.T, addr, target string, headers ...string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// A guard against a hung test, not a timing assertion.
	if err := conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	request := "GET " + target + " HTTP/1.0\r\n"
	for _, h := range headers {
		request += h + "\r\n"
	}
	if _, err := io.WriteString(conn, request+"\r\n"); err != nil {
		t.Fatal(err)
	}
	return conn
}

// getAndDiscard sends GET target and throws away everything that comes back, until
// the server closes the connection: for answers that may never end.
func getAndDiscard(addr, target string) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second)) // a guard against a hung test
	if _, err := io.WriteString(conn, "GET "+target+" HTTP/1.0\r\n\r\n"); err != nil {
		return
	}
	io.Copy(io.Discard, conn)
}

// hijackedConns is how many connections faults have taken over and not yet closed.
func hijackedConns(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.hijacked)
}

// countersOnly is st without its entries, as FetchStats returns it.
func countersOnly(st Stats) Stats {
	st.Entries = nil
	return st
}

// skipWithoutIPv6 skips the test where this machine cannot listen on ::1.
func skipWithoutIPv6(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("IPv6 loopback ::1 is not available here: %v", err)
	}
	ln.Close()
}

// networks are the two loopback networks, each with a function that skips the test
// when it is not available.
var networks = []struct {
	name string
	skip func(*testing.T)
}{
	{"tcp4", func(*testing.T) {}},
	{"tcp6", skipWithoutIPv6},
}

// noGoroutinesLeft waits until there are no more goroutines than before, failing
// the test after a generous deadline. Goroutines unwind on their own schedule.
func noGoroutinesLeft(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want at most %d as before:\n%s",
				runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// isTimeout tells whether err is a network timeout (a deadline that passed).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
