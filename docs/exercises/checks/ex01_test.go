//go:build exercises

// The checkers of stage 01's exercises (docs/exercises/README.md#stage-01-blocking).

package checks

import (
	"strings"
	"testing"
	"time"
)

// TestExercise01_1: a -connect-timeout flag that gives up on a server that
// never answers the handshake.
func TestExercise01_1(t *testing.T) {
	c := begin(t, "01.1", "01-blocking")
	c.requireFlag("connect-timeout", "Add it in addStageFlags (main.go) with fs.DurationVar, then use it in fetch, before connect.")

	// A port where the SYN is dropped: without a timeout, connect would
	// sleep for about two minutes per request.
	hole := blackHole(t, c.ex)
	c.limit, c.hangHint = 30*time.Second, "connect still waits as long as the kernel keeps trying (about two minutes): -connect-timeout does not limit it yet"
	s, _ := c.runJSON("-addr", hole, "-n", "2", "-connect-timeout", "300ms")
	failed, timedOut := s.failures("timed out")
	if len(failed) != 2 || timedOut != 2 {
		c.fatalf("-connect-timeout 300ms to a server that never answers: %d of 2 requests failed, %d of them with an error that says \"timed out\"; want both, like \"connect to %s: no answer within 300ms: connection timed out\". First error: %s", len(failed), timedOut, hole, s.firstError())
	}
	for _, r := range s.Results {
		// Generous: the flag says 300ms, the kernel alone would take minutes.
		if took := time.Duration((r.EndMS - r.StartMS) * float64(time.Millisecond)); took > 10*time.Second {
			c.errorf("request %d took %v to give up: -connect-timeout 300ms should end it after about 300ms", r.ID, took.Round(time.Millisecond))
		}
	}
	c.limit, c.hangHint = runLimit, "it hangs"

	// The timeout is for the handshake only: a server that answers after a
	// second is still waited for.
	s, _ = c.runJSON("-n", "2", "-delay", "1s", "-connect-timeout", "200ms")
	if s.Failed > 0 {
		c.fatalf("-connect-timeout 200ms with a server that answers after 1s: %d requests failed (%s). The timeout must bound connect only, not the wait for the response: set it back to 0 once connected", s.Failed, s.firstError())
	}
	c.allOK(s, "-connect-timeout 200ms -delay 1s")

	// And without the flag, nothing changes.
	s, _ = c.runJSON("-n", "2", "-delay", "0")
	c.allOK(s, "without -connect-timeout")
}

// TestExercise01_2: a -read-timeout flag that gives up on a server that
// connects and then says nothing.
func TestExercise01_2(t *testing.T) {
	c := begin(t, "01.2", "01-blocking")
	c.requireFlag("read-timeout", "Add it in addStageFlags (main.go) with fs.DurationVar, then set SO_RCVTIMEO on the socket before the first read.")

	// The server waits 5s before answering: with -read-timeout 300ms, each
	// read gives up long before.
	s, _ := c.runJSON("-n", "2", "-delay", "5s", "-read-timeout", "300ms")
	failed, timedOut := s.failures("timed out")
	if len(failed) == 0 {
		c.fatalf("-read-timeout 300ms with a server that answers after 5s: every request waited for the answer and succeeded; the read must give up after 300ms")
	}
	if len(failed) != 2 || timedOut != 2 {
		c.fatalf("-read-timeout 300ms with a server that answers after 5s: %d of 2 requests failed, %d of them with an error that says \"timed out\"; want both, like \"read: timed out: nothing arrived for 300ms\". First error: %s", len(failed), timedOut, s.firstError())
	}
	for _, r := range s.Results {
		// Generous: 300ms asked, 5s if the read waited for the server.
		if took := time.Duration((r.EndMS - r.StartMS) * float64(time.Millisecond)); took > 4*time.Second {
			c.errorf("request %d took %v to give up: -read-timeout 300ms should end it after about 300ms", r.ID, took.Round(time.Millisecond))
		}
	}

	// A server that answers in time is waited for, and without the flag
	// nothing changes.
	s, _ = c.runJSON("-n", "2", "-delay", "300ms", "-read-timeout", "3s")
	c.allOK(s, "-read-timeout 3s with a server that answers after 300ms")
	s, _ = c.runJSON("-n", "2", "-delay", "300ms")
	c.allOK(s, "without -read-timeout")
}

// TestExercise01_3: -send-first connects and sends every request before
// reading any response, with blocking calls only, and the server works on
// all of them at once.
func TestExercise01_3(t *testing.T) {
	c := begin(t, "01.3", "01-blocking")
	c.requireFlag("send-first", "Add it in addStageFlags (main.go) with fs.BoolVar, and give fetchAll a second way to drive the requests: connect and send them all, then read each response.")

	s, _ := c.runJSON("-n", "5", "-delay", "500ms", "-send-first")
	c.allOK(s, "-send-first")
	for key := range s.Syscalls {
		call, _, _ := strings.Cut(key, " ")
		if call != "socket" && call != "connect" && call != "write" && call != "read" && call != "close" || strings.Contains(key, " E") {
			c.fatalf("-send-first made %q calls (all calls: %s): the exercise is to change the order of stage 01's blocking calls, socket, connect, write, read and close, not to make the sockets nonblocking", key, s.callsText())
		}
	}
	// The server's record: every request was in its hands at once.
	if s.peak() != 5 {
		c.fatalf("-send-first -n 5: the server had at most %d requests in flight at once; want 5. Every request must be connected and sent before the first response is read, so the server works on all of them together", s.peak())
	}
	// The client's view: every request started before the first one ended.
	firstEnd, lastStart := s.Results[0].EndMS, 0.0
	for _, r := range s.Results {
		firstEnd, lastStart = min(firstEnd, r.EndMS), max(lastStart, r.StartMS)
	}
	if lastStart > firstEnd {
		c.errorf("-send-first: a request started (at %.0fms) after another had finished (at %.0fms); call r.begin() for every request before reading any response", lastStart, firstEnd)
	}

	// Without the flag, the staircase of stage 01 is still there.
	s, _ = c.runJSON("-n", "3", "-delay", "100ms")
	c.allOK(s, "without -send-first")
	if s.peak() != 1 {
		c.errorf("without -send-first, the server had %d requests in flight at once; stage 01's default must stay one at a time", s.peak())
	}
}
