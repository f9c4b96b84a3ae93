package testserver

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// countingReader counts the reads that returned data, to tell whether a response
// came in pieces.
type countingReader struct {
	r     io.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.reads++
	}
	return n, err
}

// checkStaysOpen checks that the record of run's one request is complete while the
// fault still holds the connection open, then closes the client's end and waits for
// the server to let go of it.
func checkStaysOpen(t *testing.T, s *Server, run string, conn interface{ Close() error }) {
	t.Helper()
	waitFor(t, "the entry to be complete", func() bool { return s.Stats(run).InFlight == 0 })
	if got := hijackedConns(s); got != 1 {
		t.Errorf("%d connections held open after the answer, want 1 (the fault must wait for the client)", got)
	}
	conn.Close()
	waitFor(t, "the server to notice the client left", func() bool { return hijackedConns(s) == 0 })
}

func TestFaultKeepAliveIgnoresHTTP10AndStaysOpen(t *testing.T) {
	s := startServer(t)
	const size = 3000
	conn := sendRequest(t, s.Addr(), fmt.Sprintf("/page?run=t&req=1&fault=keepalive&size=%d", size), "Connection: close")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	type head struct {
		Proto, Connection, Mark string
		ContentLength           int64
	}
	want := head{"HTTP/1.1", "keep-alive", MarkValue, size}
	got := head{resp.Proto, resp.Header.Get("Connection"), resp.Header.Get(MarkHeader), resp.ContentLength}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	// The body reader stops after Content-Length bytes; it does not wait for EOF.
	body, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(body, patternBytes(size)) {
		t.Fatalf("body of %d bytes (error %v), want the %d-byte pattern", len(body), err, size)
	}
	checkStaysOpen(t, s, "t", conn)
	if diff := cmp.Diff(receivedFacts(resp.StatusCode, body), recordedFacts(onlyEntry(t, s, "t"))); diff != "" {
		t.Errorf("record (-client +server):\n%s", diff)
	}
}

func TestFaultChunkedDecodesToTheRecordedBody(t *testing.T) {
	s := startServer(t)
	const size = 4500 // chunks of 1000 (3e8 in hex) and a last one of 500 (1f4)
	conn := sendRequest(t, s.Addr(), fmt.Sprintf("/page?run=t&req=1&fault=chunked&size=%d&chunk=1000&pause=10ms", size))
	var raw bytes.Buffer
	counted := &countingReader{r: io.TeeReader(conn, &raw)}
	resp, err := http.ReadResponse(bufio.NewReader(counted), nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"chunked"}, resp.TransferEncoding); diff != "" {
		t.Errorf("Transfer-Encoding (-want +got):\n%s", diff)
	}
	// net/http's chunked reader reads to the zero-size chunk and the trailer after it.
	body, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(body, patternBytes(size)) {
		t.Fatalf("decoded body of %d bytes (error %v), want the %d-byte pattern", len(body), err, size)
	}
	sum := sha256.Sum256(body)
	if got := resp.Trailer.Get("X-Body-SHA256"); got != hex.EncodeToString(sum[:]) {
		t.Errorf("trailer X-Body-SHA256 %q, want the body's SHA-256", got)
	}
	for _, framing := range []string{"\r\n\r\n3e8;ext=1\r\nline 0", "\r\n3e8\r\n", "\r\n1f4\r\n", "\r\n0\r\nX-Body-SHA256: "} {
		if !bytes.Contains(raw.Bytes(), []byte(framing)) {
			t.Errorf("the raw response has no %q", framing)
		}
	}
	if counted.reads < 2 {
		t.Errorf("the whole response came in %d read, want several", counted.reads)
	}
	checkStaysOpen(t, s, "t", conn)
	if diff := cmp.Diff(receivedFacts(resp.StatusCode, body), recordedFacts(onlyEntry(t, s, "t"))); diff != "" {
		t.Errorf("record (-client +server):\n%s", diff)
	}
}

func TestFaultBareLFIsValid(t *testing.T) {
	s := startServer(t)
	raw, _, err := rawGet(s.Addr(), "", "/page?run=t&req=1&fault=barelf")
	if err != nil {
		t.Fatal(err)
	}
	head, _, found := bytes.Cut(raw, []byte("\n\n"))
	if !found || !bytes.HasPrefix(head, []byte("HTTP/1.0 200 OK\n")) || bytes.Contains(head, []byte("\r")) {
		t.Fatalf("head %q, want lines that end in a bare LF, starting HTTP/1.0 200 OK", head)
	}
	resp := parseResponse(t, raw) // net/http accepts bare LF, as RFC 9112 §2.2 allows
	if resp.bodyErr != nil || string(resp.body) != "bare LF line endings for req=1\n" {
		t.Fatalf("body %q (error %v)", resp.body, resp.bodyErr)
	}
	if got := resp.header.Get(MarkHeader); got != MarkValue {
		t.Errorf("%s %q, want %q", MarkHeader, got, MarkValue)
	}
	if diff := cmp.Diff(receivedFacts(resp.status, resp.body), recordedFacts(onlyEntry(t, s, "t"))); diff != "" {
		t.Errorf("record (-client +server):\n%s", diff)
	}
}

func TestFaultBannerIsNotHTTPAndStaysOpen(t *testing.T) {
	s := startServer(t)
	conn := sendRequest(t, s.Addr(), "/page?run=t&req=1&fault=banner")
	got := make([]byte, len(bannerText))
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != bannerText {
		t.Fatalf("read %q (error %v), want the banner %q", got, err, bannerText)
	}
	checkStaysOpen(t, s, "t", conn)
	if diff := cmp.Diff(bodyFacts{}, recordedFacts(onlyEntry(t, s, "t"))); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
}

func TestFaultEndlessHeaderNeverEnds(t *testing.T) {
	s := startServer(t)
	conn := sendRequest(t, s.Addr(), "/page?run=t&req=1&fault=endlessheader")
	got := make([]byte, 1<<20) // far more than any client should accept as a header
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatalf("read 1 MiB of the header: %v", err)
	}
	rest, found := bytes.CutPrefix(got, []byte(endlessHeaderStart))
	if !found || len(bytes.Trim(rest, "a")) != 0 {
		t.Fatalf("header starts %.40q and has more than a's after %q", got, endlessHeaderStart)
	}
	if got := s.Stats("t").InFlight; got != 1 {
		t.Errorf("in flight %d while the header goes on, want 1", got)
	}
	conn.Close()
	waitFor(t, "the handler to notice the client left", func() bool { return s.Stats("t").InFlight == 0 })
	if diff := cmp.Diff(bodyFacts{}, recordedFacts(onlyEntry(t, s, "t"))); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
}

// TestFaultResetAfterAWholeResponse: a client that stops after Content-Length bytes
// has the whole body, however large; reading on gets the reset.
func TestFaultResetAfterAWholeResponse(t *testing.T) {
	for _, size := range []int{defaultDripSize, 4 << 20} { // the default, and more than the socket buffers hold
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			s := startServer(t)
			conn := sendRequest(t, s.Addr(), fmt.Sprintf("/page?run=t&req=1&fault=resetafter&size=%d", size))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil || !bytes.Equal(body, patternBytes(size)) {
				t.Fatalf("body of %d bytes (error %v), want the %d-byte pattern", len(body), err, size)
			}
			if _, err := br.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("read after the body: %v, want ECONNRESET", err)
			}
			if diff := cmp.Diff(receivedFacts(resp.StatusCode, body), recordedFacts(onlyEntry(t, s, "t"))); diff != "" {
				t.Errorf("record (-client +server):\n%s", diff)
			}
		})
	}
}

func TestFaultOverlongSendsTwiceContentLength(t *testing.T) {
	s := startServer(t)
	const size = 3000
	raw, _, err := rawGet(s.Addr(), "", fmt.Sprintf("/page?run=t&req=1&fault=overlong&size=%d", size))
	if err != nil {
		t.Fatal(err)
	}
	_, after, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !bytes.Equal(after, patternBytes(2*size)) {
		t.Errorf("%d bytes came after the header, want %d of the pattern", len(after), 2*size)
	}
	resp := parseResponse(t, raw) // stops at Content-Length, as a correct client does
	if resp.contentLength != size || !bytes.Equal(resp.body, patternBytes(size)) {
		t.Fatalf("Content-Length %d and a body of %d bytes, want %d and the pattern", resp.contentLength, len(resp.body), size)
	}
	if diff := cmp.Diff(receivedFacts(resp.status, resp.body), recordedFacts(onlyEntry(t, s, "t"))); diff != "" {
		t.Errorf("record (-correct client +server):\n%s", diff)
	}
}

// TestEveryResponseCarriesTheMark fetches every route and every fault that sends an
// HTTP header, and reads the header only (some of the bodies never end).
func TestEveryResponseCarriesTheMark(t *testing.T) {
	routes := []string{
		"/s?wd=hello", "/s?q=hello", "/page", "/nowhere", "/s", "/page?delay=soon",
		"/stats?run=r", "/stats?run=r&entries=none", "/stats?entries=bogus", "/stats/timeline?run=r",
	}
	// Each fault is listed, so that a new one must say whether it sends a header.
	sendsHeader := make(map[string]bool)
	for _, name := range []string{"drip", "large", "truncate", "slowheader", "endless", "stall",
		"keepalive", "chunked", "barelf", "resetafter", "overlong"} {
		sendsHeader[name] = true
	}
	for _, name := range []string{"close", "reset", "garbage", "silent", "banner", "endlessheader"} {
		sendsHeader[name] = false
	}
	for _, name := range slices.Sorted(maps.Keys(faults)) {
		if _, listed := sendsHeader[name]; !listed {
			t.Errorf("fault %q is not listed here: does it send an HTTP header?", name)
		}
		if sendsHeader[name] {
			routes = append(routes, "/page?size=100&pause=1ms&fault="+name)
		}
	}

	s := startServer(t)
	for _, target := range routes {
		t.Run(strings.TrimPrefix(target, "/"), func(t *testing.T) {
			conn := sendRequest(t, s.Addr(), target)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Header.Get(MarkHeader); got != MarkValue {
				t.Errorf("status %d, %s %q; want %q", resp.StatusCode, MarkHeader, got, MarkValue)
			}
		})
	}

	t.Run("503 while closing", func(t *testing.T) {
		closing := startServer(t)
		closing.mu.Lock()
		closing.closing = true // as Close does first
		closing.mu.Unlock()
		w := httptest.NewRecorder()
		closing.serveHTTP(w, httptest.NewRequest(http.MethodGet, "/page?run=t", nil))
		if w.Code != http.StatusServiceUnavailable || w.Header().Get(MarkHeader) != MarkValue {
			t.Errorf("status %d, %s %q; want 503 and %q", w.Code, MarkHeader, w.Header().Get(MarkHeader), MarkValue)
		}
	})
}
