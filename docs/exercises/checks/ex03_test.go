//go:build exercises

// The checkers of stage 03's exercises (docs/exercises/README.md#stage-03-select-multiplex).

package checks

import (
	"testing"

	"golang.org/x/sys/unix"
)

// manyRequests is past select's limit: with the embedded test server in the
// same process, 1,100 requests need about 2,200 descriptors.
const manyRequests = "1100"

// needDescriptors skips the check when the process may not open enough
// descriptors for 1,100 requests and their server ends. (Go raises the soft
// limit to the hard one by itself; only the hard limit matters.)
func needDescriptors(t *testing.T, ex string) {
	t.Helper()
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err == nil && lim.Max < 2400 {
		t.Skipf("%s: this needs about 2,300 open descriptors, and the hard limit here is %d (ulimit -Hn)", ex, lim.Max)
	}
}

// TestExercise03_1: the loop on poll(2) instead of select(2), so that
// 1,100 requests all work.
func TestExercise03_1(t *testing.T) {
	needDescriptors(t, "03.1")
	c := begin(t, "03.1", "03-select-multiplex")

	s, _ := c.runJSON("-n", manyRequests, "-delay", "200ms")
	if failed, limit := s.failures("FD_SETSIZE"); len(failed) > 0 {
		if limit > 0 {
			c.fatalf("1,100 requests: %d failed with the FD_SETSIZE message; switch the loop to poll(2) (unix.Poll) so that descriptors above 1023 work, and drop the FD_SETSIZE check in start", limit)
		}
		c.fatalf("1,100 requests: %d failed; the first: %s", len(failed), s.firstError())
	}
	c.allOK(s, "1,100 requests")
	if n := s.calls("select"); n > 0 {
		c.fatalf("every request succeeded, but the loop still calls select (%d calls: %s); the exercise is to wait in poll(2) instead", n, s.callsText())
	}
	if s.calls("poll") == 0 {
		c.fatalf("the report counts no poll call (calls: %s): record each one right after it, rn.record(\"poll\", n, err), as the stage does for select", s.callsText())
	}

	// -timeout still works, now as poll's timeout: empty wake-ups with it,
	// none without.
	s, _ = c.runJSON("-n", "2", "-delay", "100ms", "-timeout", "5ms")
	c.allOK(s, "-timeout 5ms")
	if s.Syscalls["poll timeout"] == 0 {
		c.errorf("-timeout 5ms with a server that answers after 100ms: poll never returned empty-handed (calls: %s); pass -timeout to poll, in milliseconds", s.callsText())
	}
	s, _ = c.runJSON("-n", "2", "-delay", "100ms")
	c.allOK(s, "without -timeout")
	if n := s.Syscalls["poll timeout"]; n > 0 {
		c.errorf("without -timeout, poll returned empty-handed %d times, with a server that answers after 100ms and 30s left before -deadline: its timeout must be the time left (in milliseconds, rounded up; 0 returns at once and the loop spins)", n)
	}

	// -deadline still works: poll sleeps until the run's time is up at most,
	// and the requests still going then fail.
	s, _ = c.runJSON("-n", "2", "-delay", "5s", "-deadline", "300ms")
	if failed, timedOut := s.failures("timed out"); len(failed) != 2 || timedOut != 2 {
		c.fatalf("-deadline 300ms with a server that answers after 5s: %d of 2 requests failed, %d with an error that says \"timed out\"; want both. First error: %s", len(failed), timedOut, s.firstError())
	}
	for _, r := range s.Results {
		if took := r.EndMS - r.StartMS; took > 4000 { // generous: 300ms asked, 5s if poll waited for the server
			c.fatalf("-deadline 300ms: request %d took %.0fms; poll's timeout must be the time left before -deadline at most (and -timeout at most)", r.ID, took)
		}
	}
}

// TestExercise03_2: -queue keeps select, and starts the requests whose
// descriptor is too high once others have finished and freed theirs.
func TestExercise03_2(t *testing.T) {
	needDescriptors(t, "03.2")
	c := begin(t, "03.2", "03-select-multiplex")
	c.requireFlag("queue", "Add it in program (main.go) with flags.BoolVar; with it, fetchAll keeps the requests that got a descriptor of 1024 or more waiting, and starts them again after some request has finished.")

	s, _ := c.runJSON("-n", manyRequests, "-delay", "200ms", "-queue")
	if failed, limit := s.failures("FD_SETSIZE"); len(failed) > 0 {
		if limit > 0 {
			c.fatalf("-queue, 1,100 requests: %d still failed with the FD_SETSIZE message; instead of failing them, keep them waiting and start them once running requests have finished and closed their sockets (socket(2) returns the lowest free descriptor)", limit)
		}
		c.fatalf("-queue, 1,100 requests: %d failed; the first: %s", len(failed), s.firstError())
	}
	c.allOK(s, "-queue, 1,100 requests")
	if s.calls("select") == 0 || s.calls("poll") > 0 {
		c.fatalf("-queue must keep waiting in select (calls: %s): this exercise works within FD_SETSIZE; exercise 03.1 is the one that swaps select for poll", s.callsText())
	}

	// Without -queue, the stage still shows the limit.
	s, _ = c.runJSON("-n", manyRequests, "-delay", "200ms")
	if _, limit := s.failures("FD_SETSIZE"); limit == 0 {
		c.errorf("without -queue, no request of 1,100 failed with the FD_SETSIZE message: the default must still show select's limit, which is the stage's lesson")
	}
}
