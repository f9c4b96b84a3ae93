//go:build darwin || freebsd

// The tests particular to stage 05 on macOS and FreeBSD, where it runs on
// kqueue (main_kqueue.go): main_test.go's, with kqueue's calls where epoll's
// were. The tests every stage passes are in scaffold_test.go.

package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
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

// totalCalls adds up every system call of a run, whatever its result.
func totalCalls(calls map[string]int) int {
	total := 0
	for _, count := range calls {
		total += count
	}
	return total
}

// TestFarFewerCallsThanSpinning runs stage 02 and this stage on the same
// workload and compares how many system calls each made: kevent sleeps
// instead of asking again and again.
func TestFarFewerCallsThanSpinning(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs stage 02")
	}
	out, err := exec.Command("go", "run", "../02-nonblocking-spin", "-n", "5", "-delay", "50ms", "-json").Output()
	if err != nil {
		t.Fatalf("running stage 02: %v", err)
	}
	var spin summary
	if err := json.Unmarshal(out, &spin); err != nil {
		t.Fatal(err)
	}

	srv := startServer(t)
	rn := newTestRun(t, srv, 50*time.Millisecond, "", "", "", "", "")
	rn.fetch()
	sameResponses(t, srv, rn)
	spinning, waiting := totalCalls(spin.Syscalls), totalCalls(rn.calls)
	if waiting*10 > spinning {
		t.Errorf("stage 02 made %d system calls, this stage %d: want at least ten times fewer", spinning, waiting)
	}
	t.Logf("5 requests of 50ms: stage 02 made %d system calls, this stage %d", spinning, waiting)
}

// TestNoSelectLimit runs the 1,100 requests that stop stages 03 and 04 at
// FD_SETSIZE. With the embedded server in the same process that is 2,200
// descriptors, far past 1024: every request completes, all in flight at once
// (gather=1100 holds each until all have arrived). The listen backlogs of
// macOS and FreeBSD are small (128 by default), so some connects may wait
// for a SYN to be sent again; gather waits up to 10 s for them. (Whether
// every descriptor is closed afterwards is TestNothingIsLeftOpen's job, where
// there is a /proc/self/fd to count them.)
func TestNoSelectLimit(t *testing.T) {
	srv := startServer(t)
	paths := make([]string, 1100)
	for i := range paths {
		paths[i] = "/page?gather=1100"
	}
	rn := newTestRun(t, srv, 0, paths...)
	rn.fetch()
	sameResponses(t, srv, rn)
	if st := srv.Stats(rn.tag); st.PeakInFlight != 1100 {
		t.Errorf("server peak in flight %d, want 1100", st.PeakInFlight)
	}
}

// TestEachSocketIsAddedSwitchedAndDeletedOnce checks the kevent calls that
// change the watched set: EV_ADD of EVFILT_WRITE when a request starts, one
// switch to EVFILT_READ once its request is sent (a delete and an add in one
// call, counted as "kevent EV_ADD" too), and EV_DELETE before close: two
// EV_ADD calls and one EV_DELETE per request. Without the switch, a
// level-triggered kqueue would report the socket writable at every wait while
// the server thinks: the count of waits stays small instead.
func TestEachSocketIsAddedSwitchedAndDeletedOnce(t *testing.T) {
	srv := startServer(t)
	rn := newTestRun(t, srv, 50*time.Millisecond, "", "", "", "", "")
	rn.fetch()
	sameResponses(t, srv, rn)
	got := map[string]int{}
	for _, call := range []string{"kqueue", "kevent EV_ADD", "kevent EV_DELETE"} {
		got[call] = rn.calls[call]
	}
	want := map[string]int{"kqueue": 1, "kevent EV_ADD": 2 * 5, "kevent EV_DELETE": 5}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("kqueue calls (-want +got):\n%s", diff)
	}
	// Each socket becomes ready a few times (connected, data, end of file):
	// the waits are counted in events, not in milliseconds of waiting.
	if waits := rn.calls["kevent"]; waits > 4*5+2 {
		t.Errorf("%d kevent waits for 5 requests: a socket is reported ready with nothing to do", waits)
	}
}

// TestEdgeTriggeredDeliversEverything runs the hard cases with EV_CLEAR: a
// response dripped in pieces, a large body, slow headers, and a refused
// connection among good ones. Edge-triggered kqueue reports each change once,
// so this passes only because every ready socket is drained until EAGAIN
// (or end of file).
func TestEdgeTriggeredDeliversEverything(t *testing.T) {
	defer func(saved bool) { edgeTriggered = saved }(edgeTriggered)
	edgeTriggered = true
	srv := startServer(t)
	rn := newTestRun(t, srv, 10*time.Millisecond,
		"/page?fault=drip&size=20000&chunk=700&pause=2ms",
		"/page?fault=large&size=3000000",
		"/page?fault=slowheader&pause=5ms",
		"", "")
	rn.fetch()
	sameResponses(t, srv, rn)

	rn = newTestRun(t, srv, 0, "", "", "")
	withAddr(rn.requests[1], closedPort(t))
	rn.fetch()
	if err := rn.requests[1].err; err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("refused connection with EV_CLEAR: error %v", err)
	}
	if rn.requests[0].err != nil || rn.requests[2].err != nil {
		t.Errorf("requests next to the refused one failed: %v, %v", rn.requests[0].err, rn.requests[2].err)
	}
}

// TestWaitTimeoutCostsWakeUps: with -timeout, kevent returns empty while
// the server waits; without, never.
func TestWaitTimeoutCostsWakeUps(t *testing.T) {
	defer func(saved time.Duration) { waitTimeout = saved }(waitTimeout)
	srv := startServer(t)
	for _, timeout := range []time.Duration{0, 5 * time.Millisecond} {
		waitTimeout = timeout
		rn := newTestRun(t, srv, 60*time.Millisecond, "", "")
		rn.fetch()
		sameResponses(t, srv, rn)
		empty := rn.calls["kevent timeout"]
		if (timeout == 0) != (empty == 0) {
			t.Errorf("timeout %v: kevent returned empty %d times", timeout, empty)
		}
	}
}

// TestEachCallbackIsCalledExactlyOnce drives the event loop directly, with
// requests that succeed and requests that fail in every way, and counts the
// callbacks: each request's own callback, once, with its own result. Bytes
// that cannot start an HTTP response fail at once (received says so after
// the first read), so garbage comes to its callback as an error.
func TestEachCallbackIsCalledExactlyOnce(t *testing.T) {
	srv := startServer(t)
	rn := newTestRun(t, srv, 10*time.Millisecond, "", "/page?fault=reset", "", "/page?fault=garbage", "", "/page?fault=drip&size=2000&chunk=100&pause=2ms")
	withAddr(rn.requests[2], closedPort(t))

	calls := map[int]int{}
	outcomes := map[int]string{}
	loop, err := newEventLoop(rn)
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	for _, r := range rn.requests {
		loop.Add(r, func(response []byte, err error) {
			calls[r.id]++
			switch {
			case err != nil:
				outcomes[r.id] = "error"
			case strings.HasPrefix(string(response), "HTTP/1.0 200 OK"):
				outcomes[r.id] = "200"
			default:
				outcomes[r.id] = "other bytes"
			}
		})
	}
	loop.Run()

	wantCalls := map[int]int{1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1}
	if diff := cmp.Diff(wantCalls, calls); diff != "" {
		t.Errorf("callbacks per request (-want +got):\n%s", diff)
	}
	wantOutcomes := map[int]string{1: "200", 2: "error", 3: "error", 4: "error", 5: "200", 6: "200"}
	if diff := cmp.Diff(wantOutcomes, outcomes); diff != "" {
		t.Errorf("what each callback got (-want +got):\n%s", diff)
	}
}

// TestEdgeTriggeredWithoutDrainingLosesTheRest shows, on a bare socket pair,
// why edge-triggered mode must read until EAGAIN. 4,096 bytes arrive at once
// and the reader takes only 1,024 of them. A level-triggered EVFILT_READ
// reports the socket again at the next wait, because bytes are still there;
// with EV_CLEAR it does not, because nothing new has arrived: the rest would
// wait forever. (Fewer bytes than on Linux: a socket pair's buffer is 8 KB by
// default on macOS and FreeBSD. The writer is nonblocking all the same, so
// that a smaller buffer would fail the test instead of hanging it.)
func TestEdgeTriggeredWithoutDrainingLosesTheRest(t *testing.T) {
	for _, mode := range []struct {
		name      string
		flags     int
		wantAgain int
	}{
		{"level-triggered", unix.EV_ADD, 1},
		{"edge-triggered", unix.EV_ADD | unix.EV_CLEAR, 0},
	} {
		pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		kq, err := unix.Kqueue()
		if err != nil {
			t.Fatal(err)
		}
		reader, writer := pair[0], pair[1]
		if err := unix.SetNonblock(writer, true); err != nil {
			t.Fatal(err)
		}
		var change [1]unix.Kevent_t
		unix.SetKevent(&change[0], reader, unix.EVFILT_READ, mode.flags)
		if _, err := unix.Kevent(kq, change[:], nil, nil); err != nil {
			t.Fatal(err)
		}
		if n, err := unix.Write(writer, make([]byte, 4096)); err != nil || n != 4096 {
			t.Fatalf("write to the socket pair: %d bytes, %v; want 4096", n, err)
		}
		events := make([]unix.Kevent_t, 1)
		first := keventIgnoringEINTR(t, kq, events, time.Second)
		// An EVFILT_READ event also says how many bytes are waiting, in Data.
		waiting := events[0].Data
		n, _ := unix.Read(reader, make([]byte, 1024)) // one read, not drained
		// No byte is sent in between: whatever the second wait reports is
		// about the 3,072 bytes still waiting. 100ms is plenty for an event
		// that is already due; edge-triggered mode will never report one.
		again := keventIgnoringEINTR(t, kq, events, 100*time.Millisecond)
		left := drain(t, reader)
		t.Logf("%s: first wait %d ready (%d bytes), read %d bytes, next wait %d ready, %d bytes were still waiting", mode.name, first, waiting, n, again, left)
		if first != 1 || left == 0 || again != mode.wantAgain {
			t.Errorf("%s: first wait %d, %d bytes left, second wait %d; want 1, >0, %d", mode.name, first, left, again, mode.wantAgain)
		}
		unix.Close(kq)
		unix.Close(reader)
		unix.Close(writer)
	}
}

func keventIgnoringEINTR(t *testing.T, kq int, events []unix.Kevent_t, timeout time.Duration) int {
	t.Helper()
	timespec := unix.NsecToTimespec(timeout.Nanoseconds())
	for {
		n, err := unix.Kevent(kq, nil, events, &timespec)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
}

// drain reads what is left in the socket, without waiting, and says how much
// it was: the bytes a wait did or did not report.
func drain(t *testing.T, fd int) int {
	t.Helper()
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	total, buf := 0, make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return total
		case err != nil:
			t.Fatal(err)
		case n == 0:
			return total
		}
		total += n
	}
}

// TestShortWritesContinueWhenWritable: an 8 MB request to a server that
// reads late fills the send buffer, write returns EAGAIN, and the rest goes
// out once EVFILT_WRITE reports the socket writable again (the notes' bug 7).
// The request arrives whole (checked inside sendLargeRequest).
func TestShortWritesContinueWhenWritable(t *testing.T) {
	rn := sendLargeRequest(t)
	t.Logf("write: %d calls, %d of them EAGAIN", rn.calls["write"], rn.calls["write EAGAIN"])
	if rn.calls["write EAGAIN"] == 0 || rn.calls["write"] < 2 {
		t.Errorf("write %d, write EAGAIN %d: the request should not fit in one write", rn.calls["write"], rn.calls["write EAGAIN"])
	}
}
