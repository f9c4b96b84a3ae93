//go:build unix

// The tests particular to stage 06; the tests every stage passes are in
// scaffold_test.go (they run the default model, goroutines).

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"blocking-to-epoll/internal/testserver"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// TestMain lets this test binary be a child of -model processes: the
// children run os.Executable, which in a test is the test binary itself, and
// must fetch their request, not run the tests.
//
// A child started with hangEnv set never does its request: it sleeps until
// it is killed, as a child that is stuck would. And started with serveEnv,
// the test binary is the test server, in a process of its own (see
// startServerApart).
func TestMain(m *testing.M) {
	switch {
	case os.Getenv(serveEnv) != "":
		os.Exit(serveUntilStdinCloses())
	case isChild() && os.Getenv(hangEnv) != "":
		time.Sleep(time.Hour)
	case isChild():
		os.Exit(runChild(os.Stdin, os.Stdout, os.Stderr))
	}
	// A program built with -race sleeps a second as it exits, to catch
	// races in its last moments (GORACE's atexit_sleep_ms, 1000 by default).
	// The children are this test binary: each would end a second after its
	// request, and be killed at -deadline instead.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	os.Exit(m.Run())
}

// hangEnv makes the children of a test hang (see TestMain).
const hangEnv = "STAGE06_TEST_CHILD_HANGS"

// serveEnv makes the test binary the test server (see TestMain).
const serveEnv = "STAGE06_TEST_SERVE"

// serveUntilStdinCloses runs the test server, prints its address, and
// serves until standard input closes: when the test that started this
// process closes its end, or ends.
func serveUntilStdinCloses() int {
	srv, err := testserver.Start("127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(srv.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	srv.Close()
	return 0
}

// startServerApart starts the test server in a process of its own, so
// that its ends of the connections are not descriptors of this process, and
// returns its address. It stops when the test ends.
func startServerApart(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), serveEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal("the test server process said no address:", err)
	}
	return strings.TrimSpace(addr)
}

// allModels are the models every test of this file runs: epoll-goroutines
// where there is epoll (epoll_test.go adds it on Linux).
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
		// The poller's own calls come once per run: epoll_create1, an eventfd
		// (watched too, so one epoll_ctl ADD more than the requests), a write to
		// it to stop, and two closes. Its epoll_wait calls and the reads that
		// met EAGAIN depend on timing, and are left out.
		"epoll-goroutines": {"epoll_create1": 1, "eventfd2": 1, "epoll_ctl ADD": 4, "socket": 3, "connect EINPROGRESS": 3,
			"getsockopt": 3, "epoll_ctl DEL": 3, "close": 5},
		"threads":   {"socket": 3, "connect": 3, "close": 3},
		"processes": {"fork/exec": 3},
		// One ring for the run: its setup, three mappings and their unmapping,
		// the TIMEOUT and its removal; then each request's socket, its three
		// operations submitted and completed, and its close, and the ring's.
		// How often io_uring_enter is called depends on timing: left out.
		"io_uring": {"io_uring_setup": 1, "mmap": 3, "sqe TIMEOUT": 1, "socket": 3, "sqe CONNECT": 3, "cqe CONNECT": 3,
			"sqe SEND": 3, "cqe SEND": 3, "sqe RECV": 3, "cqe RECV": 3, "sqe TIMEOUT_REMOVE": 1, "munmap": 3, "close": 4},
	}
	for _, name := range allModels {
		t.Run(name, func(t *testing.T) {
			useModel(t, name)
			srv := startServer(t)
			rn := newTestRun(t, srv, 0, "", "", "")
			rn.fetch()
			sameResponses(t, srv, rn)
			got := map[string]int{}
			for key, count := range rn.counts() {
				if key != "write" && key != "read" && key != "setsockopt" && !strings.HasPrefix(key, "epoll_wait") && key != "read EAGAIN" && !strings.HasPrefix(key, "io_uring_enter") &&
					!strings.HasSuffix(key, " EINTR") { // a signal may interrupt a call: it is made again
					got[key] = count
				}
			}
			if diff := cmp.Diff(want[name], got); diff != "" {
				t.Errorf("calls other than read, write and setsockopt (-want +got):\n%s", diff)
			}
			if blocking := blockingCalls(rn); name == "threads" && rn.counts()["setsockopt"] != blocking {
				t.Errorf("setsockopt %d, want one before each of the %d blocking calls (stage 01's timeouts)", rn.counts()["setsockopt"], blocking)
			}
			writes := 3
			if name == "epoll-goroutines" {
				writes++ // and the one that wakes the poller to stop
			}
			if name != "processes" && name != "io_uring" && (rn.counts()["write"] != writes || rn.counts()["read"] < 3) {
				t.Errorf("write %d, read %d: want one write and at least one read per request", rn.counts()["write"], rn.counts()["read"])
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
					if r.err != nil || r.parse.status != 200 {
						t.Errorf("request %d: status %d, error %v; want 200 and no error", r.id, r.parse.status, r.err)
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
	if code := program([]string{"-model", "fibers"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "goroutines, epoll-goroutines, threads, processes or io_uring") {
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

// TestEveryModelReadsServersNotWrittenHere runs the scaffold's check of the
// answers ordinary servers give (kept-alive connections, chunked bodies,
// bare LF, a reset after the response, a banner, an endless header, a body
// longer than its Content-Length) in every model: each stops reading where
// the response's framing says it ends, a child process too.
// TestEveryModelSurvivesSignals: signals every millisecond cost no request
// in any model (checkSignalsCostNoRequest, scaffold_test.go).
func TestEveryModelSurvivesSignals(t *testing.T) {
	for _, name := range allModels {
		t.Run(name, func(t *testing.T) {
			useModel(t, name)
			checkSignalsCostNoRequest(t)
		})
	}
}

func TestEveryModelReadsServersNotWrittenHere(t *testing.T) {
	for _, name := range allModels {
		t.Run(name, func(t *testing.T) {
			useModel(t, name)
			checkServersNotWrittenHere(t)
		})
	}
}

// TestEveryModelEndsAtTheDeadline points hundreds of requests (fifty
// processes), more than a slow machine can start in time, at a server that
// accepts connections and never reads or answers, with -deadline 300ms. Every request must fail as timed out, or as
// not started if its turn came after the deadline; the run must end soon
// after the deadline (a thread per request or a process per request
// included), and nothing may be left open.
func TestEveryModelEndsAtTheDeadline(t *testing.T) {
	requests := map[string]int{"goroutines": 300, "epoll-goroutines": 300, "io_uring": 300, "threads": 200, "processes": 50}
	const deadline, margin = 300 * time.Millisecond, 2 * time.Second
	for _, name := range allModels {
		t.Run(name, func(t *testing.T) {
			useModel(t, name)
			fdsBefore, goroutinesBefore := openDescriptors(t), runtime.NumGoroutine()
			deaf, err := testserver.Deaf("tcp4")
			if err != nil {
				t.Fatal(err)
			}
			rn, err := prepare(&config{stage: stage, n: requests[name], addr: deaf.Addr().String(), deadline: deadline}, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			began := time.Now()
			rn.fetch()
			took := time.Since(began)
			deaf.Close()

			if took > deadline+margin {
				t.Errorf("the run took %v with -deadline %v; want it over within %v", took, deadline, deadline+margin)
			}
			want := map[string]int{"timed out or not started": len(rn.requests)}
			if diff := cmp.Diff(want, endings(rn)); diff != "" {
				t.Errorf("how the requests ended (-want +got):\n%s", diff)
			}
			nothingLeftOpen(t, fdsBefore, goroutinesBefore)
		})
	}
}

// endings counts how a run's requests ended: "timed out or not started", as
// -deadline ends them, or else the error itself.
func endings(rn *run) map[string]int {
	got := map[string]int{}
	for _, r := range rn.requests {
		switch {
		case r.err == nil:
			got["succeeded"]++
		case errors.Is(r.err, errTimedOut), r.err.Error() == r.notStarted().Error():
			got["timed out or not started"]++
		default:
			got[r.err.Error()]++
		}
	}
	return got
}

// errorTexts counts the errors of a run's requests by their text.
func errorTexts(rn *run) map[string]int {
	got := map[string]int{}
	for _, r := range rn.requests {
		if r.err != nil {
			got[r.err.Error()]++
		}
	}
	return got
}

// TestNothingStartsAfterTheDeadline runs every model with a deadline that
// has passed before the first request's turn: no request starts (no
// socket, no thread, no process), each says so, and the server sees none.
func TestNothingStartsAfterTheDeadline(t *testing.T) {
	for _, name := range allModels {
		t.Run(name, func(t *testing.T) {
			useModel(t, name)
			srv := startServer(t)
			rn := newTestRun(t, srv, 0, "", "", "")
			rn.cfg.deadline = time.Nanosecond
			rn.fetch()
			want := map[string]int{"not started: the run's -deadline of 1ns passed": 3}
			if diff := cmp.Diff(want, errorTexts(rn)); diff != "" {
				t.Errorf("how the requests ended (-want +got):\n%s", diff)
			}
			calls := rn.counts()
			if name == "epoll-goroutines" || name == "io_uring" { // its loop runs for the run all the same: only its own calls
				for _, loops := range []string{"epoll_create1", "eventfd2", "epoll_ctl ADD", "epoll_wait", "epoll_wait EINTR", "write", "close",
					"io_uring_setup", "mmap", "munmap", "sqe TIMEOUT", "sqe TIMEOUT_REMOVE", "io_uring_enter", "io_uring_enter EINTR"} {
					delete(calls, loops)
				}
			}
			if diff := cmp.Diff(map[string]int{}, calls); diff != "" {
				t.Errorf("calls made (-want +got):\n%s", diff)
			}
			if st := srv.Stats(rn.tag); st.Requests != 0 {
				t.Errorf("the server saw %d requests; want none", st.Requests)
			}
		})
	}
}

// TestLateChildDoesNotStart: a child process that is ready only after
// -deadline (starting a program takes time) does not start its request, and
// says so; the parent then reports it as not started.
func TestLateChildDoesNotStart(t *testing.T) {
	t.Setenv(childEnv, "127.0.0.1:1")
	t.Setenv(childDeadlineEnv, "1s")
	t.Setenv(childDeadlineAtEnv, time.Now().Add(-time.Second).Format(time.RFC3339Nano))
	var out, errOut bytes.Buffer
	code := runChild(strings.NewReader("GET / HTTP/1.0\r\n\r\n"), &out, &errOut)
	got := []any{code, out.String(), errOut.String()}
	want := []any{childNotStarted, "", "not started: the run's -deadline of 1s passed\n"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("exit code, standard output and standard error (-want +got):\n%s", diff)
	}
}

// TestStuckChildIsKilled: a child that never ends (hangEnv) is killed soon
// after -deadline, and its request fails as timed out, saying that the
// process was killed; the run ends, and nothing is left open.
func TestStuckChildIsKilled(t *testing.T) {
	useModel(t, "processes")
	t.Setenv(hangEnv, "1")
	srv := startServer(t)
	fdsBefore, goroutinesBefore := openDescriptors(t), runtime.NumGoroutine()
	rn := newTestRun(t, srv, 0, "", "")
	rn.cfg.deadline = 300 * time.Millisecond
	began := time.Now()
	rn.fetch()
	if took := time.Since(began); took > rn.cfg.deadline+2*time.Second {
		t.Errorf("the run took %v with -deadline %v", took, rn.cfg.deadline)
	}
	for _, r := range rn.requests {
		if !errors.Is(r.err, errTimedOut) || !strings.Contains(r.err.Error(), "which was then killed") {
			t.Errorf("request %d: error %v; want a timeout that says the process was killed", r.id, r.err)
		}
	}
	nothingLeftOpen(t, fdsBefore, goroutinesBefore)
}

// TestEveryModelSaysWhichDescriptorLimit lowers RLIMIT_NOFILE to a few
// descriptors more than are open, and runs more requests at once than fit:
// some complete, and every one that fails says it ran out of descriptors
// and names the limit. For the processes model that includes the rare start
// that fails with EBADF instead of EMFILE (see startError). The server runs
// in a process of its own, under its own limit: in this one, its ends of
// the connections would use up the descriptors that its answers wait for.
func TestEveryModelSaysWhichDescriptorLimit(t *testing.T) {
	for _, name := range allModels {
		t.Run(name, func(t *testing.T) {
			useModel(t, name)
			addr := startServerApart(t)
			rn, err := prepare(&config{stage: stage, n: 30, delay: 200 * time.Millisecond, addr: addr, deadline: 10 * time.Second}, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			withDescriptorLimit(t, len(openDescriptors(t))+16, rn.fetch)
			failed := 0
			for _, r := range rn.requests {
				switch {
				case r.err == nil && r.parse.status != 200:
					t.Errorf("request %d: status %d", r.id, r.parse.status)
				case r.err == nil:
				case !strings.Contains(r.err.Error(), "too many open files") || !strings.Contains(r.err.Error(), "RLIMIT_NOFILE"):
					t.Errorf("request %d: error %v; want one that says too many open files and names RLIMIT_NOFILE", r.id, r.err)
				default:
					failed++
				}
			}
			t.Logf("%d of %d requests ran out of descriptors", failed, len(rn.requests))
			if failed == 0 || failed == len(rn.requests) {
				t.Errorf("%d of %d requests ran out of descriptors; want some, not all", failed, len(rn.requests))
			}
		})
	}
}

// withDescriptorLimit runs f with the soft RLIMIT_NOFILE lowered to limit,
// and puts it back after.
func withDescriptorLimit(t *testing.T, limit int, f func()) {
	t.Helper()
	var saved unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &saved); err != nil {
		t.Skip("getrlimit:", err)
	}
	lowered := saved
	setLimit(&lowered.Cur, limit)
	if lowered.Cur >= saved.Cur {
		t.Skipf("RLIMIT_NOFILE is %d already, not above %d", saved.Cur, limit)
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lowered); err != nil {
		t.Skip("cannot lower RLIMIT_NOFILE here:", err)
	}
	defer func() {
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &saved); err != nil {
			t.Fatal("cannot put RLIMIT_NOFILE back:", err)
		}
	}()
	f()
}

// setLimit sets a field of unix.Rlimit, which is a uint64 on Linux and
// macOS and an int64 on FreeBSD.
func setLimit[T ~int64 | ~uint64](field *T, n int) { *field = T(n) }

// TestBadDescriptorAtStartIsOutOfDescriptors: the EBADF that a child's
// start can fail with when the process is at its descriptor limit reads as
// what it is, too many open files, with the scaffold's hint.
func TestBadDescriptorAtStartIsOutOfDescriptors(t *testing.T) {
	err := startError(&os.PathError{Op: "fork/exec", Path: "/bin/stage", Err: unix.EBADF})
	if !errors.Is(err, unix.EMFILE) || !strings.Contains(err.Error(), "too many open files") || !strings.Contains(hint(err), "RLIMIT_NOFILE") {
		t.Errorf("error %v, hint %q; want too many open files, with the hint that names RLIMIT_NOFILE", err, hint(err))
	}
}

// blockingCalls counts the calls that sleep in the threads model: connect,
// write and read, each whatever it returned (a call a signal interrupted is
// made again, after a setsockopt of its own).
func blockingCalls(rn *run) int {
	total := 0
	for key, n := range rn.counts() {
		if name := strings.Fields(key)[0]; name == "connect" || name == "write" || name == "read" {
			total += n
		}
	}
	return total
}
