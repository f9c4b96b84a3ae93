package testserver

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// startServer starts a test server on a free loopback port and closes it when the test ends.
func startServer(t *testing.T) *Server {
	t.Helper()
	s, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// rawGet sends one HTTP/1.0 GET on a new connection, the way the stages do, and
// returns every byte the server sent until it closed the connection, with the number
// of reads that returned data. err is nil when the server closed the connection
// normally (EOF).
func rawGet(addr, host, target string) (raw []byte, reads int, err error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close()
	// A guard against a hung test, not a timing assertion.
	if err := conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		return nil, 0, err
	}

	request := "GET " + target + " HTTP/1.0\r\n"
	if host != "" {
		request += "Host: " + host + "\r\n"
	}
	request += "\r\n"
	if _, err := io.WriteString(conn, request); err != nil {
		return nil, 0, err
	}
	return readUntilClosed(conn)
}

// readUntilClosed reads until EOF or an error, counting the reads that returned data.
func readUntilClosed(conn net.Conn) ([]byte, int, error) {
	var raw []byte
	reads := 0
	buf := make([]byte, 64<<10)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			reads++
			raw = append(raw, buf[:n]...)
		}
		if errors.Is(err, io.EOF) {
			return raw, reads, nil
		}
		if err != nil {
			return raw, reads, err
		}
	}
}

// response is what a client made of the bytes it received.
type response struct {
	status        int
	header        http.Header
	contentLength int64
	body          []byte
	bodyErr       error // io.ErrUnexpectedEOF when fewer bytes came than Content-Length said
}

func parseResponse(t *testing.T, raw []byte) response {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		t.Fatalf("parse response %.80q: %v", raw, err)
	}
	body, bodyErr := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, resp.ContentLength, body, bodyErr}
}

// get fetches target and parses the response, failing the test if the server did not
// answer and close normally.
func get(t *testing.T, s *Server, host, target string) response {
	t.Helper()
	raw, _, err := rawGet(s.Addr(), host, target)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	return parseResponse(t, raw)
}

// onlyEntry returns the one entry recorded for run.
func onlyEntry(t *testing.T, s *Server, run string) Entry {
	t.Helper()
	st := s.Stats(run)
	if len(st.Entries) != 1 {
		t.Fatalf("run %q has %d entries, want 1: %+v", run, len(st.Entries), st.Entries)
	}
	return st.Entries[0]
}

// bodyFacts is what the record says about a body, to compare with what the client got.
type bodyFacts struct {
	Status     int
	BodyBytes  int64
	BodySHA256 string
}

func receivedFacts(status int, body []byte) bodyFacts {
	sum := ""
	if len(body) > 0 {
		h := sha256.Sum256(body)
		sum = hex.EncodeToString(h[:])
	}
	return bodyFacts{status, int64(len(body)), sum}
}

func recordedFacts(e Entry) bodyFacts {
	return bodyFacts{e.Status, e.BodyBytes, e.BodySHA256}
}

// patternBytes is the first n bytes of the body pattern.
func patternBytes(n int) []byte {
	b := make([]byte, n)
	(&pattern{}).Read(b)
	return b
}

// waitFor polls cond until it holds, failing the test after a generous deadline. It
// waits for the server to reach a state; it does not measure how fast it got there.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ignoreTimes leaves the clock out of entry comparisons.
var ignoreTimes = cmpopts.IgnoreFields(Entry{}, "Arrived", "Finished")

func TestPagesAnswerAndMatchTheRecord(t *testing.T) {
	tests := []struct {
		name     string
		host     string
		target   string
		wantText []string
	}{
		{"baidu", "www.baidu.com", "/s?wd=hello&run=baidu&req=1", []string{"百度", "www.baidu.com", "hello"}},
		{"so.com", "www.so.com", "/s?q=hello&run=so&req=2", []string{"360搜索", "www.so.com", "hello"}},
		{"page", "127.0.0.1", "/page?run=page&req=3", []string{"Request: 3"}},
	}
	s := startServer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := get(t, s, tt.host, tt.target)
			if resp.status != http.StatusOK {
				t.Fatalf("status %d, want 200; body %q", resp.status, resp.body)
			}
			if got := resp.header.Get("Content-Type"); got != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q, want text/html; charset=utf-8", got)
			}
			for _, text := range tt.wantText {
				if !bytes.Contains(resp.body, []byte(text)) {
					t.Errorf("page does not mention %q:\n%s", text, resp.body)
				}
			}

			run, id := queryOf(t, tt.target)
			want := Entry{Run: run, ID: id, Host: tt.host, Target: tt.target}
			got := onlyEntry(t, s, run)
			facts := receivedFacts(resp.status, resp.body)
			want.Status, want.BodyBytes, want.BodySHA256 = facts.Status, facts.BodyBytes, facts.BodySHA256
			if diff := cmp.Diff(want, got, ignoreTimes); diff != "" {
				t.Errorf("record differs from what the client got (-want +got):\n%s", diff)
			}
		})
	}
}

// queryOf returns the run= and req= of a target.
func queryOf(t *testing.T, target string) (run, id string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := req.URL.Query()
	return q.Get("run"), q.Get("req")
}

func TestHTTP10GetsHTTP10AndTheConnectionCloses(t *testing.T) {
	s := startServer(t)
	// rawGet reads until the server closes the connection; a server that kept it
	// open would make it fail with a deadline error instead.
	raw, _, err := rawGet(s.Addr(), "", "/page?run=t&req=1")
	if err != nil {
		t.Fatalf("read until close: %v", err)
	}
	if !bytes.HasPrefix(raw, []byte("HTTP/1.0 200 OK\r\n")) {
		t.Fatalf("response starts %.40q, want HTTP/1.0 200 OK", raw)
	}
	resp := parseResponse(t, raw)
	if int64(len(resp.body)) != resp.contentLength {
		t.Errorf("body has %d bytes, Content-Length says %d", len(resp.body), resp.contentLength)
	}
}

func TestUnknownPathIs404AndRecorded(t *testing.T) {
	s := startServer(t)
	resp := get(t, s, "", "/nowhere?run=t&req=1")
	if resp.status != http.StatusNotFound {
		t.Fatalf("status %d, want 404", resp.status)
	}
	if got := onlyEntry(t, s, "t"); got.Status != http.StatusNotFound {
		t.Errorf("recorded status %d, want 404", got.Status)
	}
}

func TestDelayIsHonoured(t *testing.T) {
	s := startServer(t)
	const delay = 100 * time.Millisecond
	resp := get(t, s, "", "/page?run=t&req=1&delay="+delay.String())
	if resp.status != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.status)
	}
	e := onlyEntry(t, s, "t")
	if took := e.Finished.Sub(e.Arrived); took < delay {
		t.Errorf("the server answered %v after arrival, before the %v delay", took, delay)
	}
}

func TestDelayEndsWhenTheClientLeaves(t *testing.T) {
	s := startServer(t)
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "GET /page?run=t&req=1&delay=60s HTTP/1.0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the request to be in flight", func() bool { return s.Stats("t").InFlight == 1 })
	conn.Close()
	waitFor(t, "the handler to give up", func() bool { return s.Stats("t").InFlight == 0 })
	if got := onlyEntry(t, s, "t").Status; got != 0 {
		t.Errorf("recorded status %d, want 0 (nothing sent)", got)
	}
}

func TestBadParametersGet400(t *testing.T) {
	tests := []struct {
		query    string
		mentions string // what the reason must name
	}{
		{"delay=soon", "delay"},
		{"delay=-1s", "delay"},
		{"delay=61s", "delay"},
		{"fault=teleport", "teleport"},
		{"fault=large&size=lots", "size"},
		{"fault=large&size=-1", "size"},
		{"fault=large&size=67108865", "size"},
		{"fault=drip&chunk=0", "chunk"},
		{"fault=drip&chunk=1048577", "chunk"},
		{"fault=drip&pause=2s", "pause"},
		{"fault=slowheader&pause=-1ms", "pause"},
		{"fault=drip&size=67108864&chunk=1&pause=1ms", "drip"}, // 67 million pieces × 1ms
	}
	s := startServer(t)
	for i, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			run := fmt.Sprint("bad", i)
			resp := get(t, s, "", "/page?run="+run+"&"+tt.query)
			if resp.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", resp.status)
			}
			if !bytes.Contains(resp.body, []byte(tt.mentions)) {
				t.Errorf("reason %q does not mention %q", resp.body, tt.mentions)
			}
			if got := onlyEntry(t, s, run).Status; got != http.StatusBadRequest {
				t.Errorf("recorded status %d, want 400", got)
			}
		})
	}

	t.Run("search without wd or q", func(t *testing.T) {
		if resp := get(t, s, "", "/s?run=nosearch"); resp.status != http.StatusBadRequest {
			t.Errorf("status %d, want 400", resp.status)
		}
	})
}

// TestConcurrentRequestsAreAllInFlight uses gather=n: each request is held
// until all n have arrived, so the peak is exactly n however slow the machine.
func TestConcurrentRequestsAreAllInFlight(t *testing.T) {
	s := startServer(t)
	const n = 20
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			raw, _, err := rawGet(s.Addr(), "", fmt.Sprintf("/page?run=t&req=%d&gather=%d", i, n))
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			if resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil); err == nil {
				statuses[i] = resp.StatusCode
			}
		}()
	}
	wg.Wait()

	for i, status := range statuses {
		if status != http.StatusOK {
			t.Errorf("request %d: status %d, want 200", i, status)
		}
	}
	st := s.Stats("t")
	if diff := cmp.Diff(counts{n, 0, n}, countsOf(st)); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
}

func TestSequentialRequestsPeakAtOne(t *testing.T) {
	s := startServer(t)
	const n = 5
	for i := range n {
		get(t, s, "", fmt.Sprintf("/page?run=t&req=%d", i))
	}
	if diff := cmp.Diff(counts{n, 0, 1}, countsOf(s.Stats("t"))); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
	// The other run tags and the total keep their own counters.
	get(t, s, "", "/page?run=other&req=1")
	if diff := cmp.Diff(counts{n + 1, 0, 1}, countsOf(s.Stats(""))); diff != "" {
		t.Errorf("counters of every request (-want +got):\n%s", diff)
	}
}

type counts struct{ Requests, InFlight, PeakInFlight int }

func countsOf(st Stats) counts {
	return counts{st.Requests, st.InFlight, st.PeakInFlight}
}

func TestFaultClose(t *testing.T) {
	s := startServer(t)
	raw, _, err := rawGet(s.Addr(), "", "/page?run=t&req=1&fault=close")
	if err != nil || len(raw) != 0 {
		t.Fatalf("got %d bytes and error %v, want EOF with nothing", len(raw), err)
	}
	want := Entry{Run: "t", ID: "1", Target: "/page?run=t&req=1&fault=close", Fault: "close"}
	if diff := cmp.Diff(want, onlyEntry(t, s, "t"), ignoreTimes); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
}

func TestFaultReset(t *testing.T) {
	s := startServer(t)
	raw, _, err := rawGet(s.Addr(), "", "/page?run=t&req=1&fault=reset")
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("got %d bytes and error %v, want ECONNRESET", len(raw), err)
	}
	if got := onlyEntry(t, s, "t"); got.Status != 0 || got.BodyBytes != 0 {
		t.Errorf("recorded status %d and %d body bytes, want 0 and 0", got.Status, got.BodyBytes)
	}
}

func TestFaultGarbage(t *testing.T) {
	s := startServer(t)
	raw, _, err := rawGet(s.Addr(), "", "/page?run=t&req=1&fault=garbage")
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) == 0 || bytes.HasPrefix(raw, []byte("HTTP/")) {
		t.Fatalf("got %.40q, want bytes that are not HTTP", raw)
	}
	if got := onlyEntry(t, s, "t").Status; got != 0 {
		t.Errorf("recorded status %d, want 0 (no HTTP response)", got)
	}
}

func TestFaultDripArrivesWholeInPieces(t *testing.T) {
	s := startServer(t)
	const size = 2048
	raw, reads, err := rawGet(s.Addr(), "", fmt.Sprintf("/page?run=t&req=1&fault=drip&size=%d&chunk=256&pause=10ms", size))
	if err != nil {
		t.Fatal(err)
	}
	if reads < 2 {
		t.Errorf("the whole response came in %d read, want several", reads)
	}
	resp := parseResponse(t, raw)
	if resp.bodyErr != nil || !bytes.Equal(resp.body, patternBytes(size)) {
		t.Fatalf("body of %d bytes (error %v), want the %d-byte pattern", len(resp.body), resp.bodyErr, size)
	}
	if diff := cmp.Diff(receivedFacts(resp.status, resp.body), recordedFacts(onlyEntry(t, s, "t"))); diff != "" {
		t.Errorf("record (-client +server):\n%s", diff)
	}
}

func TestFaultLargeHasExactSizeAndHash(t *testing.T) {
	s := startServer(t)
	resp := get(t, s, "", "/page?run=t&req=1&fault=large") // default size
	want := receivedFacts(http.StatusOK, patternBytes(defaultLargeSize))
	if diff := cmp.Diff(want, receivedFacts(resp.status, resp.body)); diff != "" {
		t.Errorf("client got (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, recordedFacts(onlyEntry(t, s, "t"))); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
}

func TestFaultTruncateSendsHalf(t *testing.T) {
	s := startServer(t)
	resp := get(t, s, "", "/page?run=t&req=1&fault=truncate&size=1000")
	if resp.contentLength != 1000 || len(resp.body) != 500 || !errors.Is(resp.bodyErr, io.ErrUnexpectedEOF) {
		t.Fatalf("Content-Length %d, got %d bytes and error %v; want 1000, 500 and unexpected EOF",
			resp.contentLength, len(resp.body), resp.bodyErr)
	}
	if diff := cmp.Diff(receivedFacts(resp.status, resp.body), recordedFacts(onlyEntry(t, s, "t"))); diff != "" {
		t.Errorf("record (-client +server):\n%s", diff)
	}
}

// TestFaultsSilentAndStallWaitForTheClient: silent sends nothing and stall
// half a response, then both keep the connection open, in flight, until the
// client closes its end.
func TestFaultsSilentAndStallWaitForTheClient(t *testing.T) {
	for fault, wantBody := range map[string]int{"silent": 0, "stall": 500} {
		t.Run(fault, func(t *testing.T) {
			s := startServer(t)
			conn, err := net.Dial("tcp", s.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, "GET /page?run=t&req=1&fault="+fault+"&size=1000 HTTP/1.0\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the request to be in flight", func() bool { return s.Stats("t").InFlight == 1 })
			if wantBody > 0 {
				conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // a guard against a hung test
				head := "HTTP/1.0 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 1000\r\n" + markLine + "\r\n"
				got := make([]byte, len(head)+wantBody)
				if _, err := io.ReadFull(conn, got); err != nil || !strings.HasPrefix(string(got), head) {
					t.Fatalf("read %q, %v; want the header and %d body bytes", got, err, wantBody)
				}
			}
			if got := s.Stats("t").InFlight; got != 1 {
				t.Errorf("in flight %d while the client waits, want 1", got)
			}
			conn.Close()
			waitFor(t, "the handler to notice the client left", func() bool { return s.Stats("t").InFlight == 0 })
			if got := onlyEntry(t, s, "t").BodyBytes; got != int64(wantBody) {
				t.Errorf("recorded %d body bytes, want %d", got, wantBody)
			}
		})
	}
}

func TestFaultSlowHeaderIsValid(t *testing.T) {
	s := startServer(t)
	raw, _, err := rawGet(s.Addr(), "", "/page?run=t&req=1&fault=slowheader&pause=10ms")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte("HTTP/1.0 200 OK\r\n")) {
		t.Fatalf("response starts %.40q, want HTTP/1.0 200 OK", raw)
	}
	resp := parseResponse(t, raw)
	if resp.bodyErr != nil || string(resp.body) != "slow header done for req=1\n" {
		t.Fatalf("body %q (error %v)", resp.body, resp.bodyErr)
	}
	if diff := cmp.Diff(receivedFacts(resp.status, resp.body), recordedFacts(onlyEntry(t, s, "t"))); diff != "" {
		t.Errorf("record (-client +server):\n%s", diff)
	}
}

func TestPatternIsNumberedLines(t *testing.T) {
	want := "line 00000000 .................\nline 00000001 .................\nline 0000"
	if got := string(patternBytes(len(want))); got != want {
		t.Fatalf("pattern starts %q, want %q", got, want)
	}
	// Reading in odd pieces gives the same bytes as one big read.
	p := &pattern{}
	var pieces []byte
	for len(pieces) < 1000 {
		piece := make([]byte, 7)
		p.Read(piece)
		pieces = append(pieces, piece...)
	}
	if !bytes.Equal(pieces[:1000], patternBytes(1000)) {
		t.Error("reading the pattern in pieces gives different bytes")
	}
}

func TestStatsEndpoints(t *testing.T) {
	s := startServer(t)
	get(t, s, "www.baidu.com", "/s?wd=hello&run=r&req=1")
	get(t, s, "", "/nowhere?run=r&req=2")
	rawGet(s.Addr(), "", "/page?run=r&req=3&fault=close")
	get(t, s, "", "/page?run=other&req=1")
	recorded := s.Stats("").Requests

	for _, run := range []string{"r", "", "never used"} {
		fetched, err := FetchStats(s.Addr(), run, time.Now().Add(20*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(countersOnly(s.Stats(run)), fetched); diff != "" {
			t.Errorf("FetchStats(%q) differs from Stats (-in process +over HTTP):\n%s", run, diff)
		}
	}

	resp := get(t, s, "", "/stats/timeline?run=r")
	var want strings.Builder
	DrawTimeline(&want, s.Stats("r").Spans(), 0)
	if diff := cmp.Diff(want.String(), string(resp.body)); diff != "" {
		t.Errorf("/stats/timeline (-want +got):\n%s", diff)
	}

	if got := s.Stats("").Requests; got != recorded {
		t.Errorf("the stats endpoints were recorded: %d requests, want %d", got, recorded)
	}
}

func TestFetchStatsRefusesOtherServers(t *testing.T) {
	others := map[string]http.HandlerFunc{
		"plain text": func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "hello") },
		"not found":  http.NotFound,
		"other JSON": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"status": "ok"}`)
		},
	}
	for name, handler := range others {
		t.Run(name, func(t *testing.T) {
			other := httptest.NewServer(handler)
			defer other.Close()
			_, err := FetchStats(strings.TrimPrefix(other.URL, "http://"), "r", time.Now().Add(20*time.Second))
			if err == nil || !strings.Contains(err.Error(), "not the project's test server") {
				t.Errorf("error %v, want one saying it is not the project's test server", err)
			}
		})
	}

	t.Run("nobody listening", func(t *testing.T) {
		s, err := Start("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if _, err := FetchStats(s.Addr(), "r", time.Now().Add(20*time.Second)); err == nil {
			t.Error("FetchStats from a closed server succeeded")
		}
	})
}

func TestStartRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "localhost:0", "127.0.0.1"} {
		if s, err := Start(addr); err == nil {
			s.Close()
			t.Errorf("Start(%q) succeeded, want an error", addr)
		}
	}
}

func TestCloseLeavesNothingBehind(t *testing.T) {
	// The first server in a process makes the runtime open descriptors it keeps for
	// good (the network poller's), so warm up before counting.
	warm := startServer(t)
	get(t, warm, "", "/page")
	warm.Close()

	goroutinesBefore := runtime.NumGoroutine()
	fdsBefore := openFDs(t)

	s, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Requests of every kind that finish before Close...
	for _, target := range []string{"/s?wd=hello", "/page?fault=garbage", "/page?fault=reset",
		"/page?fault=truncate&size=100", "/page?fault=close", "/nowhere",
		"/page?fault=barelf", "/page?fault=resetafter", "/page?fault=overlong"} {
		rawGet(s.Addr(), "", target) // some of them fail on purpose
	}
	// ...and requests still being handled when it comes.
	pending := []string{
		"/page?run=pending&delay=60s",
		"/page?run=pending&fault=drip&size=1000&chunk=1&pause=50ms",
		"/page?run=pending&fault=slowheader&pause=1s",
		"/page?run=pending&fault=silent",
		"/page?run=pending&fault=stall",
		"/page?run=pending&fault=endlessheader",
	}
	// ...and connections kept open after a whole answer, their entries complete.
	held := []string{
		"/page?run=held&fault=keepalive",
		"/page?run=held&fault=chunked",
		"/page?run=held&fault=banner",
	}
	var clients sync.WaitGroup
	for _, target := range append(pending, held...) {
		clients.Add(1)
		go func() {
			defer clients.Done()
			getAndDiscard(s.Addr(), target) // ends when Close closes the connection
		}()
	}
	waitFor(t, "the pending requests", func() bool { return s.Stats("pending").InFlight == len(pending) })
	waitFor(t, "the held connections", func() bool {
		st := s.Stats("held")
		return st.Requests == len(held) && st.InFlight == 0
	})

	closed := make(chan error)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(20 * time.Second): // a guard against a hung test, not a timing assertion
		t.Fatal("Close did not return")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	clients.Wait()

	if got := s.Stats("pending").InFlight; got != 0 {
		t.Errorf("%d requests still in flight after Close", got)
	}
	// Earlier tests may still be closing descriptors of their own, so the count can
	// only be compared one way: more than before means the server leaked some.
	if fdsBefore >= 0 {
		if got := openFDs(t); got > fdsBefore {
			t.Errorf("%d descriptors open after Close, want at most %d as before Start", got, fdsBefore)
		}
	}
	// Goroutines unwind on their own schedule, so poll for them.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > goroutinesBefore {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, want at most %d as before Start:\n%s",
				runtime.NumGoroutine(), goroutinesBefore, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// openFDs counts this process's open file descriptors, or returns -1 where
// /proc/self/fd does not exist (everywhere but Linux).
func openFDs(t *testing.T) int {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Log("not Linux: descriptors are not counted")
		return -1
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}
