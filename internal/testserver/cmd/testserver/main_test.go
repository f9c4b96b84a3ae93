package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"blocking-to-epoll/internal/testserver"
)

// TestRunPrintsTheAddressItGot starts the command's server on port 0, over IPv4
// and IPv6, reads the address from the line it prints, fetches a page there, and
// stops it as Ctrl-C would.
func TestRunPrintsTheAddressItGot(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(addr, func(t *testing.T) {
			if addr == "[::1]:0" {
				skipWithoutIPv6(t)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			printed, out := io.Pipe()
			done := make(chan error, 1)
			go func() {
				done <- run(ctx, addr, out)
				out.Close()
			}()

			line, err := bufio.NewReader(printed).ReadString('\n')
			if err != nil {
				t.Fatalf("read the line run prints: %v (run: %v)", err, <-done)
			}
			got, ok := listeningOn(line)
			if !ok {
				t.Fatalf("run printed %q, want a line naming http://host:port", line)
			}
			host, port, err := net.SplitHostPort(got)
			wantHost := strings.Trim(strings.TrimSuffix(addr, ":0"), "[]")
			if err != nil || host != wantHost || port == "0" {
				t.Fatalf("run printed the address %q, want %s with the port it got", got, wantHost)
			}
			if status, mark := getPage(t, got); status != http.StatusOK || mark != testserver.MarkValue {
				t.Errorf("GET /page at %s: status %d, %s %q; want 200 and %q", got, status, testserver.MarkHeader, mark, testserver.MarkValue)
			}

			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run: %v", err)
				}
			case <-time.After(20 * time.Second): // a guard against a hung test, not a timing assertion
				t.Fatal("run did not return after its context ended")
			}
		})
	}
}

// listeningOn finds the host:port in "test server listening on http://HOST:PORT (...)".
func listeningOn(line string) (string, bool) {
	_, rest, ok := strings.Cut(line, "http://")
	if !ok {
		return "", false
	}
	addr, _, _ := strings.Cut(rest, " ")
	return strings.TrimSpace(addr), addr != ""
}

// getPage sends GET /page as the stages do and returns the status and the mark.
func getPage(t *testing.T, addr string) (status int, mark string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second)) // a guard against a hung test
	if _, err := io.WriteString(conn, "GET /page HTTP/1.0\r\nHost: "+addr+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get(testserver.MarkHeader)
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
