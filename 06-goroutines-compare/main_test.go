//go:build unix

// The tests particular to stage 06; the tests every stage passes are in
// scaffold_test.go (they run the default model, goroutines).

package main

import (
	"bytes"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestMain lets this test binary be a child of -model processes: the
// children run os.Executable, which in a test is the test binary itself, and
// must fetch their request, not run the tests.
func TestMain(m *testing.M) {
	if isChild() {
		os.Exit(runChild(os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

var allModels = []string{"goroutines", "threads", "processes"}

// useModel sets -model for one test and puts the default back after it.
func useModel(t *testing.T, name string) {
	t.Helper()
	saved := model
	if err := setModel(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { model = saved })
}

// TestAllRequestsInFlightTogether proves the concurrency from the server's
// side, in every model: every request was being handled at the same moment.
// gather=5 makes the server hold each request until all five have arrived,
// so the peak is exactly 5 for a client that has them all open at once,
// however slow the machine, and 1 for a client that sends them one by one.
func TestAllRequestsInFlightTogether(t *testing.T) {
	for _, name := range allModels {
		t.Run(name, func(t *testing.T) {
			useModel(t, name)
			srv := startServer(t)
			together := "/page?gather=5"
			rn := newTestRun(t, srv, 0, together, together, together, together, together)
			rn.fetch()
			sameResponses(t, srv, rn)
			st := srv.Stats(rn.tag)
			if st.Requests != 5 || st.PeakInFlight != 5 {
				t.Errorf("server saw %d requests with at most %d in flight; want 5, all at once", st.Requests, st.PeakInFlight)
			}
		})
	}
}

// TestConcurrentOnOneProcessor runs the goroutines with GOMAXPROCS=1: only
// one goroutine runs Go code at any instant, and still all five requests are
// in flight together. Concurrency is not parallelism (section 一 of the
// notes): waiting costs no processor.
func TestConcurrentOnOneProcessor(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	srv := startServer(t)
	together := "/page?gather=5"
	rn := newTestRun(t, srv, 0, together, together, together, together, together)
	rn.fetch()
	sameResponses(t, srv, rn)
	if st := srv.Stats(rn.tag); st.PeakInFlight != 5 {
		t.Errorf("with GOMAXPROCS=1 the server saw at most %d in flight; want 5", st.PeakInFlight)
	}
}

// TestEachModelMakesItsOwnCalls checks what each model counts: the
// goroutines make stage 01's calls through the net package and never see an
// EAGAIN (the runtime handles it underneath); the threads make stage 01's
// system calls themselves; and the processes model's parent makes no socket
// call at all, one fork/exec per request: its children do the rest.
func TestEachModelMakesItsOwnCalls(t *testing.T) {
	want := map[string]map[string]int{
		"goroutines": {"dial": 3, "close": 3},
		"threads":    {"socket": 3, "connect": 3, "close": 3},
		"processes":  {"fork/exec": 3},
	}
	for _, name := range allModels {
		t.Run(name, func(t *testing.T) {
			useModel(t, name)
			srv := startServer(t)
			rn := newTestRun(t, srv, 0, "", "", "")
			rn.fetch()
			sameResponses(t, srv, rn)
			got := map[string]int{}
			for key, count := range rn.calls {
				if key != "write" && key != "read" && key != "setsockopt" {
					got[key] = count
				}
			}
			if diff := cmp.Diff(want[name], got); diff != "" {
				t.Errorf("calls other than read, write and setsockopt (-want +got):\n%s", diff)
			}
			if blocking := rn.calls["connect"] + rn.calls["write"] + rn.calls["read"]; name == "threads" && rn.calls["setsockopt"] != blocking {
				t.Errorf("setsockopt %d, want one before each of the %d blocking calls (stage 01's timeouts)", rn.calls["setsockopt"], blocking)
			}
			if name != "processes" && (rn.calls["write"] != 3 || rn.calls["read"] < 6) {
				t.Errorf("write %d, read %d: want one write and at least two reads (data, then end of file) per request", rn.calls["write"], rn.calls["read"])
			}
		})
	}
}

// TestChildProcessesFetchWhole runs the processes model on responses that
// test the reading: dripped in pieces, 3 MB, slow headers. Every byte goes
// from the server to a child, through the child's standard output to this
// process, and must match what the server sent.
func TestChildProcessesFetchWhole(t *testing.T) {
	useModel(t, "processes")
	fetchHardResponses(t)
}

// TestFailuresAreClearInEveryModel gives the threads and processes models a
// refused connection and broken servers, next to good requests. Each failure
// stays with its own request and reads as it does in the other stages; a
// child process says it in its own words, which the parent passes on.
func TestFailuresAreClearInEveryModel(t *testing.T) {
	for _, name := range []string{"threads", "processes"} {
		t.Run(name, func(t *testing.T) {
			useModel(t, name)
			srv := startServer(t)
			rn := newTestRun(t, srv, 10*time.Millisecond, "", "", "/page?fault=reset", "/page?fault=garbage", "")
			withAddr(rn.requests[1], closedPort(t))
			rn.fetch()

			wantErr := map[int][]string{
				2: {"connect", "connection refused", "nothing is listening"},
				3: {"reset"},
				4: {"not HTTP"},
			}
			for _, r := range rn.requests {
				words, shouldFail := wantErr[r.id]
				if !shouldFail {
					if r.err != nil || r.status != 200 {
						t.Errorf("request %d: status %d, error %v; want 200 and no error", r.id, r.status, r.err)
					}
					continue
				}
				if r.err == nil {
					t.Errorf("request %d succeeded; want an error that says %q", r.id, words)
					continue
				}
				for _, word := range words {
					if !strings.Contains(r.err.Error(), word) {
						t.Errorf("request %d: error %q does not say %q", r.id, r.err, word)
					}
				}
			}
		})
	}
}

// TestNoModelLeavesAnythingOpen repeats the scaffold's check for the other
// two models: no descriptor (sockets, the pipes to the children) and no
// goroutine is left behind.
func TestNoModelLeavesAnythingOpen(t *testing.T) {
	for _, name := range []string{"threads", "processes"} {
		t.Run(name, func(t *testing.T) {
			useModel(t, name)
			srv := startServer(t)
			fdsBefore := openDescriptors(t)
			goroutinesBefore := runtime.NumGoroutine()
			rn := newTestRun(t, srv, 5*time.Millisecond, "", "/page?fault=reset", "/page?fault=close", "")
			withAddr(rn.requests[3], closedPort(t))
			rn.fetch()
			nothingLeftOpen(t, fdsBefore, goroutinesBefore) // the server closes its ends on its own time
		})
	}
}

// TestThreadLimitIsReportedClearly lowers the threads model's limit to 0:
// every request must fail with the message that names Go's thread limit,
// instead of the run crashing with "fatal error: thread exhaustion".
func TestThreadLimitIsReportedClearly(t *testing.T) {
	useModel(t, "threads")
	defer func(saved int32) { threadLimit = saved }(threadLimit)
	threadLimit = 0
	srv := startServer(t)
	rn := newTestRun(t, srv, 0, "", "")
	rn.fetch()
	for _, r := range rn.requests {
		if !errors.Is(r.err, errTooManyThreads) || !strings.Contains(r.err.Error(), "10000 threads") {
			t.Errorf("request %d: error %v; want the thread limit's", r.id, r.err)
		}
	}
	if st := srv.Stats(rn.tag); st.Requests != 0 {
		t.Errorf("the server saw %d requests; want none", st.Requests)
	}
}

func TestUnknownModelIsRefused(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := runStage([]string{"-model", "fibers"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "goroutines, threads or processes") {
		t.Errorf("exit code %d, stderr %q; want 2 and the list of models", code, errOut.String())
	}
}

// TestEveryModelCapsHugeResponses: the threads stop reading at -max-bytes as
// the goroutines do, and so does each child process, which is told the cap.
func TestEveryModelCapsHugeResponses(t *testing.T) {
	for _, name := range []string{"threads", "processes"} {
		t.Run(name, func(t *testing.T) {
			useModel(t, name)
			checkResponsesAreCapped(t)
		})
	}
}

// TestEveryModelKeepsTheDeadline: the threads keep -deadline with stage 01's
// socket timeouts, and so does each child process, which is told the time
// the run has left.
func TestEveryModelKeepsTheDeadline(t *testing.T) {
	for _, name := range []string{"threads", "processes"} {
		t.Run(name, func(t *testing.T) {
			useModel(t, name)
			checkDeadlineEndsTheRun(t)
		})
	}
}
