//go:build linux

// The tests of what stage 05 asks of epoll (epoll.go), on Linux.

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
		name    string
		edge    bool
		wantMOD int
	}{
		{"level-triggered", false, 5}, // from EPOLLOUT to EPOLLIN, once per socket
		{"edge-triggered", true, 0},   // EPOLLIN|EPOLLOUT from the start
	} {
		edgeTriggered = mode.edge
		srv := startServer(t)
		rn := newTestRun(t, srv, 50*time.Millisecond, "", "", "", "", "")
		rn.fetch()
		sameResponses(t, srv, rn)
		got := map[string]int{}
		for _, call := range []string{"epoll_create1", "socket", "fcntl", "epoll_ctl ADD", "epoll_ctl MOD", "epoll_ctl DEL"} {
			got[call] = rn.counts()[call]
		}
		// socket(2) makes them nonblocking (no fcntl), and close takes them
		// out of the set (no DEL).
		want := map[string]int{"epoll_create1": 1, "socket": 5, "fcntl": 0, "epoll_ctl ADD": 5, "epoll_ctl MOD": mode.wantMOD, "epoll_ctl DEL": 0}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: epoll calls (-want +got):\n%s", mode.name, diff)
		}
		// Each socket becomes ready a few times (connected, data, end of file):
		// the waits are counted in events, not in milliseconds of waiting.
		if waits := rn.counts()["epoll_wait"]; waits > 4*5+2 {
			t.Errorf("%s: %d epoll_wait calls for 5 requests: a socket is reported ready with nothing to do", mode.name, waits)
		}
		if wasted := rn.summary().Wasted; wasted != 0 {
			t.Errorf("%s: %d calls returned EAGAIN or found nothing: a socket was reported ready with nothing to do", mode.name, wasted)
		}
	}
}

func TestEdgeTriggeredWithoutDrainingLosesTheRest(t *testing.T) {
	for _, mode := range []struct {
		name      string
		events    uint32
		wantAgain int
	}{
		{"level-triggered", unix.EPOLLIN, 1},
		{"edge-triggered", unix.EPOLLIN | unix.EPOLLET, 0},
	} {
		pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		reader, writer := pair[0], pair[1]
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, reader, &unix.EpollEvent{Events: mode.events, Fd: int32(reader)}); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Write(writer, make([]byte, 20000)); err != nil {
			t.Fatal(err)
		}
		events := make([]unix.EpollEvent, 1)
		first := waitIgnoringEINTR(t, epfd, events, 1000)
		n, _ := unix.Read(reader, make([]byte, 8192)) // one read, not drained
		// No byte is sent in between: whatever the second wait reports is
		// about the 11,808 bytes still waiting. 100ms is plenty for an event
		// that is already due; edge-triggered mode will never report one.
		again := waitIgnoringEINTR(t, epfd, events, 100)
		left, _ := unix.IoctlGetInt(reader, unix.SIOCINQ)
		t.Logf("%s: first wait %d ready, read %d bytes, %d bytes still waiting, next wait %d ready", mode.name, first, n, left, again)
		if first != 1 || left == 0 || again != mode.wantAgain {
			t.Errorf("%s: first wait %d, %d bytes left, second wait %d; want 1, >0, %d", mode.name, first, left, again, mode.wantAgain)
		}
		unix.Close(epfd)
		unix.Close(reader)
		unix.Close(writer)
	}
}

func waitIgnoringEINTR(t *testing.T, epfd int, events []unix.EpollEvent, timeoutMS int) int {
	t.Helper()
	for {
		n, err := unix.EpollWait(epfd, events, timeoutMS)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
}

// TestAReportOfAClosedDescriptorIsSkipped shows the one case where close
// alone does not take a socket out of an epoll set, and that the loop
// survives it: while another descriptor (a dup, or a child's copy between
// fork and exec) still refers to the socket, the set keeps watching it, and
// reports it under the closed descriptor's number.
func TestAReportOfAClosedDescriptorIsSkipped(t *testing.T) {
	srv := startServer(t)
	rn := newTestRun(t, srv, 0, "")
	loop, err := newEventLoop(rn)
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pair[1])
	r := rn.requests[0]
	c := &conn{r: r, fd: pair[0], connected: true, sent: len(r.raw)} // waiting for its response
	c.callback = func([]byte, error) { t.Error("the callback of a request already over was called again") }
	if err := loop.watch(c); err != nil {
		t.Fatal(err)
	}
	loop.pending[c.fd] = c
	other, err := unix.Dup(c.fd)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(other)
	loop.forget(c)
	closeSocket(r, c.fd)

	if _, err := unix.Write(pair[1], []byte("late")); err != nil {
		t.Fatal(err)
	}
	ready, err := loop.watched.wait(rn, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(ready) != 1 || ready[0] != c.fd {
		t.Fatalf("epoll reported %v; want the closed descriptor %d, whose socket a dup keeps open", ready, c.fd)
	}
	loop.turn(0) // level-triggered, so reported again: the loop must pass it by
}
