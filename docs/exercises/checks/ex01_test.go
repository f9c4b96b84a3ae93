//go:build exercises

// The checkers of stage 01's exercises (docs/exercises/README.md#stage-01-blocking).

package checks

import (
	"strings"
	"testing"
	"time"
)

// TestExercise01_1: a -connect-timeout flag that gives up on a server that
// never answers the handshake, sooner than -deadline, and says which limit
// ran out.
func TestExercise01_1(t *testing.T) {
	c := begin(t, "01.1", "01-blocking")
	c.requireFlag("connect-timeout", "Add it in program (main.go) with flags.DurationVar, then use it in connect, where the stage sets SO_SNDTIMEO to the time left.")

	// A port where the SYN is dropped: connect sleeps until its timeout. With
	// -deadline alone, the first request would use up the whole run, and the
	// others would not even start.
	hole := blackHole(t, c.ex)
	c.limit, c.hangHint = 30*time.Second, "connect still waits as long as the kernel keeps trying: neither -connect-timeout nor -deadline limits it"
	s, _ := c.runJSON("-addr", hole, "-n", "3", "-connect-timeout", "300ms", "-deadline", "8s")
	failed, timedOut := s.failures("timed out")
	_, named := s.failures("connect-timeout")
	if len(failed) != 3 || timedOut != 3 || named != 3 {
		c.fatalf("-connect-timeout 300ms -deadline 8s, to a server that never answers: %d of 3 requests failed, %d with an error that says \"timed out\", %d that names -connect-timeout; want all 3, each after its own 300ms, like \"timed out connecting: no answer within -connect-timeout 300ms\". Set SO_SNDTIMEO to the flag's value when it is shorter than the time left, and say which limit ran out. First error: %s", len(failed), timedOut, named, s.firstError())
	}
	for _, r := range s.Results {
		// Generous: the flag says 300ms, -deadline 8s.
		if took := time.Duration((r.EndMS - r.StartMS) * float64(time.Millisecond)); took > 5*time.Second {
			c.errorf("request %d took %v to give up: -connect-timeout 300ms should end it after about 300ms", r.ID, took.Round(time.Millisecond))
		}
	}

	// The smaller limit wins: when the run's time is up first, -deadline
	// ends the handshake, and the error says so.
	s, _ = c.runJSON("-addr", hole, "-n", "2", "-connect-timeout", "10s", "-deadline", "300ms")
	if r := s.Results[0]; !strings.Contains(r.Error, "timed out") || !strings.Contains(r.Error, "-deadline") || strings.Contains(r.Error, "connect-timeout") {
		c.fatalf("-connect-timeout 10s -deadline 300ms, to a server that never answers: request 1 ended with %q; the run's time is up first, so the error must name -deadline, not -connect-timeout: the socket's timeout is the smaller of the two", r.Error)
	}
	if took := s.Results[0].EndMS - s.Results[0].StartMS; took > 5000 { // generous: 300ms asked
		c.fatalf("-connect-timeout 10s -deadline 300ms: request 1 took %.0fms; the handshake may wait for the smaller limit only", took)
	}
	c.limit, c.hangHint = runLimit, "it hangs"

	// The timeout is for the handshake only: a server that answers after a
	// second is still waited for.
	s, _ = c.runJSON("-n", "2", "-delay", "1s", "-connect-timeout", "200ms")
	if s.Failed > 0 {
		c.fatalf("-connect-timeout 200ms with a server that answers after 1s: %d requests failed (%s). The timeout must bound connect only, not the wait for the response", s.Failed, s.firstError())
	}
	c.allOK(s, "-connect-timeout 200ms -delay 1s")

	// And without the flag, nothing changes.
	s, _ = c.runJSON("-n", "2", "-delay", "0")
	c.allOK(s, "without -connect-timeout")
}

// TestExercise01_2: a -read-timeout flag that gives up on a server that
// connects and then says nothing, sooner than -deadline, and says which
// limit ran out.
func TestExercise01_2(t *testing.T) {
	c := begin(t, "01.2", "01-blocking")
	c.requireFlag("read-timeout", "Add it in program (main.go) with flags.DurationVar, then use it in receiveResponse, where the stage sets SO_RCVTIMEO to the time left.")

	// The server waits 5s before answering: with -read-timeout 300ms, each
	// read gives up long before, and the next request gets its turn.
	s, _ := c.runJSON("-n", "3", "-delay", "5s", "-read-timeout", "300ms", "-deadline", "8s")
	failed, timedOut := s.failures("timed out")
	_, named := s.failures("read-timeout")
	if len(failed) == 0 {
		c.fatalf("-read-timeout 300ms with a server that answers after 5s: every request waited for the answer and succeeded; the read must give up after 300ms")
	}
	if len(failed) != 3 || timedOut != 3 || named != 3 {
		c.fatalf("-read-timeout 300ms -deadline 8s with a server that answers after 5s: %d of 3 requests failed, %d with an error that says \"timed out\", %d that names -read-timeout; want all 3, each after its own 300ms, like \"timed out reading the response (0 bytes so far): nothing arrived for -read-timeout 300ms\". First error: %s", len(failed), timedOut, named, s.firstError())
	}
	for _, r := range s.Results {
		// Generous: 300ms asked, 5s if the read waited for the server.
		if took := time.Duration((r.EndMS - r.StartMS) * float64(time.Millisecond)); took > 4*time.Second {
			c.errorf("request %d took %v to give up: -read-timeout 300ms should end it after about 300ms", r.ID, took.Round(time.Millisecond))
		}
	}

	// The smaller limit wins: when the run's time is up first, -deadline
	// ends the read, and the error says so.
	s, _ = c.runJSON("-n", "2", "-delay", "5s", "-read-timeout", "10s", "-deadline", "300ms")
	if r := s.Results[0]; !strings.Contains(r.Error, "timed out") || !strings.Contains(r.Error, "-deadline") || strings.Contains(r.Error, "read-timeout") {
		c.fatalf("-read-timeout 10s -deadline 300ms with a server that answers after 5s: request 1 ended with %q; the run's time is up first, so the error must name -deadline, not -read-timeout: the socket's timeout is the smaller of the two", r.Error)
	}
	if took := s.Results[0].EndMS - s.Results[0].StartMS; took > 4000 { // generous: 300ms asked
		c.fatalf("-read-timeout 10s -deadline 300ms: request 1 took %.0fms; the read may wait for the smaller limit only", took)
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
	c.requireFlag("send-first", "Add it in program (main.go) with flags.BoolVar, and give fetchAll a second way to drive the requests: connect and send them all, then read each response.")

	s, _ := c.runJSON("-n", "5", "-delay", "500ms", "-send-first")
	c.allOK(s, "-send-first")
	for key := range s.Syscalls {
		call, _, _ := strings.Cut(key, " ")
		if call != "socket" && call != "setsockopt" && call != "connect" && call != "write" && call != "read" && call != "close" || strings.Contains(key, " E") {
			c.fatalf("-send-first made %q calls (all calls: %s): the exercise is to change the order of stage 01's blocking calls, socket, setsockopt, connect, write, read and close, not to make the sockets nonblocking", key, s.callsText())
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
