//go:build darwin || freebsd

// kqueue.go is the watched set of stage 05 on macOS and FreeBSD: kqueue(2),
// with the same four functions as epoll.go on Linux (read that first), so
// that main.go's loop is the same on all three:
//
//	newWatcher   make the set: kqueue(2), and close-on-exec with fcntl(2)
//	close        give it back: close(2)
//	watch        watch a socket, or switch what for: kevent(2) EV_ADD (EV_DELETE of the old filter first)
//	wait         sleep until some are ready, and name them: kevent(2) with no changes
//
// kqueue is a kernel queue of events, and one call, kevent, both submits
// changes to what it watches and waits for events. Where epoll watches a
// descriptor with a mask of events, kqueue watches (descriptor, filter)
// pairs: EVFILT_READ and EVFILT_WRITE are two entries for one socket. It is
// level-triggered by default, like epoll; EV_CLEAR is its edge-triggered
// mode (-edge). The Go runtime's netpoller uses kqueue on these systems, as
// it uses epoll on Linux (stage 06).

package main

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// waitCall is the name the report gives the wait.
const waitCall = "kevent"

// watcher is a kqueue.
type watcher struct {
	kq     int
	events []unix.Kevent_t // where kevent writes the ready ones
	ready  []int           // their descriptors: one slice, used again at every wait
}

// newWatcher makes the kqueue with kqueue(2). It takes no flags, so the
// close-on-exec that epoll_create1 sets with EPOLL_CLOEXEC takes one more
// call here, fcntl(2) F_SETFD FD_CLOEXEC, as the Go runtime does for its own
// kqueue (runtime/netpoll_kqueue.go). fork(2) does not copy a kqueue into a
// child, but a descriptor without FD_CLOEXEC would still be open in any
// program this process itself went on to exec.
func newWatcher(rn *run) (*watcher, error) {
	kq, err := unix.Kqueue()
	rn.record("kqueue", kq, err)
	if err != nil {
		return nil, fmt.Errorf("kqueue: %w", err)
	}
	_, err = unix.FcntlInt(uintptr(kq), unix.F_SETFD, unix.FD_CLOEXEC)
	rn.record("fcntl", 0, err)
	if err != nil {
		unix.Close(kq)
		return nil, fmt.Errorf("fcntl FD_CLOEXEC: %w", err)
	}
	return &watcher{kq: kq, events: make([]unix.Kevent_t, 256)}, nil
}

// close gives the kqueue back to the kernel.
func (w *watcher) close(rn *run) {
	err := unix.Close(w.kq)
	rn.record("close", 0, err)
}

// filters are the kqueue filters for each interest: one (descriptor,
// filter) pair each, two for both.
var filters = map[interest][]int{
	readable:  {unix.EVFILT_READ},
	writable:  {unix.EVFILT_WRITE},
	readWrite: {unix.EVFILT_READ, unix.EVFILT_WRITE},
}

// watch tells kqueue to watch c for want: EVFILT_WRITE (writable),
// EVFILT_READ (readable) or both, with EV_CLEAR under -edge. kqueue watches
// (descriptor, filter) pairs, not a descriptor with a mask, so it has no
// MOD: a switch is an EV_DELETE of the old filter and an EV_ADD of the new,
// both in one kevent call ("kevent EV_DELETE+EV_ADD" in the report).
// Edge-triggered, both filters are added in one call, once.
//
// The call passes no event list, so kevent returns at once, and a change
// that fails comes back as the call's own error (with room in an event list
// it would come as an event with EV_ERROR): an error of this request alone.
//
// Nothing deletes the filters at the end: closing the descriptor removes
// every kevent that refers to it, at once, even when a dup or a fork keeps
// the socket open (a kevent belongs to the descriptor, not to the socket).
func (w *watcher) watch(c *conn, want interest) error {
	add := unix.EV_ADD
	if edgeTriggered {
		add |= unix.EV_CLEAR
	}
	changes := make([]unix.Kevent_t, 0, 3)
	name := "kevent EV_ADD"
	if c.watching != notWatched { // watched for the other filter: delete that one first
		for _, filter := range filters[c.watching] {
			changes = append(changes, change(c.fileno(), filter, unix.EV_DELETE))
		}
		name = "kevent EV_DELETE+EV_ADD"
	}
	for _, filter := range filters[want] {
		changes = append(changes, change(c.fileno(), filter, add))
	}
	_, err := unix.Kevent(w.kq, changes, nil, nil)
	c.r.record(name, 0, err)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// change is one change to submit to kevent: flags for (fd, filter).
func change(fd, filter, flags int) unix.Kevent_t {
	var ev unix.Kevent_t
	unix.SetKevent(&ev, fd, filter, flags)
	return ev
}

// wait sleeps in kevent(2), with no changes to submit, at most timeout
// milliseconds (0: not at all), until some watched sockets are ready, and
// returns their descriptors: at most len(w.events) per call; the rest wait
// for the next.
func (w *watcher) wait(rn *run, timeout int) ([]int, error) {
	// kevent takes a timespec, not milliseconds. macOS refuses a very long
	// one with EINVAL, so, as the Go runtime does, ask for at most a million
	// seconds: the loop waits again.
	sleep := min(time.Duration(timeout)*time.Millisecond, 1e6*time.Second)
	timespec := unix.NsecToTimespec(sleep.Nanoseconds())
	n, err := unix.Kevent(w.kq, nil, w.events, &timespec)
	rn.record("kevent", n, err)
	if err == unix.EINTR {
		// A signal woke kevent before anything was ready (the kernel never
		// restarts it). Report nothing ready: the loop waits again.
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kevent: %w", err)
	}
	// Every event is a ready socket: this call submits no changes, so none is
	// a failed change's EV_ERROR (watch gets those as errors).
	w.ready = w.ready[:0]
	for _, event := range w.events[:n] {
		w.ready = append(w.ready, int(event.Ident))
	}
	return w.ready, nil
}
