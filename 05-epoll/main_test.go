//go:build linux || darwin || freebsd

// The tests particular to stage 05, on every system it runs on: epoll on
// Linux, kqueue on macOS and FreeBSD. What only one of them does is tested
// in epoll_test.go and kqueue_test.go; the tests every stage passes are in
// scaffold_test.go.

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
	spinning, selecting := totalCalls(spin.Syscalls), totalCalls(rn.counts())
	if selecting*10 > spinning {
		t.Errorf("stage 02 made %d system calls, this stage %d: want at least ten times fewer", spinning, selecting)
	}
	t.Logf("5 requests of 50ms: stage 02 made %d system calls, stage 03 %d", spinning, selecting)
}

func totalCalls(calls map[string]int) int {
	total := 0
	for _, count := range calls {
		total += count
	}
	return total
}

func TestNoSelectLimit(t *testing.T) {
	var limit unix.Rlimit // Go raises the soft limit to the hard one (ulimit -Hn) at start
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &limit) == nil && limit.Cur < 2*1100+20 {
		t.Skipf("needs %d file descriptors (2 per request with the server in this process, plus 20); the limit here is %d (ulimit -n)", 2*1100+20, limit.Cur)
	}
	fdsBefore := openDescriptors(t)
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
	srv.Close()
	if fdsAfter := openDescriptors(t); len(fdsAfter) > len(fdsBefore) {
		t.Errorf("%d descriptors open after the run, %d before", len(fdsAfter), len(fdsBefore))
	}
}

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
		t.Errorf("refused connection with -edge: error %v", err)
	}
	if rn.requests[0].err != nil || rn.requests[2].err != nil {
		t.Errorf("requests next to the refused one failed: %v, %v", rn.requests[0].err, rn.requests[2].err)
	}
}

func TestWaitTimeoutCostsWakeUps(t *testing.T) {
	defer func(saved time.Duration) { waitTimeout = saved }(waitTimeout)
	srv := startServer(t)
	for _, timeout := range []time.Duration{0, 5 * time.Millisecond} {
		waitTimeout = timeout
		rn := newTestRun(t, srv, 60*time.Millisecond, "", "")
		rn.fetch()
		sameResponses(t, srv, rn)
		empty := rn.counts()[waitCall+" timeout"]
		if (timeout == 0) != (empty == 0) {
			t.Errorf("timeout %v: %s returned empty %d times", timeout, waitCall, empty)
		}
	}
}

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

func TestShortWritesContinueWhenWritable(t *testing.T) {
	rn := sendLargeRequest(t)
	t.Logf("write: %d calls, %d of them EAGAIN", rn.counts()["write"], rn.counts()["write EAGAIN"])
	if rn.counts()["write EAGAIN"] == 0 || rn.counts()["write"] < 2 {
		t.Errorf("write %d, write EAGAIN %d: the request should not fit in one write", rn.counts()["write"], rn.counts()["write EAGAIN"])
	}
}
