//go:build unix

// The tests particular to stage 01; the tests every stage passes are in
// scaffold_test.go.

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestOneRequestInFlightAtATime proves the staircase from the server's side:
// a blocking client never has two requests open, whatever the timing.
func TestOneRequestInFlightAtATime(t *testing.T) {
	srv := startServer(t)
	rn := newTestRun(t, srv, 20*time.Millisecond, "", "", "", "", "")
	rn.fetch()
	sameResponses(t, srv, rn)
	st := srv.Stats(rn.tag)
	if st.Requests != 5 || st.PeakInFlight != 1 {
		t.Errorf("server saw %d requests with at most %d in flight; want 5 and exactly 1", st.Requests, st.PeakInFlight)
	}
}

// TestEachRequestMakesTheBlockingCalls checks the system calls a blocking
// client makes: one socket, connect, close per request, at least one write
// and one read (the test server's pages have a Content-Length, so the read
// that brings their last byte is the last), never an EAGAIN or EINPROGRESS, and one
// setsockopt before each connect, write and read (the time left before
// -deadline).
func TestEachRequestMakesTheBlockingCalls(t *testing.T) {
	srv := startServer(t)
	rn := newTestRun(t, srv, 0, "", "", "")
	rn.fetch()
	sameResponses(t, srv, rn)
	got := map[string]int{}
	for key, count := range rn.counts() {
		if key != "write" && key != "read" && key != "setsockopt" && !strings.HasSuffix(key, " EINTR") { // a signal may interrupt a call: it is made again
			got[key] = count
		}
	}
	want := map[string]int{"socket": 3, "connect": 3, "close": 3}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("system calls other than read and write (-want +got):\n%s", diff)
	}
	if rn.counts()["write"] < 3 || rn.counts()["read"] < 3 {
		t.Errorf("write %d, read %d: want at least one write and one read per request", rn.counts()["write"], rn.counts()["read"])
	}
	if blocking := blockingCalls(rn); rn.counts()["setsockopt"] != blocking {
		t.Errorf("setsockopt %d, want one before each of the %d blocking calls", rn.counts()["setsockopt"], blocking)
	}
}

// blockingCalls counts the calls that sleep: connect, write and read, each
// whatever it returned (a call a signal interrupted is made again, after a
// setsockopt of its own).
func blockingCalls(rn *run) int {
	total := 0
	for key, n := range rn.counts() {
		if name := strings.Fields(key)[0]; name == "connect" || name == "write" || name == "read" {
			total += n
		}
	}
	return total
}
