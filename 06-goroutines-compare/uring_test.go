//go:build linux

// The tests particular to -model io_uring (uring.go). The tests of
// main_test.go run it too, as one of allModels, where io_uring works.

package main

import (
	"os"
	"strings"
	"testing"
)

func init() {
	if uringAvailable() == nil {
		allModels = append(allModels, "io_uring")
	}
}

// needsUring skips a test where io_uring cannot be used, saying why.
func needsUring(t *testing.T) {
	t.Helper()
	if err := uringAvailable(); err != nil {
		t.Skip(err)
	}
}

// TestNoReadinessIsAskedFor: with io_uring the program never asks whether a
// socket is ready and never makes the socket's calls itself. The report has
// no select, epoll or kevent, no connect, write or read, and no EAGAIN or
// EINPROGRESS: only operations submitted (sqe …) and completed (cqe …), and
// the io_uring_enter calls that hand them over and wait.
func TestNoReadinessIsAskedFor(t *testing.T) {
	needsUring(t)
	useModel(t, "io_uring")
	srv := startServer(t)
	rn := newTestRun(t, srv, 0, "/page?fault=drip&size=20000&chunk=500&pause=1ms", "", "/page?fault=chunked", "/page?gather=4", "/page?gather=4")
	rn.fetch()
	sameResponses(t, srv, rn)
	for call := range rn.counts() {
		name := strings.Fields(call)[0]
		switch name {
		case "select", "poll", "epoll_wait", "epoll_ctl", "kevent", "connect", "write", "read":
			t.Errorf("the report counts %q: io_uring asks for no readiness, and makes no such call", call)
		}
		if strings.HasSuffix(call, " EAGAIN") || strings.HasSuffix(call, " EINPROGRESS") {
			t.Errorf("the report counts %q: with completions nothing comes back as try again", call)
		}
	}
	if rn.counts()["cqe RECV"] < 5 {
		t.Errorf("%d RECV completions for 5 responses, one of them dripped", rn.counts()["cqe RECV"])
	}
}

// TestTheRingIsUnmappedAndClosed: once the run is over, the ring's memory is
// unmapped (no anon_inode:[io_uring] in /proc/self/maps) and its descriptor
// closed (nothingLeftOpen), even when -deadline cancelled operations in flight.
func TestTheRingIsUnmappedAndClosed(t *testing.T) {
	needsUring(t)
	useModel(t, "io_uring")
	checkDeadlineEndsTheRun(t) // every step a server can stop at, each run on a ring of its own
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skip("no /proc/self/maps here:", err)
	}
	if strings.Contains(string(maps), "io_uring") {
		t.Errorf("an io_uring is still mapped after the runs:\n%s", maps)
	}
}
