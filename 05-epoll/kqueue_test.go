//go:build darwin || freebsd

// The tests of what stage 05 asks of kqueue (kqueue.go), on macOS and
// FreeBSD. They are built by make cross, and run only there.

package main

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func TestEachSocketIsAddedOnceAndSwitchedOnlyLevelTriggered(t *testing.T) {
	defer func(saved bool) { edgeTriggered = saved }(edgeTriggered)
	for _, mode := range []struct {
		name       string
		edge       bool
		wantSwitch int
	}{
		{"level-triggered", false, 5}, // from EVFILT_WRITE to EVFILT_READ, once per socket
		{"edge-triggered", true, 0},   // both filters from the start
	} {
		edgeTriggered = mode.edge
		srv := startServer(t)
		rn := newTestRun(t, srv, 50*time.Millisecond, "", "", "", "", "")
		rn.fetch()
		sameResponses(t, srv, rn)
		got := map[string]int{}
		for _, call := range []string{"kqueue", "kevent EV_ADD", "kevent EV_DELETE+EV_ADD", "kevent EV_DELETE"} {
			got[call] = rn.counts()[call]
		}
		// close takes the sockets out of the kqueue (no EV_DELETE at the end).
		want := map[string]int{"kqueue": 1, "kevent EV_ADD": 5, "kevent EV_DELETE+EV_ADD": mode.wantSwitch, "kevent EV_DELETE": 0}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: kqueue calls (-want +got):\n%s", mode.name, diff)
		}
		// Each socket becomes ready a few times (connected, data, end of file):
		// the waits are counted in events, not in milliseconds of waiting.
		if waits := rn.counts()["kevent"]; waits > 4*5+2 {
			t.Errorf("%s: %d kevent waits for 5 requests: a socket is reported ready with nothing to do", mode.name, waits)
		}
	}
}

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
