//go:build linux

// BenchmarkWaitCost measures what the notes only assert: "select and poll
// scan every socket on each call, epoll does not".
//
// Each sub-benchmark times ONE readiness wait (one select, one poll, one
// epoll_wait) while many idle sockets are watched and exactly one socket is
// ready. Run it from the repository root:
//
//	go test -run '^$' -bench WaitCost -benchtime 2000x ./06-goroutines-compare
//
// Names read <call>/<idle sockets>, for example poll/1000. ns/op is the cost
// of one wait; ns/socket is that cost divided by the number of idle sockets.
//
// What to expect: select and poll grow linearly with the watched set (ns/op
// roughly ten times larger for ten times more sockets, ns/socket roughly
// constant), because on every call the kernel walks the whole list you hand
// it and asks each socket "are you ready?". epoll stays flat (ns/op about the
// same at 10 and at 10,000 sockets, so ns/socket falls tenfold each step):
// the sockets were registered once with epoll_ctl, each socket's wake-up
// callback puts it on the epoll instance's ready list when data arrives, and
// epoll_wait only copies out what is on that list. On a 2-core VM: poll took
// about 14 µs at 100 sockets, 190 µs at 1,000 and 2.9 ms at 10,000; epoll
// about 0.35 µs at every size.
//
// select stops at 1,000 sockets: it cannot watch descriptor 1024 or above
// (FD_SETSIZE). If the process already holds so many descriptors that even
// select/1000 would reach 1024, that size is skipped with a message; so is a
// size that needs more descriptors than ulimit -n allows (10,000 under 1024).

package main

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkWaitCost runs select, poll and epoll_wait over the same kind of
// watched set: n idle sockets plus one ready socket, the ready one last.
func BenchmarkWaitCost(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("select/%d", n), func(b *testing.B) { benchWaitSelect(b, n) })
	}
	for _, n := range []int{10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("poll/%d", n), func(b *testing.B) { benchWaitPoll(b, n) })
	}
	for _, n := range []int{10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("epoll/%d", n), func(b *testing.B) { benchWaitEpoll(b, n) })
	}
}

// benchWaitSelect times one select(2) call per iteration. select overwrites
// the set it is given with the answer, so a real event loop rebuilds the set
// before every call: that rebuild is part of the cost and is timed too.
func benchWaitSelect(b *testing.B, n int) {
	fds, ready := watchedSockets(b, n)
	highest := slices.Max(fds) // the ready one, as it was opened last
	if highest >= unix.FD_SETSIZE {
		// FdSet.Set(1024) panics, and select cannot be asked about it anyway.
		b.Skipf("%d sockets reach descriptor %d: select can only watch descriptors below FD_SETSIZE (%d)", n+1, highest, unix.FD_SETSIZE)
	}
	timeout := unix.NsecToTimeval(1e9) // never hang; one socket is ready, so select returns at once
	var set unix.FdSet

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for {
			set.Zero()
			for _, fd := range fds {
				set.Set(fd)
			}
			tv := timeout // Linux writes the time left back into the timeout
			got, err := unix.Select(highest+1, &set, nil, nil, &tv)
			if errors.Is(err, unix.EINTR) {
				continue // a signal interrupted the wait: ask again
			}
			if err != nil {
				b.Fatalf("select: %v", err)
			}
			if got != 1 || !set.IsSet(ready) {
				b.Fatalf("select reported %d ready descriptors; want exactly 1, descriptor %d", got, ready)
			}
			break
		}
	}
	reportPerSocket(b, n)
}

// benchWaitPoll times one poll(2) call per iteration. The []PollFd is built
// once and reused: the kernel only reads Fd and Events and writes Revents of
// every entry on every call (0 for the idle ones), so nothing needs resetting.
func benchWaitPoll(b *testing.B, n int) {
	fds, ready := watchedSockets(b, n)
	pfds := make([]unix.PollFd, len(fds))
	for i, fd := range fds {
		pfds[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	}
	last := &pfds[len(pfds)-1] // the ready socket

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for {
			got, err := unix.Poll(pfds, 1000) // 1 s: never hangs, returns at once
			if errors.Is(err, unix.EINTR) {
				continue // a signal interrupted the wait: ask again
			}
			if err != nil {
				b.Fatalf("poll: %v", err)
			}
			if got != 1 || int(last.Fd) != ready || last.Revents&unix.POLLIN == 0 {
				b.Fatalf("poll reported %d ready descriptors; want exactly 1, descriptor %d", got, ready)
			}
			break
		}
	}
	reportPerSocket(b, n)
}

// benchWaitEpoll times one epoll_wait(2) call per iteration. The epoll
// instance and its registrations (one EPOLL_CTL_ADD per socket) are set up
// once, outside the timer, as an event loop does when a socket is opened.
// Level-triggered: the ready socket is reported again on every call because
// its datagram is never read.
func benchWaitEpoll(b *testing.B, n int) {
	fds, ready := watchedSockets(b, n)
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		b.Fatalf("epoll_create1: %v", err)
	}
	b.Cleanup(func() { unix.Close(epfd) })
	for _, fd := range fds {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			b.Fatalf("epoll_ctl ADD %d: %v", fd, err)
		}
	}
	events := make([]unix.EpollEvent, 64)

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for {
			got, err := unix.EpollWait(epfd, events, 1000) // 1 s: never hangs, returns at once
			if errors.Is(err, unix.EINTR) {
				continue // a signal interrupted the wait: ask again
			}
			if err != nil {
				b.Fatalf("epoll_wait: %v", err)
			}
			if got != 1 || int(events[0].Fd) != ready {
				b.Fatalf("epoll_wait reported %d ready descriptors; want exactly 1, descriptor %d", got, ready)
			}
			break
		}
	}
	reportPerSocket(b, n)
}

// reportPerSocket adds the ns/socket column: the cost of one wait divided by
// the number of idle sockets watched. Roughly constant means linear growth.
// The timer is stopped first so that ns/socket uses the same elapsed time
// as ns/op.
func reportPerSocket(b *testing.B, idle int) {
	b.StopTimer()
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(perOp/float64(idle), "ns/socket")
}

// watchedSockets opens n idle sockets and then the ready one. The kernel
// hands out the lowest free descriptor, so the ready socket gets the highest
// one and comes last in the list: select and poll must go past every idle
// socket before they find it. They look at every socket on each call anyway,
// but this is also the worst case for them: with a nonzero timeout they hook
// themselves onto the wait queue of each socket they look at until they find
// a ready one (so they could sleep until it wakes them), then unhook again.
// That is exactly what every call of a real loop pays while nothing is ready
// yet. It returns all the descriptors, ready one last, and the ready
// descriptor. Everything is closed when the sub-benchmark ends.
func watchedSockets(b *testing.B, n int) (fds []int, ready int) {
	var limit unix.Rlimit // Go raises the soft limit to the hard one (ulimit -Hn) at start
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &limit) == nil && limit.Cur < uint64(n)+64 {
		b.Skipf("%d sockets need about %d file descriptors; the limit here is %d (ulimit -n)", n+1, n+64, limit.Cur)
	}
	fds = openIdleUDP(b, n)
	ready = openReadyUDP(b)
	return append(fds, ready), ready
}

// openIdleUDP opens n UDP sockets that nobody ever sends to: they stay idle,
// never readable.
//
// Why UDP and not TCP: an idle UDP socket costs one descriptor, so 10,000 of
// them fit under this machine's limit of 20,000 open descriptors, while an
// idle TCP connection inside one process costs two (the client end and the
// accepted end). For select and poll the work per watched descriptor is the
// same whatever the socket type: one call to the socket's poll callback.
func openIdleUDP(b *testing.B, n int) []int {
	fds := make([]int, 0, n)
	for range n {
		fds = append(fds, bindLoopbackUDP(b))
	}
	return fds
}

// openReadyUDP opens a UDP socket and sends it one datagram from itself. The
// datagram is never read, so the socket stays readable for the whole run.
func openReadyUDP(b *testing.B) int {
	fd := bindLoopbackUDP(b)
	self, err := unix.Getsockname(fd)
	if err != nil {
		b.Fatalf("getsockname: %v", err)
	}
	if err := unix.Sendto(fd, []byte("ready"), 0, self); err != nil {
		b.Fatalf("sendto: %v", err)
	}
	return fd
}

// bindLoopbackUDP opens one UDP socket bound to 127.0.0.1 on a port the
// kernel picks, and arranges for it to be closed when the sub-benchmark ends.
func bindLoopbackUDP(b *testing.B) int {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatalf("socket: %v", err)
	}
	b.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		b.Fatalf("bind: %v", err)
	}
	return fd
}
