//go:build linux

// uring.go is -model io_uring: what "asynchronous" means in the POSIX sense,
// shown with a run. Every other stage is readiness-based: select, epoll and
// the runtime's netpoller say when a call would not block, and the program
// still makes the call (connect, write, read). Here the program never asks
// whether a socket is ready: it hands the kernel whole operations, "connect
// this socket", "send these bytes", "receive into this buffer", and the
// kernel does them and reports each one done, with its result. That is
// completion-based I/O, as io_uring on Linux, IOCP on Windows and POSIX AIO
// are; the notes' 异步非阻塞 (nonblocking calls plus callbacks) is not.
//
// io_uring is two rings of memory shared between the program and the kernel
// (io_uring_setup(2), then mmap(2)): the submission queue, where the program
// puts operations (submission queue entries, SQEs), and the completion
// queue, where the kernel puts their results (completion queue entries,
// CQEs). io_uring_enter(2) tells the kernel how many new SQEs there are and
// can sleep until some CQEs have come. x/sys has no wrappers for io_uring;
// the layouts below are those of /usr/include/linux/io_uring.h.
//
// Each request is a chain of operations: CONNECT, then SEND until the whole
// request is sent, then RECV until the response is complete. One loop
// submits the first of every chain, and then, for each completion it reaps,
// submits that request's next step. There is no select, no epoll, no EAGAIN.

package main

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The operations this model submits (enum io_uring_op in linux/io_uring.h).
const (
	opTimeout       = 11 // IORING_OP_TIMEOUT: complete after a time
	opTimeoutRemove = 12 // IORING_OP_TIMEOUT_REMOVE: take a timeout back
	opAsyncCancel   = 14 // IORING_OP_ASYNC_CANCEL: cancel an operation in flight
	opConnect       = 16 // IORING_OP_CONNECT
	opSend          = 26 // IORING_OP_SEND
	opRecv          = 27 // IORING_OP_RECV
)

// opNames name the operations in the report.
var opNames = map[uint8]string{opTimeout: "TIMEOUT", opTimeoutRemove: "TIMEOUT_REMOVE", opAsyncCancel: "ASYNC_CANCEL",
	opConnect: "CONNECT", opSend: "SEND", opRecv: "RECV"}

const (
	setupCQSize     = 1 << 3     // IORING_SETUP_CQSIZE: the program chooses the completion queue's size
	enterGetEvents  = 1 << 0     // IORING_ENTER_GETEVENTS: wait for completions
	offSQRing       = 0          // IORING_OFF_SQ_RING: mmap offset of the submission ring
	offCQRing       = 0x8000000  // IORING_OFF_CQ_RING: of the completion ring
	offSQEs         = 0x10000000 // IORING_OFF_SQES: of the submission queue entries
	maxCQEntries    = 1 << 16    // the kernel's largest completion queue (IORING_MAX_CQ_ENTRIES)
	submissionSlots = 256        // submission queue entries: more are submitted in batches
)

// uringParams is struct io_uring_params: what the program asks for, and
// where the kernel says the rings' fields are.
type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sqOff                                                                  struct {
		head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
		resv2                                                           uint64
	}
	cqOff struct {
		head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
		resv2                                                           uint64
	}
}

// sqe is struct io_uring_sqe, 64 bytes: one operation to do.
type sqe struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64 // for CONNECT: the address's length
	addr        uint64 // a pointer to the buffer, the address, the timespec…
	len         uint32
	opFlags     uint32 // msg_flags, timeout_flags, …
	userData    uint64 // comes back in the completion: which request, which step
	bufIndex    uint16
	personality uint16
	fileIndex   int32
	addr3       uint64
	pad         uint64
}

// cqe is struct io_uring_cqe, 16 bytes: one operation done. res is what the
// system call would have returned: a count, or minus an errno.
type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

// ring is one io_uring: its descriptor and the two rings, mapped into this
// process. The program writes the submission ring's tail and the completion
// ring's head; the kernel writes the other two. Each side reads what the
// other writes with an atomic load and publishes what it writes with an
// atomic store (sync/atomic's are sequentially consistent, more than the
// acquire and release the protocol asks for): so the kernel sees an SQE's
// bytes before the tail that says it is there, and the program sees a CQE's
// bytes once the tail says it has come.
type ring struct {
	fd                   int
	sqHead, sqTail       *uint32
	sqMask               uint32
	sqArray              []uint32 // which SQE each slot of the ring means (here: the same index)
	sqes                 []sqe
	cqHead, cqTail       *uint32
	cqMask               uint32
	cqes                 []cqe
	maps                 [][]byte // what mmap gave, for munmap
	unsubmitted, entries uint32
}

// newRing makes an io_uring with io_uring_setup(2) and maps its rings with
// mmap(2). The completion queue gets room for at least want completions, so
// that none waits in the kernel's overflow list.
func newRing(rn *run, want int) (*ring, error) {
	p := uringParams{flags: setupCQSize, cqEntries: uint32(min(maxCQEntries, max(2*submissionSlots, want)))}
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, submissionSlots, uintptr(unsafe.Pointer(&p)), 0)
	rn.record("io_uring_setup", int(fd), errnoOrNil(errno))
	if errno != 0 {
		return nil, fmt.Errorf("io_uring_setup: %w", errno)
	}
	rg := &ring{fd: int(fd), entries: p.sqEntries}
	sqRing, err := rg.mmap(rn, offSQRing, int(p.sqOff.array+p.sqEntries*4))
	if err != nil {
		return nil, err
	}
	cqRing, err := rg.mmap(rn, offCQRing, int(p.cqOff.cqes+p.cqEntries*uint32(unsafe.Sizeof(cqe{}))))
	if err != nil {
		return nil, err
	}
	sqeMem, err := rg.mmap(rn, offSQEs, int(p.sqEntries*uint32(unsafe.Sizeof(sqe{}))))
	if err != nil {
		return nil, err
	}
	rg.sqHead, rg.sqTail = field(sqRing, p.sqOff.head), field(sqRing, p.sqOff.tail)
	rg.sqMask = *field(sqRing, p.sqOff.ringMask)
	rg.sqArray = unsafe.Slice(field(sqRing, p.sqOff.array), p.sqEntries)
	rg.sqes = unsafe.Slice((*sqe)(unsafe.Pointer(&sqeMem[0])), p.sqEntries)
	rg.cqHead, rg.cqTail = field(cqRing, p.cqOff.head), field(cqRing, p.cqOff.tail)
	rg.cqMask = *field(cqRing, p.cqOff.ringMask)
	rg.cqes = unsafe.Slice((*cqe)(unsafe.Pointer(&cqRing[p.cqOff.cqes])), p.cqEntries)
	return rg, nil
}

// mmap maps one region of the ring into this process, shared with the kernel.
func (rg *ring) mmap(rn *run, offset int64, size int) ([]byte, error) {
	mem, err := unix.Mmap(rg.fd, offset, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	rn.record("mmap", size, err)
	if err != nil {
		rg.close(rn)
		return nil, fmt.Errorf("mmap of the io_uring: %w", err)
	}
	rg.maps = append(rg.maps, mem)
	return mem, nil
}

// field is the uint32 at offset in a mapped ring.
func field(mem []byte, offset uint32) *uint32 {
	return (*uint32)(unsafe.Pointer(&mem[offset]))
}

// close unmaps the rings and closes the io_uring.
func (rg *ring) close(rn *run) {
	for _, mem := range rg.maps {
		err := unix.Munmap(mem)
		rn.record("munmap", 0, err)
	}
	err := unix.Close(rg.fd)
	rn.record("close", 0, err)
}

// submit puts one operation in the submission queue. It is not the kernel's
// until enter says how many there are; when the queue is full, enter first.
func (rg *ring) submit(rn *run, op sqe) error {
	tail := *rg.sqTail // the program's own to write: a plain load is enough
	if tail-atomic.LoadUint32(rg.sqHead) == rg.entries {
		if err := rg.enter(rn, 0); err != nil {
			return err
		}
	}
	slot := tail & rg.sqMask
	rg.sqes[slot] = op
	rg.sqArray[slot] = slot
	atomic.StoreUint32(rg.sqTail, tail+1) // now the kernel may see it
	rg.unsubmitted++
	return nil
}

// enter calls io_uring_enter(2): it hands the kernel the operations
// submitted since the last call and, with wait > 0, sleeps until that many
// have completed. A signal ends the sleep early (EINTR): then the loop reaps
// what there is and calls again.
func (rg *ring) enter(rn *run, wait uint32) error {
	for {
		flags := uintptr(0)
		if wait > 0 {
			flags = enterGetEvents
		}
		n, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(rg.fd), uintptr(rg.unsubmitted), uintptr(wait), flags, 0, 0)
		rn.record("io_uring_enter", int(n), errnoOrNil(errno))
		if errno == 0 {
			// How many it handed over. A signal that ends the wait early
			// does not take those back: the call then returns the count
			// without an error, and fails with EINTR only if it handed
			// over none (io_uring_enter(2)).
			rg.unsubmitted -= uint32(n)
		}
		switch {
		case errno == unix.EINTR && rg.unsubmitted > 0:
			continue // hand the rest over
		case errno == unix.EINTR:
			return nil
		case errno != 0:
			return fmt.Errorf("io_uring_enter: %w", errno)
		}
		return nil
	}
}

// reap hands every completion that has come to done, and gives their slots
// back to the kernel.
func (rg *ring) reap(done func(c cqe)) {
	head := *rg.cqHead
	for tail := atomic.LoadUint32(rg.cqTail); head != tail; head++ {
		done(rg.cqes[head&rg.cqMask])
	}
	atomic.StoreUint32(rg.cqHead, head)
}

func errnoOrNil(errno unix.Errno) error {
	if errno == 0 {
		return nil
	}
	return errno
}

// ---------------------------------------------------------------------------
// The requests, each a chain of operations.

// The user data of the operations that are not a request's (a request's is
// its index in the run).
const (
	deadlineTag = ^uint64(0)     // the run's TIMEOUT
	removeTag   = ^uint64(0) - 1 // the TIMEOUT_REMOVE that takes it back
	cancelTag   = ^uint64(0) - 2 // an ASYNC_CANCEL
)

// timespec is struct __kernel_timespec.
type timespec struct{ sec, nsec int64 }

// uringLoop is the loop's state: the chains, and what is still in the kernel.
type uringLoop struct {
	rn       *run
	rg       *ring
	chains   []*chain // by request index; nil for a request that never started
	going    int      // chains with an operation in flight
	expired  bool     // the run's TIMEOUT has completed: -deadline has passed
	deadline timespec // the TIMEOUT's time, which the kernel reads until it completes
	timeouts int      // TIMEOUT and TIMEOUT_REMOVE operations still to complete
	removing bool     // the TIMEOUT_REMOVE has been submitted
}

// abandoned keeps the chains of a run whose ring failed: the kernel may still
// write into their buffers while it tears the ring down, so the garbage
// collector must never reuse that memory.
var abandoned [][]*chain

// fetchAllOnRing runs every request on one io_uring: a chain of operations
// each, started together, and one loop that reaps their completions.
func fetchAllOnRing(rn *run) {
	rg, err := newRing(rn, 2*len(rn.requests)+4)
	if err != nil {
		for _, r := range rn.requests {
			r.begin()
			r.finish(err)
		}
		return
	}
	u := &uringLoop{rn: rn, rg: rg, chains: make([]*chain, len(rn.requests))}
	if err := u.run(); err != nil {
		abandoned = append(abandoned, u.chains)
		for _, c := range u.chains {
			if c != nil && c.step != 0 {
				u.end(c, err)
			}
		}
	}
	rg.close(rn)
}

// run arms the deadline, starts every chain, and reaps completions until
// every chain is over and nothing of this run is left in the kernel.
func (u *uringLoop) run() error {
	// One TIMEOUT for the whole run: its completion says -deadline has passed.
	left := u.rn.timeLeft()
	u.deadline = timespec{sec: int64(left / 1e9), nsec: int64(left % 1e9)}
	if err := u.submit(nil, sqe{opcode: opTimeout, addr: uint64(uintptr(unsafe.Pointer(&u.deadline))), len: 1, userData: deadlineTag}); err != nil {
		return err
	}
	u.timeouts++
	for i, r := range u.rn.requests {
		r.begin()
		if u.rn.timeLeft() == 0 {
			r.finish(r.notStarted())
			continue
		}
		if err := u.start(r, i); err != nil {
			r.finish(err)
		}
	}
	for u.going > 0 || u.timeouts > 0 {
		if u.going == 0 && !u.expired && !u.removing { // all over before the deadline: take the TIMEOUT back, once
			if err := u.submit(nil, sqe{opcode: opTimeoutRemove, addr: deadlineTag, userData: removeTag}); err != nil {
				return err
			}
			u.removing = true
			u.timeouts++
		}
		if err := u.rg.enter(u.rn, 1); err != nil {
			return err
		}
		var failed error
		u.rg.reap(func(done cqe) {
			if err := u.completed(done); err != nil {
				failed = err
			}
		})
		if failed != nil {
			return failed
		}
	}
	return nil
}

// start makes the request's socket with socket(2) and submits its CONNECT.
// The socket is an ordinary, blocking one: io_uring never blocks the
// program, whatever the socket, because the program never makes the call.
func (u *uringLoop) start(r *request, id int) error {
	fd, err := unix.Socket(r.family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	r.record("socket", fd, err)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	c := &chain{r: r, id: uint64(id), fd: fd, step: opConnect, buf: make([]byte, 8192)}
	c.addrLen = rawSockaddr(r.addr, &c.sockaddr)
	op := sqe{opcode: opConnect, fd: int32(fd), addr: uint64(uintptr(unsafe.Pointer(&c.sockaddr[0]))), off: uint64(c.addrLen), userData: c.id}
	if err := u.submit(r, op); err != nil {
		closeSocket(r, fd)
		return err
	}
	u.chains[id] = c
	u.going++
	return nil
}

// completed handles one completion: the chain's next operation, or its end.
func (u *uringLoop) completed(done cqe) error {
	switch done.userData {
	case deadlineTag: // the TIMEOUT completed (-ETIME), or was taken back (-ECANCELED)
		u.timeouts--
		if done.res == -int32(unix.ETIME) {
			return u.expire()
		}
		return nil
	case removeTag: // the TIMEOUT_REMOVE's own completion
		u.timeouts--
		return nil
	case cancelTag: // an ASYNC_CANCEL's own completion: what it cancelled completes too
		return nil
	}
	c := u.chains[done.userData]
	var err error
	if done.res < 0 { // minus an errno, as the system call would have failed
		err = unix.Errno(-done.res)
	}
	c.r.record("cqe "+opNames[c.step], int(max(done.res, 0)), err)
	next, over, why := c.next(done.res, err, u.expired)
	if over {
		u.end(c, why)
		return nil
	}
	return u.submit(c.r, next)
}

// submit puts an operation in the ring, and counts it for its request (r),
// or for the loop (nil).
func (u *uringLoop) submit(r *request, op sqe) error {
	err := u.rg.submit(u.rn, op)
	if r != nil {
		r.record("sqe "+opNames[op.opcode], 0, err)
	} else {
		u.rn.record("sqe "+opNames[op.opcode], 0, err)
	}
	return err
}

// expire cancels every operation still in flight (ASYNC_CANCEL names it by
// its user data). Each still completes, mostly with -ECANCELED, and only
// then is its chain over: until its completion has come, the kernel may
// still be writing into its buffer.
func (u *uringLoop) expire() error {
	u.expired = true
	for _, c := range u.chains {
		if c != nil && c.step != 0 {
			if err := u.submit(c.r, sqe{opcode: opAsyncCancel, addr: c.id, userData: cancelTag}); err != nil {
				return err
			}
		}
	}
	return nil
}

// end closes the chain's socket and finishes its request.
func (u *uringLoop) end(c *chain, why error) {
	closeSocket(c.r, c.fd)
	c.step = 0
	u.going--
	c.r.finish(why)
}

// chain is one request on the ring. Everything the kernel reads or writes for
// it (the address, the buffer) lives here, in memory that Go's garbage
// collector does not move, and stays alive until the operation's completion
// has come: the kernel may touch it at any moment until then.
type chain struct {
	r        *request
	id       uint64 // its operations' user data
	fd       int
	step     uint8    // the operation in flight: opConnect, opSend or opRecv; 0 once over
	sent     int      // bytes of the request sent so far
	sockaddr [28]byte // the server's address as connect(2) takes it: a sockaddr_in or sockaddr_in6
	addrLen  int
	buf      []byte // where RECV writes
}

// next decides what follows a completion: the chain's next operation, or its
// end (over), with why it failed (nil: the response is complete).
func (c *chain) next(res int32, err error, expired bool) (op sqe, over bool, why error) {
	switch {
	case expired: // cancelled at -deadline, or done just then: over either way
		return op, true, c.timedOut()
	case err != nil && c.step == opConnect:
		return op, true, fmt.Errorf("connect to %s: %w", c.r.hostport, err)
	case err != nil && c.step == opSend:
		return op, true, fmt.Errorf("send: %w", err)
	case err != nil:
		return op, true, fmt.Errorf("recv: %w", err)
	}
	switch c.step {
	case opConnect: // connected: send the request
		return c.send(), false, nil
	case opSend: // a send may take part of the bytes, as write(2) may: send the rest
		if c.sent += int(res); c.sent < len(c.r.raw) {
			return c.send(), false, nil
		}
		return c.recv(), false, nil
	}
	if res == 0 { // end of file: the server closed (finish checks the response is whole)
		return op, true, nil
	}
	if complete, err := c.r.received(c.buf[:res]); complete || err != nil {
		return op, true, err // whole by its framing, or broken (not HTTP, over -max-bytes…)
	}
	return c.recv(), false, nil
}

// send is a SEND of the rest of the request. The request's bytes (r.raw)
// live as long as the request, past the completion.
func (c *chain) send() sqe {
	c.step = opSend
	rest := c.r.raw[c.sent:]
	return sqe{opcode: opSend, fd: int32(c.fd), addr: uint64(uintptr(unsafe.Pointer(&rest[0]))), len: uint32(len(rest)), userData: c.id}
}

// recv is a RECV into the chain's buffer.
func (c *chain) recv() sqe {
	c.step = opRecv
	return sqe{opcode: opRecv, fd: int32(c.fd), addr: uint64(uintptr(unsafe.Pointer(&c.buf[0]))), len: uint32(len(c.buf)), userData: c.id}
}

// timedOut says how far the chain had got when -deadline passed.
func (c *chain) timedOut() error {
	switch c.step {
	case opConnect:
		return c.r.timedOut("connecting")
	case opSend:
		return c.r.timedOut("sending the request")
	}
	return c.r.timedOut(fmt.Sprintf("reading the response (%d bytes so far)", len(c.r.response)))
}

// rawSockaddr writes sa as the kernel's struct sockaddr_in or sockaddr_in6
// (the port in network byte order) and returns its length. unix.Connect does
// this inside; here the kernel reads it later, from the chain.
func rawSockaddr(sa unix.Sockaddr, raw *[28]byte) int {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		binary.NativeEndian.PutUint16(raw[0:], unix.AF_INET)
		binary.BigEndian.PutUint16(raw[2:], uint16(sa.Port))
		copy(raw[4:8], sa.Addr[:])
		return unix.SizeofSockaddrInet4
	case *unix.SockaddrInet6:
		binary.NativeEndian.PutUint16(raw[0:], unix.AF_INET6)
		binary.BigEndian.PutUint16(raw[2:], uint16(sa.Port))
		copy(raw[8:24], sa.Addr[:])
		return unix.SizeofSockaddrInet6
	}
	return 0
}

// uringAvailable says why io_uring cannot be used here, if it cannot: an old
// kernel (ENOSYS), or one where it is switched off (kernel.io_uring_disabled)
// or forbidden (a container's seccomp filter: EPERM).
func uringAvailable() error {
	var p uringParams
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return fmt.Errorf("io_uring is not available here: io_uring_setup: %w (an old kernel, kernel.io_uring_disabled, or a container's seccomp filter)", errno)
	}
	unix.Close(int(fd))
	return nil
}
