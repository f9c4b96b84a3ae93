//go:build exercises

// The checkers of stage 05's exercises (docs/exercises/README.md#stage-05-epoll).
// epoll is Linux's: on other systems they are skipped.

package checks

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// waitLine matches the -trace line of an epoll_wait and its result:
// " 0.000104 loop    epoll_wait     = 1".
var waitLine = regexp.MustCompile(`(?m)^\s*\d+\.\d+ loop\s+epoll_wait\s+= (-?\d+)`)

// TestExercise05_1: -max-events N, the length of the array epoll_wait
// fills: no wait returns more than N ready sockets.
func TestExercise05_1(t *testing.T) {
	linuxOnly(t, "05.1")
	c := begin(t, "05.1", "05-epoll")
	c.requireFlag("max-events", "Add it in program (main.go) with flags.Func, and make the watcher's events array (newWatcher, in epoll.go) that long.")

	const n = 20
	s, o := c.runJSON("-n", strconv.Itoa(n), "-delay", "100ms", "-max-events", "1", "-trace")
	c.allOK(s, "-max-events 1")
	waits := waitLine.FindAllStringSubmatch(o.stderr, -1)
	if len(waits) == 0 {
		c.fatalf("-max-events 1 -trace shows no epoll_wait line:\n%s", indent(last(o.stderr, 10)))
	}
	for _, m := range waits {
		if ready, _ := strconv.Atoi(m[1]); ready > 1 {
			c.fatalf("-max-events 1: an epoll_wait returned %d ready sockets; with an events array of length 1 it returns at most 1", ready)
		}
	}
	// Each request needs at least two events (writable once connected,
	// readable when the response is there), and each wait now returns one.
	if got := s.Syscalls["epoll_wait"]; got < 2*n {
		c.fatalf("-max-events 1, %d requests: %d epoll_waits returned a socket; each request needs at least two events (writable, readable), so at least %d", n, got, 2*n)
	}

	s, _ = c.runJSON("-n", strconv.Itoa(n), "-delay", "100ms")
	c.allOK(s, "without -max-events")
}

// TestExercise05_2: -read-once reads once per event. Level-triggered it
// works; edge-triggered (-edge) a response larger than one read gets stuck.
func TestExercise05_2(t *testing.T) {
	linuxOnly(t, "05.2")
	c := begin(t, "05.2", "05-epoll")
	c.requireFlag("read-once", "Add it in program (main.go) with flags.BoolVar; with it, receiveResponse returns after one read that got bytes, instead of reading until EAGAIN.")

	// A server of this test answers with 30,000 bytes at once, then closes:
	// more than the stage's 8,192-byte buffer takes in one read. sent says
	// when the response and the close have left it.
	const size = 30000
	server := func() (addr string, sent *atomic.Bool) {
		sent = new(atomic.Bool)
		addr = startRawServer(t, func(conn net.Conn, line string) {
			answer(conn, size)
			if requestID(line) > 0 {
				conn.Close()
				sent.Store(true)
			}
		})
		return addr, sent
	}

	// Level-triggered: every byte arrives, one read per event.
	addr, _ := server()
	s, _ := c.runJSON("-addr", addr, "-n", "1", "-read-once")
	c.allOK(s, "-read-once (level-triggered)")
	if s.Bytes != size {
		c.fatalf("-read-once: %d body bytes arrived, want %d", s.Bytes, size)
	}
	if reads, waits := s.calls("read"), s.calls("epoll_wait"); reads > waits || s.Syscalls["read EAGAIN"] > 0 {
		c.fatalf("-read-once, one request: %d reads for %d epoll_waits (%s); with one socket, each wait may be followed by one read at most, and never one that says EAGAIN: return from receiveResponse after the first read that got bytes", reads, waits, s.callsText())
	}

	// Edge-triggered: after the first read or two, the rest of the response
	// sits in the socket and epoll never reports it again. With -timeout
	// 50ms the loop wakes every 50ms with nothing ready: five such wake-ups
	// in a row, after the server has sent everything and closed, are the
	// proof. The run would never end, so it is stopped then.
	addr, sent := server()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, "-addr", addr, "-n", "1", "-read-once", "-edge", "-timeout", "50ms", "-trace", "-json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := &limitedBuffer{}
	cmd.Stdout = stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stuck := false
	emptyInARow := 0
	var trace []string
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		line := lines.Text()
		trace = append(trace, line)
		m := waitLine.FindStringSubmatch(line)
		switch {
		case m == nil:
			continue
		case m[1] == "0" && sent.Load():
			emptyInARow++
		default:
			emptyInARow = 0
		}
		if emptyInARow == 5 {
			stuck = true
			cancel() // it would wait for ever: stop it
			break
		}
	}
	_ = cmd.Wait()
	if !stuck {
		if ctx.Err() != nil {
			c.fatalf("-read-once -edge -timeout 50ms: in 20s, neither an end nor five empty wake-ups in a row after the server had sent everything. Does -timeout still reach epoll_wait? The trace ends with:\n%s", indent(last(joinLines(trace), 15)))
		}
		var s summary
		_ = json.Unmarshal([]byte(stdout.String()), &s)
		c.fatalf("-read-once -edge: the run ended (%d ok, %d body bytes of %d) instead of getting stuck, so under -edge the loop still read until EAGAIN. With -read-once the loop must read once per event in both modes; edge-triggered, the rest of the response then never comes, and that failure is what to explain (in a comment on receiveResponse)", s.OK, s.Bytes, size)
	}
	t.Logf("05.2: edge-triggered without draining got stuck, as it should; the trace:\n%s", indent(last(joinLines(trace), 12)))
}

// TestExercise05_3: the stage's -deadline kept by a timerfd in the epoll
// set, instead of an epoll_wait timeout worked out from the time left.
func TestExercise05_3(t *testing.T) {
	linuxOnly(t, "05.3")
	c := begin(t, "05.3", "05-epoll")

	s, _ := c.runJSON("-n", "3", "-delay", "5s", "-deadline", "300ms")
	if n := s.calls("timerfd_create"); n != 1 {
		c.fatalf("-deadline 300ms: %d timerfd_create calls (calls: %s); want 1: keep -deadline with a timerfd in the epoll set (unix.TimerfdCreate in newWatcher, epoll.go, recorded with rn.record(\"timerfd_create\", fd, err)), instead of working out epoll_wait's timeout from the time left", n, s.callsText())
	}
	if n := s.calls("timerfd_settime"); n != 1 {
		c.fatalf("-deadline 300ms: %d timerfd_settime calls (calls: %s); want 1: arm the timer once, to expire when the run's time is up, and record the call", n, s.callsText())
	}
	failed, timedOut := s.failures("timed out")
	if len(failed) != 3 || timedOut != 3 {
		c.fatalf("-deadline 300ms with a server that answers after 5s: %d of 3 requests failed, %d with an error that says \"timed out\"; want all 3: when the timerfd is readable, end every request still going. First error: %s", len(failed), timedOut, s.firstError())
	}
	for _, r := range s.Results {
		if took := r.EndMS - r.StartMS; took > 4000 { // generous: 300ms asked, 5s without it
			c.errorf("request %d took %.0fms to end, with -deadline 300ms", r.ID, took)
		}
	}
	if adds := s.Syscalls["epoll_ctl ADD"]; adds != 3+1 {
		c.fatalf("-deadline, 3 requests: %d epoll_ctl ADD; want 4, the 3 sockets and the timerfd: the timer must be in the epoll set, so that epoll_wait wakes up for it (record its ADD like the sockets')", adds)
	}
	if n := s.Syscalls["epoll_wait timeout"]; n > 0 {
		c.fatalf("-deadline: %d epoll_waits ended on their own timeout; the deadline must end the wait through the timerfd becoming readable: without -timeout, epoll_wait's timeout is -1", n)
	}

	// Requests that end before the deadline: nothing waits for the timer,
	// and every descriptor is closed, the timerfd too.
	s, _ = c.runJSON("-n", "3", "-delay", "50ms", "-deadline", "20s")
	c.allOK(s, "-deadline 20s with a server that answers after 50ms")
	if s.WallMS > 10000 { // generous: the run takes about 50ms
		c.fatalf("-deadline 20s, requests answered after 50ms: the run took %.1fs; once every request has ended, the loop must stop, whatever the timer", s.WallMS/1000)
	}
	if closes := s.Syscalls["close"]; closes != 3+2 || s.calls("close") != closes {
		c.fatalf("-deadline, 3 requests: the calls say %s; want 5 closes, each successful: the 3 sockets, the epoll instance and the timerfd", s.callsText())
	}

	// -timeout still bounds each wait, on its own.
	s, _ = c.runJSON("-n", "2", "-delay", "100ms", "-timeout", "10ms")
	c.allOK(s, "-timeout 10ms")
	if s.Syscalls["epoll_wait timeout"] == 0 {
		c.errorf("-timeout 10ms with a server that answers after 100ms: no epoll_wait ended on its timeout (calls: %s); -timeout must still reach epoll_wait", s.callsText())
	}
}

// limitedBuffer keeps the first 64 KiB written to it (a stage's output, for
// a message).
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 64<<10 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }

func joinLines(lines []string) string {
	out := ""
	for _, line := range lines {
		out += line + "\n"
	}
	return out
}
