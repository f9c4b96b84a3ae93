//go:build exercises

// The checkers of stage 02's exercises (docs/exercises/README.md#stage-02-nonblocking-spin).

package checks

import (
	"regexp"
	"strconv"
	"testing"
)

// TestExercise02_1: -wasted prints, for each request, how many of its calls
// were wasted, and the counts add up to the report's total.
func TestExercise02_1(t *testing.T) {
	c := begin(t, "02.1", "02-nonblocking-spin")
	c.requireFlag("wasted", "Add it in program (main.go) with flags.BoolVar; count each request's EAGAIN and EALREADY results in its conn, and print the count when the request ends.")

	s, o := c.runJSON("-n", "5", "-delay", "200ms", "-wasted")
	c.allOK(s, "-wasted")
	lines := regexp.MustCompile(`(?m)^req (\d+): (\d+) wasted calls`).FindAllStringSubmatch(o.stderr, -1)
	if len(lines) == 0 {
		c.fatalf("-wasted printed no line like \"req 3: 123456 wasted calls\" on standard error; it printed:\n%s", indent(last(o.stderr, 10)))
	}
	perRequest := map[int]int{}
	sum := 0
	for _, m := range lines {
		id, _ := strconv.Atoi(m[1])
		count, _ := strconv.Atoi(m[2])
		if _, twice := perRequest[id]; twice {
			c.fatalf("-wasted printed request %d twice: print each request's count once, when it ends", id)
		}
		perRequest[id] = count
		sum += count
	}
	for id := 1; id <= 5; id++ {
		count, ok := perRequest[id]
		switch {
		case !ok:
			c.fatalf("-wasted printed no line for request %d (it printed %d lines for 5 requests)", id, len(lines))
		case count == 0:
			c.errorf("request %d: 0 wasted calls, while the server kept it waiting 200ms and the loop spun on it: count every EAGAIN and EALREADY it got", id)
		}
	}
	if sum != s.Wasted {
		c.fatalf("the requests' wasted calls add up to %d, but the report counts %d (calls: %s): count exactly the calls that returned EAGAIN or EALREADY, for the request they were made for", sum, s.Wasted, s.callsText())
	}
}

// TestExercise02_2: -backoff D sleeps between rounds: the requests still
// overlap, with a few hundred wasted calls instead of hundreds of thousands.
func TestExercise02_2(t *testing.T) {
	c := begin(t, "02.2", "02-nonblocking-spin")
	c.requireFlag("backoff", "Add it in program (main.go) with flags.DurationVar, and sleep that long after each round of fetchAll's loop.")

	s, _ := c.runJSON("-n", "5", "-delay", "300ms", "-backoff", "10ms")
	c.allOK(s, "-backoff 10ms")
	if s.peak() != 5 {
		c.fatalf("-backoff 10ms -n 5: the server had at most %d requests in flight at once; want 5: sleeping between rounds must not make the requests take turns", s.peak())
	}
	// About 5 requests × (300ms / 10ms) rounds = 150 wasted calls; spinning
	// makes hundreds of thousands. The bound is generous.
	if s.Wasted > 3000 {
		c.fatalf("-backoff 10ms -delay 300ms: %d wasted calls; a loop that sleeps 10ms per round makes about 5 × 300ms/10ms = 150 of them (up to 3000 allowed). Does it sleep after every round? (calls: %s)", s.Wasted, s.callsText())
	}

	// Without the flag, the stage still makes its point.
	s, _ = c.runJSON("-n", "5", "-delay", "300ms")
	c.allOK(s, "without -backoff")
	if s.Wasted <= 3000 {
		c.errorf("without -backoff, only %d wasted calls: the default must still spin, which is the stage's lesson", s.Wasted)
	}
}
