//go:build linux

// The tests particular to -model epoll-goroutines (epoll.go). The tests of
// main_test.go run it too, as one of allModels.

package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func init() {
	allModels = append(allModels, "epoll-goroutines")
}

// TestOwnPollerWatchesTheSockets: while five requests are in flight (the
// server holds them until all five have arrived, gather=5, and answers
// 300 ms later), the sockets
// are in the model's own epoll set: /proc/self/fdinfo of that descriptor
// lists each watched descriptor as a "tfd:" line. They are not left to the
// runtime's netpoller, whose epoll is another descriptor.
func TestOwnPollerWatchesTheSockets(t *testing.T) {
	srv := startServer(t)
	together := "/page?gather=5&delay=300ms" // held together, then for 300 ms more: time to look
	rn := newTestRun(t, srv, 0, together, together, together, together, together)
	rn.startClock()
	if err := startOwnPoller(rn); err != nil { // what fetchAll does for this model, by hand
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, r := range rn.requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.begin()
			r.finish(fetchOnOwnPoller(r))
		}()
	}
	var watched []string // what the set watched, as "fd → what it is", while all five were in flight
	for try := 0; try < 250 && srv.Stats(rn.tag).InFlight < 5; try++ {
		time.Sleep(20 * time.Millisecond)
	}
	for _, fd := range watchedDescriptors(t, own.epfd) {
		target, _ := os.Readlink(filepath.Join("/proc/self/fd", fd))
		watched = append(watched, fd+" → "+target)
	}
	wg.Wait()
	stopOwnPoller()
	rn.stopClock()
	sameResponses(t, srv, rn)

	sockets, eventfds := 0, 0
	for _, w := range watched {
		switch {
		case strings.Contains(w, "socket:"):
			sockets++
		case strings.Contains(w, "eventfd"):
			eventfds++
		default:
			t.Errorf("the model's epoll set watches %s, which is neither a socket nor its eventfd", w)
		}
	}
	if sockets != 5 || eventfds != 1 {
		t.Errorf("while 5 requests were in flight the model's epoll set watched %d sockets and %d eventfds, want 5 and 1: %v", sockets, eventfds, watched)
	}
}

// watchedDescriptors reads which descriptors an epoll instance watches, from
// the "tfd: N" lines of /proc/self/fdinfo/EPFD (proc(5)).
func watchedDescriptors(t *testing.T, epfd int) []string {
	t.Helper()
	info, err := os.ReadFile(filepath.Join("/proc/self/fdinfo", strconv.Itoa(epfd)))
	if err != nil {
		t.Skip("no /proc/self/fdinfo here:", err)
	}
	var fds []string
	for _, line := range strings.Split(string(info), "\n") {
		if rest, ok := strings.CutPrefix(line, "tfd:"); ok {
			fds = append(fds, strings.Fields(rest)[0])
		}
	}
	return fds
}
