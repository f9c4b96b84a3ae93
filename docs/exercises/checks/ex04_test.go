//go:build exercises

// The checkers of stage 04's exercises (docs/exercises/README.md#stage-04-callback-reactor).

package checks

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// traceLine matches the -trace lines of a request's calls:
// " 0.000114 req 1   write          = 83".
var traceLine = regexp.MustCompile(`(?m)^\s*\d+\.\d+ req (\d+)\s+(\S+)`)

// firstCall returns, for each request, the position in the trace of its
// first call named call (or -1).
func firstCall(trace string, call string, n int) []int {
	pos := make([]int, n+1)
	for i := range pos {
		pos[i] = -1
	}
	for i, m := range traceLine.FindAllStringSubmatch(trace, -1) {
		id, _ := strconv.Atoi(m[1])
		if id >= 1 && id <= n && m[2] == call && pos[id] < 0 {
			pos[id] = i
		}
	}
	return pos
}

// TestExercise04_1: CallLater, a timer in the event loop, and -stagger D,
// which starts request k at (k-1) × D without ever blocking the loop.
func TestExercise04_1(t *testing.T) {
	c := begin(t, "04.1", "04-callback-reactor")
	c.requireFlag("stagger", "Add it in program (main.go) with flags.DurationVar; give the eventLoop a CallLater(d, fn) and let fetchAll add request k with a timer due (k-1) × stagger from now.")

	const n, stagger = 4, 300 * time.Millisecond
	s, o := c.runJSON("-n", strconv.Itoa(n), "-delay", "100ms", "-stagger", stagger.String(), "-trace")
	c.allOK(s, "-stagger 300ms")
	for i, r := range s.Results {
		due := float64(i) * float64(stagger.Milliseconds())
		if r.StartMS < due-0.5 {
			c.fatalf("-stagger 300ms: request %d started at %.1fms, before its time (%.0fms): a timer must never fire early, and r.begin() belongs in the function the timer calls", r.ID, r.StartMS, due)
		}
	}
	// The loop goes on while requests wait for their turn: each request has
	// sent its request (write) before the next one is even started (socket),
	// since 300ms are plenty for a handshake on loopback. A fetchAll that
	// sleeps between Adds, before Run, starts them all before any is sent.
	writes, sockets := firstCall(o.stderr, "write", n), firstCall(o.stderr, "socket", n)
	for k := 1; k < n; k++ {
		if writes[k] < 0 || sockets[k+1] < 0 {
			c.fatalf("-stagger -trace: no write for request %d or no socket for request %d in the trace:\n%s", k, k+1, indent(last(o.stderr, 20)))
		}
		if writes[k] > sockets[k+1] {
			c.fatalf("-stagger 300ms: request %d was started (socket) before request %d had sent its request (write): the loop must drive the requests already started while the others wait for their timers. Does fetchAll sleep between Adds? Let the loop's select sleep until the next timer instead", k+1, k)
		}
	}
	// And it sleeps: a select per event and per timer, not a spin.
	if selects := s.calls("select"); selects > 200 {
		c.fatalf("-stagger 300ms, 4 requests: %d select calls (%s); select's timeout should be the time until the next timer, so that the loop sleeps, instead of going round with a zero timeout", selects, s.callsText())
	}

	// -deadline comes before the timers of requests 3 and 4 (due at 2s and
	// 3s): the loop stops at -deadline, and those two fail without starting
	// (r.notStarted()). No request may be left without an end.
	s, _ = c.runJSON("-n", "4", "-delay", "50ms", "-stagger", "1s", "-deadline", "1500ms")
	c.everyRequestEnded(s, "-stagger 1s -deadline 1500ms")
	for _, r := range s.Results[2:] {
		if !notStarted(r.Error) {
			c.fatalf("-stagger 1s -deadline 1500ms: request %d, whose timer is due after -deadline, ended with status %d, error %q; want an error that says it did not start (r.notStarted(): \"not started: the run's -deadline of 1.5s passed\"): at -deadline the loop stops, and the requests its timers were to add fail", r.ID, r.Status, r.Error)
		}
	}
	if n := s.calls("socket"); n > 2 {
		c.fatalf("-stagger 1s -deadline 1500ms: %d sockets (calls: %s), but the timers of requests 3 and 4 are due after -deadline, so they must never start: the loop stops at -deadline (select sleeps until the next timer, and until -deadline at most)", n, s.callsText())
	}

	s, _ = c.runJSON("-n", "3", "-delay", "100ms")
	c.allOK(s, "without -stagger")
}

// everyRequestEnded fails the check when a request has neither a status nor
// an error: its callback, or finish, was never called.
func (c *check) everyRequestEnded(s summary, what string) {
	c.t.Helper()
	for _, r := range s.Results {
		if r.Error == "" && r.Status == 0 {
			c.fatalf("%s: request %d never ended: no status, no error, so finish was never called for it", what, r.ID)
		}
	}
	if sockets, closes := s.calls("socket"), s.calls("close"); closes != sockets {
		c.fatalf("%s: %d sockets but %d closes (calls: %s): every socket must be closed once", what, sockets, closes, s.callsText())
	}
}

// TestExercise04_2: -chain starts each request from the callback of the one
// before, which means Add is called while Run goes through its requests; the
// loop must keep the added request for its next round.
func TestExercise04_2(t *testing.T) {
	c := begin(t, "04.2", "04-callback-reactor")
	c.requireFlag("chain", "Add it in program (main.go) with flags.BoolVar; with it, fetchAll adds only the first request, and each callback adds the next.")

	s, o := c.runJSON("-n", "4", "-delay", "100ms", "-chain", "-trace")
	for _, r := range s.Results {
		if r.Error == "" && r.Status == 0 {
			c.fatalf("-chain: request %d never ended: no status, no error, so its callback was never called. Does every callback add the next request, and does the loop keep a request added during a round (l.added) for the next one?", r.ID)
		}
	}
	c.allOK(s, "-chain")
	if s.peak() != 1 {
		c.fatalf("-chain: the server had %d requests in flight at once; want 1: each request must start only when the one before has ended, from its callback", s.peak())
	}
	for i := 1; i < len(s.Results); i++ {
		if prev, r := s.Results[i-1], s.Results[i]; r.StartMS < prev.EndMS {
			c.fatalf("-chain: request %d started at %.1fms, before request %d ended (%.1fms): call r.begin() and Add for the next request in the callback, after r.finish", r.ID, r.StartMS, prev.ID, prev.EndMS)
		}
	}
	if s.calls("select") == 0 {
		c.fatalf("-chain made no select call (calls: %s): the requests must still be driven by the event loop", s.callsText())
	}
	c.addedWaitForTheNextRound(o.stderr, 4)

	// -deadline in the middle of the chain: the request going then fails as
	// timed out, and the ones after it fail without starting (the last one
	// could not start before 300ms anyway). None may be left without an end.
	s, _ = c.runJSON("-n", "4", "-delay", "100ms", "-chain", "-deadline", "250ms")
	c.everyRequestEnded(s, "-chain -deadline 250ms")
	if r := s.Results[3]; !notStarted(r.Error) {
		c.fatalf("-chain -delay 100ms -deadline 250ms: request 4 ended with status %d, error %q; it could not start before -deadline, so it must fail without starting (r.notStarted(): \"not started: the run's -deadline of 250ms passed\")", r.Status, r.Error)
	}

	s, _ = c.runJSON("-n", "4", "-delay", "100ms")
	c.allOK(s, "without -chain")
}

// traceCall matches every -trace line, the loop's and the requests':
// " 0.000146 loop    select         = 2", " 0.000129 req 2   socket         = 7".
var traceCall = regexp.MustCompile(`(?m)^\s*\d+\.\d+ (?:loop|req (\d+))\s+(\S+)\s+= (-?\d+)`)

// addedWaitForTheNextRound reads a -chain -trace run of n requests: each
// request after the first is made in the callback of the one before (its
// socket comes after that one's close), and it is first tried (getsockopt or
// write) only after a select of its own. The socket it gets often has the
// very number the request before has just closed: the round's ready sets,
// from a select before that close, say nothing about the new socket.
func (c *check) addedWaitForTheNextRound(trace string, n int) {
	c.t.Helper()
	socket := make([]int, n+1)  // each request's descriptor
	closed := make([]bool, n+1) // its close is in the trace
	made := make([]bool, n+1)   // its socket is, and no select since
	for _, m := range traceCall.FindAllStringSubmatch(trace, -1) {
		if m[1] == "" { // the loop's own call
			if m[2] == "select" {
				clear(made)
			}
			continue
		}
		id, _ := strconv.Atoi(m[1])
		if id < 1 || id > n {
			continue
		}
		switch m[2] {
		case "socket":
			socket[id], _ = strconv.Atoi(m[3])
			if id > 1 && !closed[id-1] {
				c.fatalf("-chain -trace: request %d made its socket before request %d had closed its own: each request must be added from the callback of the one before, which the loop calls once that request has ended", id, id-1)
			}
			made[id] = true
		case "getsockopt", "write":
			if made[id] {
				reused := ""
				if id > 1 && socket[id] == socket[id-1] {
					reused = fmt.Sprintf(" (here it even got descriptor %d, the number request %d had just closed)", socket[id], id-1)
				}
				c.fatalf("-chain -trace: request %d was tried (%s) in the round whose callback added it, before any select had looked at its socket. The round's ready sets come from a select made before that socket existed: a new socket may get the very number of one that has just closed%s, and the sets then describe the old one. Let Add keep the new request for the next round (l.added), as the stage does", id, m[2], reused)
			}
		case "close":
			closed[id] = true
		}
	}
	for id := 1; id <= n; id++ {
		if socket[id] == 0 {
			c.fatalf("-chain -trace: no socket call for request %d in the trace:\n%s", id, indent(last(trace, 20)))
		}
	}
}

// TestExercise04_3: -request-timeout D fails a request that has not ended D
// after it started, with a timer that is cancelled when the request ends.
func TestExercise04_3(t *testing.T) {
	c := begin(t, "04.3", "04-callback-reactor")
	c.requireFlag("request-timeout", "Add it in program (main.go) with flags.DurationVar; the loop needs timers (exercise 04.1) that can be cancelled: Add sets one per request, and the end of a request cancels it.")

	// Every request times out: the server answers after 5s.
	s, _ := c.runJSON("-n", "3", "-delay", "5s", "-request-timeout", "300ms")
	failed, timedOut := s.failures("timed out")
	if len(failed) == 0 {
		c.fatalf("-request-timeout 300ms with a server that answers after 5s: every request waited and succeeded; a timer must end each request 300ms after it started")
	}
	if len(failed) != 3 || timedOut != 3 {
		c.fatalf("-request-timeout 300ms with a server that answers after 5s: %d of 3 requests failed, %d with an error that says \"timed out\"; want all 3. First error: %s", len(failed), timedOut, s.firstError())
	}
	for _, r := range s.Results {
		// Generous: 300ms asked, 5s if nothing stopped it.
		if took := r.EndMS - r.StartMS; took > 4000 {
			c.errorf("request %d took %.0fms to time out, with -request-timeout 300ms", r.ID, took)
		}
	}
	c.closedOnce(s, 3)

	// Only the slow ones time out: request 1 is answered at once, 2 and 3
	// never (a server of this test that holds them open).
	addr := startRawServer(t, func(conn net.Conn, line string) {
		if id := requestID(line); id >= 2 {
			holdOpen(conn)
			return
		}
		answer(conn, 100)
	})
	s, _ = c.runJSON("-addr", addr, "-n", "3", "-request-timeout", "500ms")
	if r := s.Results[0]; r.Error != "" {
		if strings.Contains(r.Error, "timed out") {
			c.fatalf("request 1 got its whole answer at once, yet failed with %q: its timer fired after it had ended (and ended it a second time). Cancel a request's timer when it ends", r.Error)
		}
		c.fatalf("request 1 was answered at once but failed: %s", r.Error)
	}
	for _, r := range s.Results[1:] {
		if !strings.Contains(r.Error, "timed out") {
			c.fatalf("request %d never got an answer, so -request-timeout 500ms should fail it with \"timed out\"; it ended with status %d, error %q", r.ID, r.Status, r.Error)
		}
	}
	c.closedOnce(s, 3)

	// Requests that end in time: their timers are cancelled, so the loop
	// does not wait for them.
	s, _ = c.runJSON("-n", "3", "-delay", "50ms", "-request-timeout", "5s")
	c.allOK(s, "-request-timeout 5s with a server that answers after 50ms")
	c.closedOnce(s, 3)
	if s.WallMS > 4000 { // generous: the run takes about 50ms
		c.fatalf("-request-timeout 5s, requests answered after 50ms: the run took %.1fs; the loop waited for the timers of requests that had already ended. Cancel a request's timer when it ends", s.WallMS/1000)
	}

	// -deadline before -request-timeout: the run's limit ends the requests,
	// and the loop does not sleep on until their timers.
	s, _ = c.runJSON("-n", "3", "-delay", "5s", "-request-timeout", "10s", "-deadline", "300ms")
	if failed, timedOut := s.failures("timed out"); len(failed) != 3 || timedOut != 3 {
		c.fatalf("-request-timeout 10s -deadline 300ms with a server that answers after 5s: %d of 3 requests failed, %d with an error that says \"timed out\"; want all 3, at -deadline. First error: %s", len(failed), timedOut, s.firstError())
	}
	for _, r := range s.Results {
		if took := r.EndMS - r.StartMS; took > 4000 { // generous: 300ms asked
			c.fatalf("-request-timeout 10s -deadline 300ms: request %d took %.0fms; select's timeout is the time until the next timer, and the time left before -deadline at most", r.ID, took)
		}
	}
	c.closedOnce(s, 3)
}

// closedOnce fails the check unless each of n sockets was closed exactly
// once: a timer that ends a request a second time closes its socket again.
func (c *check) closedOnce(s summary, n int) {
	c.t.Helper()
	if s.Syscalls["close"] != n || s.calls("close") != n {
		c.fatalf("%d requests, but the calls say %s: every socket must be closed exactly once, by whatever ends its request first", n, s.callsText())
	}
}
