//go:build unix

// The tests particular to stage 03; the tests every stage passes are in
// scaffold_test.go.

package main

import (
	"encoding/json"
	"errors"
	"os/exec"
	"testing"
	"time"

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
// workload and compares how many system calls each made: select sleeps
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
	spinning, selecting := totalCalls(spin.Syscalls), totalCalls(rn.counts())
	if selecting*10 > spinning {
		t.Errorf("stage 02 made %d system calls, this stage %d: want at least ten times fewer", spinning, selecting)
	}
	t.Logf("5 requests of 50ms: stage 02 made %d system calls, stage 03 %d", spinning, selecting)
}

// TestPollingTimeoutCostsWakeUps shows the notes' 5ms timeout: select
// returns with nothing ready again and again while the server waits. Without
// a timeout, select never returns empty-handed.
func TestPollingTimeoutCostsWakeUps(t *testing.T) {
	defer func(saved time.Duration) { selectTimeout = saved }(selectTimeout)
	srv := startServer(t)
	for _, timeout := range []time.Duration{0, 5 * time.Millisecond} {
		selectTimeout = timeout
		rn := newTestRun(t, srv, 60*time.Millisecond, "", "")
		rn.fetch()
		sameResponses(t, srv, rn)
		empty := rn.counts()["select timeout"]
		if timeout == 0 && empty != 0 {
			t.Errorf("without a timeout, select returned empty %d times; want 0", empty)
		}
		if timeout > 0 && empty == 0 {
			t.Errorf("with a %v timeout and a 60ms server delay, select never returned empty", timeout)
		}
	}
}

// TestSelectLimitIsReportedClearly runs more requests than select can watch.
// The embedded server holds the other end of every connection in this same
// process, so descriptors reach FD_SETSIZE (1024) after some 500 to 750 requests:
// those started before complete, the rest fail with a message that names the
// limit, and nothing panics or leaks.
func TestSelectLimitIsReportedClearly(t *testing.T) {
	var limit unix.Rlimit // Go raises the soft limit to the hard one (ulimit -Hn) at start
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &limit) == nil && limit.Cur < unix.FD_SETSIZE+64 {
		t.Skipf("needs %d file descriptors, to reach FD_SETSIZE (%d) with some to spare; the limit here is %d (ulimit -n)", unix.FD_SETSIZE+64, unix.FD_SETSIZE, limit.Cur)
	}
	fdsBefore := openDescriptors(t)
	srv := startServer(t)
	paths := make([]string, 1100)
	rn := newTestRun(t, srv, 100*time.Millisecond, paths...)
	rn.fetch()

	ok, refused := 0, 0
	for _, r := range rn.requests {
		switch {
		case r.err == nil && r.parse.status == 200:
			ok++
		case errors.Is(r.err, errFDSetFull):
			refused++
		default:
			t.Errorf("request %d: status %d, error %v; want success or the FD_SETSIZE message", r.id, r.parse.status, r.err)
		}
	}
	if ok == 0 || refused == 0 || ok+refused != 1100 {
		t.Errorf("%d succeeded, %d refused for FD_SETSIZE; want both, 1100 in all", ok, refused)
	}
	if st := srv.Stats(rn.tag); st.Requests != ok {
		t.Errorf("the server saw %d requests, want the %d that were started", st.Requests, ok)
	}
	srv.Close()
	if fdsAfter := openDescriptors(t); len(fdsAfter) > len(fdsBefore) {
		t.Errorf("%d descriptors open after the run, %d before", len(fdsAfter), len(fdsBefore))
	}
}

// TestShortWritesContinueWhenWritable: an 8 MB request to a server that
// reads late fills the send buffer, write returns EAGAIN, and the rest goes
// out once the socket can take more (the notes' bug 7). The request arrives
// whole (checked inside sendLargeRequest).
func TestShortWritesContinueWhenWritable(t *testing.T) {
	rn := sendLargeRequest(t)
	t.Logf("write: %d calls, %d of them EAGAIN", rn.counts()["write"], rn.counts()["write EAGAIN"])
	if rn.counts()["write EAGAIN"] == 0 || rn.counts()["write"] < 2 {
		t.Errorf("write %d, write EAGAIN %d: the request should not fit in one write", rn.counts()["write"], rn.counts()["write EAGAIN"])
	}
}

// TestExceptfdsIsUrgentDataNotErrors: select's third set is for exceptional
// conditions, which for TCP means urgent (out-of-band) data. It is not an
// error set, whatever the notes say of it (section 三: "检测是否有错误"). A
// refused connect comes back readable and writable, never exceptional; one
// byte sent with MSG_OOB puts the receiving socket in the third set.
func TestExceptfdsIsUrgentDataNotErrors(t *testing.T) {
	// selectAll waits, up to 2 s, on fd in all three sets, retrying EINTR.
	selectAll := func(fd int) (readable, writable, exceptional bool) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for {
			r, w, e := &unix.FdSet{}, &unix.FdSet{}, &unix.FdSet{}
			r.Set(fd)
			w.Set(fd)
			e.Set(fd)
			tv := unix.NsecToTimeval(time.Until(deadline).Nanoseconds())
			n, err := unix.Select(fd+1, r, w, e, &tv)
			if err == unix.EINTR && time.Now().Before(deadline) {
				continue
			}
			if err != nil {
				t.Fatalf("select: %v", err)
			}
			if n == 0 {
				t.Fatalf("select: descriptor %d not ready in 2 s", fd)
			}
			return r.IsSet(fd), w.IsSet(fd), e.IsSet(fd)
		}
	}
	socket := func() int {
		t.Helper()
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		return fd
	}
	loopback := [4]byte{127, 0, 0, 1}

	t.Run("refused connect", func(t *testing.T) {
		fd := socket()
		if err := unix.SetNonblock(fd, true); err != nil {
			t.Fatal(err)
		}
		err := unix.Connect(fd, &unix.SockaddrInet4{Port: closedPort(t).Port, Addr: loopback})
		if err != unix.EINPROGRESS {
			t.Fatalf("nonblocking connect to a closed port returned %v, want EINPROGRESS", err)
		}
		readable, writable, exceptional := selectAll(fd)
		t.Logf("refused connect: readable %v, writable %v, exceptional %v", readable, writable, exceptional)
		if !writable || !readable || exceptional {
			t.Errorf("a refused connect should be readable and writable and not exceptional")
		}
		if soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || unix.Errno(soerr) != unix.ECONNREFUSED {
			t.Errorf("SO_ERROR = %d (%v), want ECONNREFUSED: the error is there, not in the third set", soerr, err)
		}
	})

	t.Run("urgent data", func(t *testing.T) {
		ln := socket()
		if err := unix.Bind(ln, &unix.SockaddrInet4{Addr: loopback}); err != nil {
			t.Fatal(err)
		}
		if err := unix.Listen(ln, 1); err != nil {
			t.Fatal(err)
		}
		sa, err := unix.Getsockname(ln)
		if err != nil {
			t.Fatal(err)
		}
		client := socket()
		if err := unix.Connect(client, sa); err != nil { // blocking: loopback, a listener waiting
			t.Fatal(err)
		}
		server, _, err := unix.Accept(ln)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(server) })

		if _, _, exceptional := selectAll(server); exceptional { // writable at once: nothing to wait for
			t.Fatal("exceptional before any urgent data was sent")
		}
		if err := unix.Sendto(client, []byte{'!'}, unix.MSG_OOB, nil); err != nil {
			t.Fatal(err)
		}
		e := &unix.FdSet{}
		e.Set(server)
		tv := unix.NsecToTimeval((2 * time.Second).Nanoseconds())
		n, err := unix.Select(server+1, nil, nil, e, &tv)
		for err == unix.EINTR {
			e.Set(server)
			n, err = unix.Select(server+1, nil, nil, e, &tv)
		}
		t.Logf("urgent byte sent: select on the except set alone returned %d, exceptional %v", n, e.IsSet(server))
		if err != nil || n != 1 || !e.IsSet(server) {
			t.Errorf("select = %d, %v: the receiver of a MSG_OOB byte should be in the except set", n, err)
		}
	})
}
