// The tests particular to stage 02; the tests every stage passes are in
// scaffold_test.go.

package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
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
	if rn.calls["read EAGAIN"] == 0 || rn.wasted() < rn.calls["read EAGAIN"] {
		t.Errorf("read EAGAIN %d, wasted %d: want wasted reads while the server waits", rn.calls["read EAGAIN"], rn.wasted())
	}
	if rn.calls["connect EINPROGRESS"] != 2 {
		t.Errorf("connect EINPROGRESS %d, want 2: a nonblocking connect returns before the handshake", rn.calls["connect EINPROGRESS"])
	}
}

// TestNothingIsSentBeforeTheConnectFinishes guards against the notes' first
// bug: for every request, the trace must show a connect that succeeded
// (= 0, or EISCONN) before the first write.
func TestNothingIsSentBeforeTheConnectFinishes(t *testing.T) {
	var out, trace bytes.Buffer
	if code := runStage([]string{"-n", "4", "-delay", "0", "-trace"}, &out, &trace); code != 0 {
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
