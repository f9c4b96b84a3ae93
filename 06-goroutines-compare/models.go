//go:build unix

// models.go holds the two other ways -model can run each request, the ones
// the notes' summary (总结) names besides asynchronous I/O: a thread per
// request (-model threads) and a process per request (-model processes).
// Both make stage 01's blocking system calls; the functions that make them
// are stage 01's fetch, connect, waitConnected, setTimeout, sendRequest,
// receiveResponse and closeSocket, with the same bodies (renamed where
// main.go has a function of that name).

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// ---------------------------------------------------------------------------
// -model threads: one OS thread per request.

// fetchOnThread runs one request on an OS thread of its own, as a
// thread-per-connection program in C or Java does. runtime.LockOSThread wires
// this goroutine to the thread it is running on, and no other goroutine runs
// there until the request is over. Each blocking system call puts its thread
// to sleep in the kernel; the kernel's scheduler, not Go's, wakes it. (A
// goroutine in a raw blocking system call holds its thread even without
// LockOSThread; locking makes the thread its own for the whole request.)
//
// When the request is over, UnlockOSThread gives the thread back to the
// runtime, which keeps it for a later goroutine, as a C program's thread pool
// would. A goroutine that ends still locked takes its thread with it, and
// ending threads by the thousand is slow: each one's exit (mexit in
// runtime/proc.go) takes the scheduler's one lock and walks the list of every
// thread the program has (allm) to take itself out, and wakes another thread
// to take over its processor. When -deadline woke thousands of sleeping
// requests at once, their threads' exits, one after another, kept the run
// going long after the deadline.
func fetchOnThread(r *request) error {
	if threadsInUse.Add(1) > threadLimit {
		threadsInUse.Add(-1)
		return fmt.Errorf("not started: %d requests already have a thread each: %w", threadLimit, errTooManyThreads)
	}
	defer threadsInUse.Add(-1)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return fetchBlocking(r)
}

// threadLimit is how many requests -model threads runs at once. Go stops a
// program that makes more than 10,000 threads ("fatal error: thread
// exhaustion"), and the runtime needs some threads of its own, so a request
// beyond this many fails with a clear error instead of crashing the run.
var threadLimit int32 = 9000

// threadsInUse counts the requests of -model threads that have a thread now.
var threadsInUse atomic.Int32

var errTooManyThreads = errors.New("a Go program may have at most 10000 threads (runtime/debug.SetMaxThreads); goroutines have no such limit")

// fetchBlocking is stage 01's fetch: one whole HTTP request over a blocking
// socket. It runs on a thread of its own (-model threads) or in a process of
// its own (-model processes). It and the six functions after it are stage
// 01's: read 01-blocking/main.go for why each step is as it is.
func fetchBlocking(r *request) error {
	// socket(2) makes a TCP endpoint and returns its descriptor, a small
	// integer that names it in every later call. (Python: socket.socket())
	// Its family is the server address's: AF_INET for IPv4, AF_INET6 for IPv6.
	fd, err := unix.Socket(r.family, unix.SOCK_STREAM, 0)
	r.record("socket", fd, err)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer closeSocket(r, fd)

	if err := connectBlocking(r, fd); err != nil {
		return err
	}
	if err := sendBlocking(r, fd); err != nil {
		return err
	}
	return receiveBlocking(r, fd)
}

// connectBlocking is stage 01's connect: connect(2) sleeps until the
// handshake is done or has failed, or until its timeout (SO_SNDTIMEO) says
// EINPROGRESS. After a signal's EINTR it does not call connect(2) again
// (POSIX says that fails with EALREADY) but waits for the handshake with
// waitConnected, as Go's net package does.
func connectBlocking(r *request, fd int) error {
	if err := setTimeout(r, fd, unix.SO_SNDTIMEO, "connecting"); err != nil {
		return err
	}
	err := unix.Connect(fd, r.addr)
	r.record("connect", 0, err)
	switch err {
	case nil:
		return nil
	case unix.EINTR:
		return waitConnected(r, fd) // a signal arrived during the handshake
	case unix.EINPROGRESS:
		return r.timedOut("connecting") // SO_SNDTIMEO ran out
	}
	return fmt.Errorf("connect to %s: %w", r.hostport, err)
}

// waitConnected is stage 01's: poll(2) sleeps until the socket is writable
// (the handshake has ended, well or not) or until -deadline, and
// getsockopt(2) SO_ERROR then says how the handshake ended.
func waitConnected(r *request, fd int) error {
	for {
		left := r.rn.timeLeft()
		if left == 0 {
			return r.timedOut("connecting")
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(fds, int((left+time.Millisecond-1)/time.Millisecond))
		r.record("poll", n, err)
		if err != nil && err != unix.EINTR {
			return fmt.Errorf("poll: %w", err)
		}
		if n > 0 {
			break // writable: the handshake is over
		}
	}
	soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	r.record("getsockopt", soErr, err)
	if err != nil {
		return fmt.Errorf("getsockopt SO_ERROR: %w", err)
	}
	if soErr != 0 {
		return fmt.Errorf("connect to %s: %w", r.hostport, unix.Errno(soErr))
	}
	return nil
}

// setTimeout is stage 01's: before each blocking call, the socket option
// SO_SNDTIMEO (connect, write) or SO_RCVTIMEO (read) is set to the time left
// before -deadline, since a blocking call has no timeout argument; with no
// time left, the request has timed out.
func setTimeout(r *request, fd int, option int, doing string) error {
	left := r.rn.timeLeft()
	if left == 0 {
		return r.timedOut(doing)
	}
	// setsockopt(2). A timeout of 0 would mean "no limit": keep at least 1µs.
	tv := unix.NsecToTimeval(max(left, time.Microsecond).Nanoseconds())
	err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, option, &tv)
	r.record("setsockopt", 0, err)
	if err != nil {
		return fmt.Errorf("setsockopt: %w", err)
	}
	return nil
}

// sendBlocking is stage 01's sendRequest: write(2) until every byte is sent,
// since one call may take fewer bytes than it was given.
func sendBlocking(r *request, fd int) error {
	for sent := 0; sent < len(r.raw); {
		if err := setTimeout(r, fd, unix.SO_SNDTIMEO, "sending the request"); err != nil {
			return err
		}
		n, err := unix.Write(fd, r.raw[sent:])
		r.record("write", n, err)
		switch {
		case err == unix.EINTR:
			continue // a signal arrived before anything was written: try again
		case err == unix.EAGAIN:
			return r.timedOut("sending the request") // SO_SNDTIMEO ran out
		case err != nil:
			return fmt.Errorf("write: %w", err)
		}
		sent += n
	}
	return nil
}

// receiveBlocking is stage 01's receiveResponse: read(2) until end of file
// or until received says the response is whole by its framing, each call
// sleeping until some bytes are there, or until SO_RCVTIMEO.
func receiveBlocking(r *request, fd int) error {
	buf := make([]byte, 8192)
	for {
		doing := fmt.Sprintf("reading the response (%d bytes so far)", len(r.response))
		if err := setTimeout(r, fd, unix.SO_RCVTIMEO, doing); err != nil {
			return err
		}
		n, err := unix.Read(fd, buf)
		r.record("read", n, err)
		switch {
		case err == unix.EINTR:
			continue // a signal arrived before any byte did: read again
		case err == unix.EAGAIN:
			return r.timedOut(doing) // SO_RCVTIMEO ran out: nothing arrived in time
		case err != nil:
			return fmt.Errorf("read: %w", err)
		case n == 0:
			return nil // end of file: the server closed (finish checks the response is whole)
		}
		if complete, err := r.received(buf[:n]); complete || err != nil {
			return err // whole by its framing, or broken (not HTTP, over -max-bytes…)
		}
	}
}

// closeSocket is stage 01's: every socket is closed exactly once.
func closeSocket(r *request, fd int) {
	err := unix.Close(fd)
	r.record("close", 0, err)
}

// ---------------------------------------------------------------------------
// -model processes: one process per request.

// childEnv marks a child process of -model processes and tells it where to
// connect: main looks for it before anything else.
const childEnv = "STAGE06_CHILD_CONNECT_TO"

// childMaxBytesEnv passes -max-bytes on to a child, which stops reading there.
const childMaxBytesEnv = "STAGE06_CHILD_MAX_BYTES"

// childDeadlineEnv and childDeadlineAtEnv pass -deadline on to a child: the
// flag's value (for its messages), and the moment the run ends as a time of
// day, which parent and child read from the same clock, so that the time a
// child takes to start counts against its request too.
const (
	childDeadlineEnv   = "STAGE06_CHILD_DEADLINE"
	childDeadlineAtEnv = "STAGE06_CHILD_DEADLINE_AT"
)

// The exit codes of a child, so that the parent can tell how its request
// ended: with childFailed or childTimedOut, standard error says why.
const (
	childFailed     = 1
	childTimedOut   = 3 // -deadline passed while the request was going
	childNotStarted = 4 // -deadline had passed before the child was ready to start
)

// executable is the path of this program, looked up once: each child process
// runs this same program again.
var executable = sync.OnceValues(os.Executable)

// fetchInProcess runs one request in a process of its own. It starts this
// program again, as a child that does stage 01's blocking fetch, and waits for
// it to exit. The child gets the address in its environment and the request
// on its standard input; it writes the response to its standard output and,
// if it fails, why to its standard error. Starting it is a fork and an
// execve (Go uses clone(2) with CLONE_VFORK): a whole new Go program, with
// its own memory, runtime and threads, for one request.
//
// The child keeps -deadline itself and says where its request was when it
// passed. A child still running a little later (see childGrace) is killed:
// exec.CommandContext sends it SIGKILL when the context ends.
func fetchInProcess(r *request) error {
	ctx, cancel := context.WithDeadline(context.Background(), r.rn.deadline.Add(childGrace(r.rn.cfg.deadline)))
	defer cancel()
	cmd, stdout, stderr, err := childCommand(ctx, r)
	if err != nil {
		return err
	}
	if err := startInTurn(r, cmd); err != nil {
		return err
	}

	waitErr := cmd.Wait() // sleeps in waitid(2): this goroutine holds a thread until the child exits
	// The child stopped reading where the response ended (its framing, or end
	// of file); its bytes are judged here once, as every model judges them.
	_, parseErr := r.received(stdout.Bytes())
	if err := childError(r, cmd, ctx.Err() != nil, waitErr, stderr.String()); err != nil {
		return err
	}
	return parseErr
}

// childCommand prepares the child for request r: this program, with what it
// needs to know in its environment and the request on its standard input.
func childCommand(ctx context.Context, r *request) (cmd *exec.Cmd, stdout, stderr *bytes.Buffer, err error) {
	exe, err := executable()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("finding this program to start it again: %w", err)
	}
	cmd = exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(),
		childEnv+"="+addrPort(r.addr).String(),
		childMaxBytesEnv+"="+strconv.Itoa(r.rn.cfg.maxBytes),
		childDeadlineEnv+"="+r.rn.cfg.deadline.String(),
		childDeadlineAtEnv+"="+r.rn.deadline.Format(time.RFC3339Nano))
	cmd.Stdin = bytes.NewReader(r.raw)
	stdout, stderr = new(bytes.Buffer), new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	return cmd, stdout, stderr, nil
}

// startTurn makes the children start one at a time. The runtime starts them
// one at a time anyway (each fork holds syscall.ForkLock), and the turn is
// where the clock is looked at: a child whose turn comes after -deadline is
// not started, however many were waiting for their turn then.
var startTurn sync.Mutex

// startInTurn starts the child, in its turn, unless -deadline has passed.
func startInTurn(r *request, cmd *exec.Cmd) error {
	startTurn.Lock()
	defer startTurn.Unlock()
	if r.rn.timeLeft() == 0 {
		return r.notStarted()
	}
	if err := cmd.Start(); err != nil {
		err = startError(err)
		r.record("fork/exec", 0, err)
		return fmt.Errorf("starting a process for the request: %w", err)
	}
	r.record("fork/exec", cmd.Process.Pid, nil)
	return nil
}

// childGrace is how long after -deadline a child still running is killed.
// The child keeps the deadline with stage 01's socket timeouts, but the
// kernel runs those on its coarse timer wheel, which may wake a sleeping
// call up to an eighth of its timeout late (on a kernel with HZ=250, a
// timeout of one second may end 32 ms late, one of 30 s two seconds late),
// and a busy machine may take a while more to run the child then. So the
// parent waits that eighth, and at least half a second, for the child to
// say itself where its request was.
func childGrace(deadline time.Duration) time.Duration {
	return max(deadline/8, 500*time.Millisecond)
}

// startError makes a failure to start a child say what it was. Each start
// takes descriptors: a pipe each for the child's standard input, output and
// error (os/exec makes them), and one more pipe through which the forked
// child tells the parent whether execve worked. When the process is out of
// descriptors, most starts fail with EMFILE ("too many open files"), but
// now and then one says EBADF ("bad file descriptor"). That one got its
// pipes, the last of them the last descriptor RLIMIT_NOFILE allows; in the
// forked child, Go then moves its status pipe to one past the child's
// highest descriptor (forkAndExecInChild1 in syscall/exec_linux.go), and
// dup3(2) refuses that number with EBADF, as it refuses any number the limit
// does not allow. So here EBADF means the same as EMFILE, and is said so,
// with the scaffold's hint about the limit.
func startError(err error) error {
	var pathErr *os.PathError
	if errors.As(err, &pathErr) && pathErr.Err == unix.EBADF {
		pathErr.Err = unix.EMFILE
	}
	return err
}

// childError turns how a child ended into its request's error: nil when it
// exited with 0; its own words when it said why it failed; and when it was
// killed at the deadline (killed is true once the context has ended), a
// timeout at a step the parent cannot know.
func childError(r *request, cmd *exec.Cmd, killed bool, waitErr error, stderr string) error {
	msg := strings.TrimSpace(stderr)
	pid, state := cmd.Process.Pid, cmd.ProcessState
	switch {
	case state == nil: // waitid(2) itself failed
		return fmt.Errorf("waiting for process %d: %w", pid, waitErr)
	case state.Success():
		return nil
	case state.ExitCode() == childNotStarted:
		return r.notStarted()
	case state.ExitCode() == childTimedOut: // the child's words begin "timed out"
		return fmt.Errorf("process %d: %w%s", pid, errTimedOut, strings.TrimPrefix(msg, errTimedOut.Error()))
	case killed && !state.Exited():
		return r.timedOut(fmt.Sprintf("waiting for process %d, which was then killed", pid))
	case msg != "":
		return fmt.Errorf("process %d: %s", pid, msg)
	}
	return fmt.Errorf("process %d failed without saying why: %v", pid, state) // killed by someone else, say
}

// isChild tells whether this process was started by fetchInProcess.
func isChild() bool {
	return os.Getenv(childEnv) != ""
}

// runChild is all that a child process does: read the request, fetch it with
// stage 01's blocking calls, and write what it read to standard output. It
// stops reading where the response ends (received parses it, as in every
// model); whether the bytes are a good response is for the parent to judge
// again. It returns the exit code: 0 when it read the response to its end,
// and otherwise one of the child codes above, with why on standard error, in
// the words the other models use.
func runChild(stdin io.Reader, stdout, stderr io.Writer) int {
	r, err := childRequest(os.Getenv(childEnv))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return childFailed
	}
	if r.rn.timeLeft() == 0 { // this process took until -deadline to start
		fmt.Fprintln(stderr, r.notStarted())
		return childNotStarted
	}
	err = receiveRequest(r, stdin)
	if err == nil {
		err = fetchBlocking(r)
	}
	if _, writeErr := stdout.Write(r.response); err == nil && writeErr != nil { // what arrived, even when the request failed
		err = fmt.Errorf("writing the response to standard output: %w", writeErr)
	}
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "%v%s\n", err, hint(err))
	if errors.Is(err, errTimedOut) {
		return childTimedOut
	}
	return childFailed
}

// childRequest makes the child's one request from its environment; its
// bytes come next, on standard input (receiveRequest). Its calls are counted
// in a run of its own, which no one reports: the parent counts the child as
// one fork/exec.
func childRequest(addr string) (*request, error) {
	server, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: want an IP address and a port", childEnv, addr)
	}
	deadline, err := time.Parse(time.RFC3339Nano, os.Getenv(childDeadlineAtEnv))
	if err != nil {
		return nil, fmt.Errorf("%s=%q: want the time the run ends (RFC 3339)", childDeadlineAtEnv, os.Getenv(childDeadlineAtEnv))
	}
	rn := &run{cfg: &config{stage: stage}, deadline: deadline, calls: map[call]int{}}
	rn.cfg.maxBytes, _ = strconv.Atoi(os.Getenv(childMaxBytesEnv)) // absent or bad: 0, no limit
	rn.cfg.deadline, _ = time.ParseDuration(os.Getenv(childDeadlineEnv))
	r := &request{rn: rn, hostport: addr}
	r.setAddr(sockaddr(server))
	return r, nil
}

// receiveRequest reads the request's bytes from standard input, until the
// parent closes it. This is the first leg of sending the request, from the
// parent to this process, and a large request can take a while on a busy
// machine: if -deadline passes meanwhile, the request timed out there.
func receiveRequest(r *request, stdin io.Reader) error {
	raw, err := io.ReadAll(stdin)
	if err != nil {
		return fmt.Errorf("reading the request from standard input: %w", err)
	}
	r.raw = raw
	if r.rn.timeLeft() == 0 {
		return r.timedOut("sending the request (it was still coming from the parent process)")
	}
	return nil
}

// sockaddr is the socket address connect(2) takes for an IP address and port.
func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}
