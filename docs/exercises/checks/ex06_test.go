//go:build exercises

// The checkers of stage 06's exercises (docs/exercises/README.md#stage-06-goroutines-compare).

package checks

import (
	"net"
	"sort"
	"strings"
	"testing"
	"time"
)

// clientOverlap is the most requests that were between begin and finish at
// the same moment, as the client's report says. A request that ends at the
// moment another starts does not overlap it.
func clientOverlap(s summary) int {
	type edge struct {
		at    float64
		delta int
	}
	var edges []edge
	for _, r := range s.Results {
		edges = append(edges, edge{r.StartMS, +1}, edge{r.EndMS, -1})
	}
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at != edges[j].at {
			return edges[i].at < edges[j].at
		}
		return edges[i].delta < edges[j].delta // ends first
	})
	most, now := 0, 0
	for _, e := range edges {
		now += e.delta
		most = max(most, now)
	}
	return most
}

// TestExercise06_1: -limit k runs at most k requests at once, in every model.
func TestExercise06_1(t *testing.T) {
	c := begin(t, "06.1", "06-goroutines-compare")
	c.requireFlag("limit", "Add it in program (main.go), and in fetchAll make each goroutine wait for one of k slots before its request (a buffered channel of size k is a semaphore).")

	for _, model := range []string{"goroutines", "threads"} {
		s, _ := c.runJSON("-n", "12", "-delay", "300ms", "-limit", "3", "-model", model)
		c.allOK(s, "-limit 3 -model "+model)
		switch peak := s.peak(); {
		case peak > 3:
			c.fatalf("-limit 3 -model %s: the server had %d requests in flight at once; at most 3 may run together", model, peak)
		case peak < 3:
			c.fatalf("-limit 3 -model %s: the server never had more than %d requests at once; -limit 3 should let 3 run together", model, peak)
		}
		if overlap := clientOverlap(s); overlap > 3 {
			c.fatalf("-limit 3 -model %s: the report shows %d requests between begin and finish at once, though the server never had more than 3: call r.begin() once the request has its slot, so that the timeline shows the waves", model, overlap)
		}
	}

	s, _ := c.runJSON("-n", "6", "-delay", "100ms")
	c.allOK(s, "without -limit")
}

// TestExercise06_2: -timeout D, a deadline of each request's own with net's
// deadlines (for the dial, and for every Read and Write): D after its start,
// or the run's -deadline if that comes first.
func TestExercise06_2(t *testing.T) {
	c := begin(t, "06.2", "06-goroutines-compare")
	c.requireFlag("timeout", "Add it in program (main.go) with flags.DurationVar; in fetch, give the dialer and the connection the earlier of start + D and the run's deadline.")

	isTimeout := func(err string) bool {
		err = strings.ToLower(err)
		return strings.Contains(err, "timeout") || strings.Contains(err, "timed out")
	}

	// A server that answers after 5s: the reads give up.
	s, _ := c.runJSON("-n", "3", "-delay", "5s", "-timeout", "300ms")
	if s.Failed == 0 {
		c.fatalf("-timeout 300ms with a server that answers after 5s: every request waited and succeeded; each must give up 300ms after it started")
	}
	for _, r := range s.Results {
		if !isTimeout(r.Error) {
			c.fatalf("-timeout 300ms with a server that answers after 5s: request %d ended with %q; want an error that says it timed out", r.ID, r.Error)
		}
		if took := r.EndMS - r.StartMS; took > 4000 { // generous: 300ms asked
			c.errorf("request %d took %.0fms to time out, with -timeout 300ms", r.ID, took)
		}
	}

	// A server that never answers the handshake: the dial gives up, at the
	// request's deadline, long before the run's.
	hole := blackHole(t, c.ex)
	c.limit, c.hangHint = 30*time.Second, "the dial still waits as long as the kernel keeps trying: the deadline must apply to the dial too (net.Dialer's Deadline)"
	s, _ = c.runJSON("-addr", hole, "-n", "2", "-timeout", "300ms", "-deadline", "10s")
	for _, r := range s.Results {
		if !isTimeout(r.Error) {
			c.fatalf("-timeout 300ms to a server that never answers the handshake: request %d ended with %q; want an error that says it timed out", r.ID, r.Error)
		}
		if took := r.EndMS - r.StartMS; took > 5000 { // generous: 300ms asked, -deadline 10s
			c.fatalf("-timeout 300ms -deadline 10s to a server that never answers the handshake: request %d took %.0fms; the dial must give up at the request's own deadline (net.Dialer's Deadline), not only at the run's", r.ID, took)
		}
	}
	c.limit, c.hangHint = runLimit, "it hangs"

	// The earlier deadline wins: with -deadline before -timeout, the run's
	// limit ends the requests.
	s, _ = c.runJSON("-n", "2", "-delay", "5s", "-timeout", "10s", "-deadline", "300ms")
	for _, r := range s.Results {
		if !isTimeout(r.Error) {
			c.fatalf("-timeout 10s -deadline 300ms with a server that answers after 5s: request %d ended with %q; want an error that says it timed out", r.ID, r.Error)
		}
		if took := r.EndMS - r.StartMS; took > 4000 { // generous: 300ms asked
			c.fatalf("-timeout 10s -deadline 300ms: request %d took %.0fms; a request's deadline is the earlier of its start + -timeout and the run's -deadline", r.ID, took)
		}
	}

	s, _ = c.runJSON("-n", "3", "-delay", "100ms", "-timeout", "3s")
	c.allOK(s, "-timeout 3s with a server that answers after 100ms")
}

// TestExercise06_3: -fail-fast: when one request fails, the others are
// cancelled instead of waiting for their answers.
func TestExercise06_3(t *testing.T) {
	c := begin(t, "06.3", "06-goroutines-compare")
	c.requireFlag("fail-fast", "Add it in program (main.go) with flags.BoolVar; give the requests a context.Context that fetchAll cancels when one fails, and make fetch give up when it is cancelled.")

	// A server of this check: request 1 is closed at once without an
	// answer; the others are held open and never answered.
	addr := startRawServer(t, func(conn net.Conn, line string) {
		switch requestID(line) {
		case 0: // the stage's closing /stats request
			answer(conn, 10)
		case 1:
			return // closed without a word
		default:
			holdOpen(conn)
		}
	})
	c.limit, c.hangHint = 20*time.Second, "requests 2 to 4 were not cancelled: the run was still going 20s after request 1 failed (this check's server never answers them). When a request fails, cancel a context that the others watch; a Read parked in the netpoller wakes up when its connection's deadline is set to the past"
	s, _ := c.runJSON("-addr", addr, "-n", "4", "-fail-fast")
	if r := s.Results[0]; r.Error == "" || strings.Contains(strings.ToLower(r.Error), "cancel") {
		c.fatalf("-fail-fast: request 1, closed by the server without an answer, should fail with its own error, not %q", r.Error)
	}
	for _, r := range s.Results[1:] {
		if !strings.Contains(strings.ToLower(r.Error), "cancel") {
			c.fatalf("-fail-fast: request %d ended with status %d, error %q; after request 1 failed it should be cancelled, with an error that says so (\"cancelled: request 1 failed first\")", r.ID, r.Status, r.Error)
		}
	}
	c.limit, c.hangHint = runLimit, "it hangs"

	s, _ = c.runJSON("-n", "4", "-delay", "100ms", "-fail-fast")
	c.allOK(s, "-fail-fast when nothing fails")
}
