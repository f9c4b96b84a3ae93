//go:build linux

// epoll.go is the watched set of stage 05 on Linux: epoll(7). main.go's loop
// asks four things of it, and kqueue.go answers the same four on macOS and
// FreeBSD, the way Go's runtime keeps netpoll_epoll.go and netpoll_kqueue.go
// behind one contract (netpollinit, netpollopen, netpoll):
//
//	newWatcher   make the set: epoll_create1(2)
//	close        give it back: close(2)
//	watch        watch a socket, or switch what for: epoll_ctl(2) ADD, MOD
//	wait         sleep until some are ready, and name them: epoll_wait(2)
//
// epoll_create1 makes an epoll instance, the kernel's copy of the watched
// set. epoll_ctl adds a socket once (ADD), changes what it waits for (MOD)
// and removes it (DEL). epoll_wait sleeps until some are ready and returns
// only those: the kernel keeps a ready list, fed by the sockets themselves
// when their state changes, so one wait costs the same for 10 watched
// sockets as for 10,000. This stage never needs DEL: closing a socket takes
// it out of the set (see forget in main.go).

package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// waitCall is the name the report gives the wait.
const waitCall = "epoll_wait"

// watcher is an epoll instance.
type watcher struct {
	epfd   int
	events []unix.EpollEvent // where epoll_wait writes the ready ones
	ready  []int             // their descriptors: one slice, used again at every wait
}

// newWatcher makes the epoll instance with epoll_create1(2). EPOLL_CLOEXEC
// closes it in any program this one might exec, which has no use for it.
func newWatcher(rn *run) (*watcher, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	rn.record("epoll_create1", epfd, err)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	return &watcher{epfd: epfd, events: make([]unix.EpollEvent, 256)}, nil
}

// close gives the epoll instance back to the kernel.
func (w *watcher) close(rn *run) {
	err := unix.Close(w.epfd)
	rn.record("close", 0, err)
}

// epollEvents are the epoll events for each interest.
var epollEvents = map[interest]uint32{
	readable:  unix.EPOLLIN,
	writable:  unix.EPOLLOUT,
	readWrite: unix.EPOLLIN | unix.EPOLLOUT,
}

// watch tells epoll to watch c for want: EPOLLOUT (writable), EPOLLIN
// (readable), or both, with EPOLLET under -edge. The first time is
// epoll_ctl ADD; after that MOD changes the interest in place.
//
// The loop never reads which events came (EPOLLERR, EPOLLHUP): a socket with
// an error or a hang-up is reported ready for what it waits for too, and the
// call the loop makes next, getsockopt SO_ERROR, write or read, returns the
// error or the end of file itself.
func (w *watcher) watch(c *conn, want interest) error {
	events := epollEvents[want]
	if edgeTriggered {
		events |= unix.EPOLLET
	}
	op, name := unix.EPOLL_CTL_MOD, "epoll_ctl MOD"
	if c.watching == notWatched {
		op, name = unix.EPOLL_CTL_ADD, "epoll_ctl ADD"
	}
	err := unix.EpollCtl(w.epfd, op, c.fileno(), &unix.EpollEvent{Events: events, Fd: int32(c.fileno())})
	c.r.record(name, 0, err)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// wait sleeps in epoll_wait(2), at most timeout milliseconds (0: not at all),
// until some watched sockets are ready, and returns their descriptors: at
// most len(w.events) per call; the rest wait for the next. unix.EpollWait is
// the epoll_wait system call on amd64, and epoll_pwait on arm64, which has
// no epoll_wait.
func (w *watcher) wait(rn *run, timeout int) ([]int, error) {
	n, err := unix.EpollWait(w.epfd, w.events, timeout)
	rn.record("epoll_wait", n, err)
	if err == unix.EINTR {
		// A signal woke epoll_wait before anything was ready (the kernel never
		// restarts it). Report nothing ready: the loop waits again.
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("epoll_wait: %w", err)
	}
	w.ready = w.ready[:0]
	for _, event := range w.events[:n] {
		w.ready = append(w.ready, int(event.Fd))
	}
	return w.ready, nil
}
