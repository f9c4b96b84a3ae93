package testserver

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// later is a deadline far enough away that only a hung test reaches it.
func later() time.Time { return time.Now().Add(20 * time.Second) }

func TestStatsWithoutEntriesIsSmall(t *testing.T) {
	s := startServer(t)
	for i := range 50 {
		get(t, s, "", fmt.Sprintf("/page?run=r&req=%d", i))
	}
	resp := get(t, s, "", "/stats?run=r&entries=none")
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(resp.body, &fields); err != nil {
		t.Fatalf("answer %q: %v", resp.body, err)
	}
	if _, has := fields["entries"]; has {
		t.Errorf("entries=none answered with entries: %s", resp.body)
	}
	if len(resp.body) > 1024 {
		t.Errorf("answer of %d bytes for a run of 50 requests, want a few hundred whatever the run", len(resp.body))
	}
	var st Stats
	if err := json.Unmarshal(resp.body, &st); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(countersOnly(s.Stats("r")), st); diff != "" {
		t.Errorf("counters (-in process +over HTTP):\n%s", diff)
	}

	if resp := get(t, s, "", "/stats?run=r&entries=some"); resp.status != http.StatusBadRequest {
		t.Errorf("entries=some: status %d, want 400", resp.status)
	}
}

// endlessStatusLine is a server that answers every connection with a status line
// that never ends, counting the bytes it manages to write, until the client leaves.
type endlessStatusLine struct {
	ln      net.Listener
	written atomic.Int64
	done    chan struct{} // closed when the client has left and the server stopped
}

func startEndlessStatusLine(t *testing.T) *endlessStatusLine {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &endlessStatusLine{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		piece := []byte(strings.Repeat("x", 32<<10))
		if n, err := conn.Write([]byte("HTTP/1.1 200 ")); err == nil {
			e.written.Add(int64(n))
			for {
				n, err := conn.Write(piece)
				e.written.Add(int64(n))
				if err != nil {
					return // the client left
				}
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-e.done
	})
	return e
}

// countingConn counts the bytes read from a connection.
type countingConn struct {
	net.Conn
	read int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read += int64(n)
	return n, err
}

// TestFetchStatsReadsAtMostTheCap: a server that sends an endless status line gets
// an error at once, long before the deadline, and no more than maxStatsAnswer bytes
// are read from it.
func TestFetchStatsReadsAtMostTheCap(t *testing.T) {
	t.Run("bytes read", func(t *testing.T) {
		e := startEndlessStatusLine(t)
		conn, err := net.Dial("tcp", e.ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(later()) // a guard against a hung test
		counted := &countingConn{Conn: conn}
		_, err = fetchStatsOn(counted, e.ln.Addr().String(), "r")
		if err == nil || !strings.Contains(err.Error(), "longer than") || !strings.Contains(err.Error(), "not the project's test server") {
			t.Errorf("error %v, want one saying the answer is too long for the test server", err)
		}
		if counted.read > maxStatsAnswer {
			t.Errorf("read %d bytes, want at most %d", counted.read, maxStatsAnswer)
		}
	})

	t.Run("memory and time", func(t *testing.T) {
		e := startEndlessStatusLine(t)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		deadline := later()
		_, err := FetchStats(e.ln.Addr().String(), "r", deadline)
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), "not the project's test server") {
			t.Errorf("error %v, want one saying it is not the project's test server", err)
		}
		if isTimeout(err) || !time.Now().Before(deadline) {
			t.Errorf("error %v: FetchStats waited for its deadline instead of stopping at the cap", err)
		}
		// A reader without a cap would hold everything the server sends until the
		// deadline: gigabytes. The cap keeps it to one buffer or two.
		if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 8<<20 {
			t.Errorf("FetchStats allocated %d bytes, want far less than 8 MiB", allocated)
		}
		// FetchStats closed its connection: the server's writes fail and it stops.
		// What it wrote includes what the kernels buffered, so it is only logged.
		<-e.done
		t.Logf("the server wrote %d bytes before the client left", e.written.Load())
	})
}

// TestFetchStatsReturnsByTheDeadline: a server that never completes the handshake,
// and one that accepts and never answers, both end at the deadline.
func TestFetchStatsReturnsByTheDeadline(t *testing.T) {
	cases := map[string]func(t *testing.T) (addr string, stop func() error){
		"handshake never completes": func(t *testing.T) (string, func() error) {
			h, err := BlackHole("tcp4")
			if err != nil {
				t.Skipf("no black hole here: %v", err)
			}
			return h.Addr().String(), h.Close
		},
		"never answers": func(t *testing.T) (string, func() error) {
			d, err := Deaf("tcp4")
			if err != nil {
				t.Skipf("no deaf listener here: %v", err)
			}
			return d.Addr().String(), d.Close
		},
	}
	for name, listen := range cases {
		t.Run(name, func(t *testing.T) {
			goroutinesBefore := runtime.NumGoroutine()
			addr, stop := listen(t)
			deadline := time.Now().Add(300 * time.Millisecond)
			_, err := FetchStats(addr, "r", deadline)
			returned := time.Now()
			if err == nil || !isTimeout(err) {
				t.Errorf("error %v, want a timeout", err)
			}
			if margin := 5 * time.Second; returned.After(deadline.Add(margin)) {
				t.Errorf("FetchStats returned %v after its deadline, want within %v", returned.Sub(deadline), margin)
			}
			if err := stop(); err != nil {
				t.Errorf("close the listener: %v", err)
			}
			noGoroutinesLeft(t, goroutinesBefore)
		})
	}
}

func TestFetchStatsRefusesAPassedDeadline(t *testing.T) {
	s := startServer(t)
	for name, deadline := range map[string]time.Time{
		"passed": time.Now().Add(-time.Second),
		"zero":   {},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := FetchStats(s.Addr(), "r", deadline)
			if err == nil || !strings.Contains(err.Error(), "deadline") {
				t.Errorf("error %v, want one about the deadline", err)
			}
		})
	}
}

// TestFetchStatsRefusesAnswersWithoutTheMark: another server whose answer looks like
// the stats JSON is still refused, because it lacks the mark.
func TestFetchStatsRefusesAnswersWithoutTheMark(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"run": %q, "requests": 1, "in_flight": 0, "peak_in_flight": 1}`, r.URL.Query().Get("run"))
	}))
	defer other.Close()
	_, err := FetchStats(strings.TrimPrefix(other.URL, "http://"), "r", later())
	if err == nil || !strings.Contains(err.Error(), MarkHeader) || !strings.Contains(err.Error(), "not the project's test server") {
		t.Errorf("error %v, want one naming the missing %s header", err, MarkHeader)
	}
}

func TestFetchStatsLeavesNothingBehind(t *testing.T) {
	s := startServer(t)
	get(t, s, "", "/page?run=r&req=1")
	goroutinesBefore := runtime.NumGoroutine()
	fdsBefore := openFDs(t)
	for range 10 {
		if _, err := FetchStats(s.Addr(), "r", later()); err != nil {
			t.Fatal(err)
		}
	}
	// The server's own goroutine for each connection ends soon after FetchStats
	// closed it, so the count is polled.
	noGoroutinesLeft(t, goroutinesBefore)
	if fdsBefore >= 0 {
		waitFor(t, "the descriptors to be closed", func() bool { return openFDs(t) <= fdsBefore })
	}
}

// TestIPv6 starts the server on ::1, fetches a page and the stats from it.
func TestIPv6(t *testing.T) {
	skipWithoutIPv6(t)
	s, err := Start("[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.Addr(), "[::1]:") {
		t.Errorf("Addr %q, want [::1]:port", s.Addr())
	}
	resp := get(t, s, s.Addr(), "/page?run=r&req=1")
	if resp.status != http.StatusOK || resp.header.Get(MarkHeader) != MarkValue {
		t.Fatalf("status %d, %s %q; want 200 and the mark", resp.status, MarkHeader, resp.header.Get(MarkHeader))
	}
	fetched, err := FetchStats(s.Addr(), "r", later())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(countersOnly(s.Stats("r")), fetched); diff != "" {
		t.Errorf("FetchStats over IPv6 (-in process +over HTTP):\n%s", diff)
	}
}
