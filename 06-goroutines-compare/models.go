//go:build unix

// models.go holds the two other ways -model can run each request, the ones
// the notes' summary (总结) names besides asynchronous I/O: a thread per
// request (-model threads) and a process per request (-model processes).
// Both make stage 01's blocking system calls; the functions that make them
// are stage 01's fetch, sendRequest, receiveResponse and closeSocket, renamed.

package main

import (
	"bytes"
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
// there. It is never undone, so when the goroutine ends the runtime ends the
// thread with it, as a C thread ends when its function returns. Each blocking
// system call puts its thread to sleep in the kernel; the kernel's scheduler,
// not Go's, wakes it. (A goroutine in a raw blocking system call holds its
// thread even without LockOSThread; locking makes the thread its own for the
// whole request and lets it end with the request.)
func fetchOnThread(r *request) error {
	if threadsInUse.Add(1) > threadLimit {
		threadsInUse.Add(-1)
		return fmt.Errorf("not started: %d requests already have a thread each: %w", threadLimit, errTooManyThreads)
	}
	defer threadsInUse.Add(-1)
	runtime.LockOSThread()
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
// its own (-model processes).
func fetchBlocking(r *request) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
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
// EINPROGRESS (EALREADY when called again after a signal's EINTR).
func connectBlocking(r *request, fd int) error {
	for {
		if err := sleepAtMost(r, fd, unix.SO_SNDTIMEO, "connecting"); err != nil {
			return err
		}
		err := unix.Connect(fd, r.addr)
		r.record("connect", 0, err)
		switch err {
		case nil:
			return nil
		case unix.EINTR:
			continue // a signal arrived during the handshake: wait for it again
		case unix.EINPROGRESS, unix.EALREADY:
			return r.timedOut("connecting")
		}
		return fmt.Errorf("connect to %s: %w", r.target, err)
	}
}

// sleepAtMost is stage 01's: before each blocking call, the socket option
// SO_SNDTIMEO (connect, write) or SO_RCVTIMEO (read) is set to the time left
// before -deadline; with no time left, the request has timed out.
func sleepAtMost(r *request, fd int, option int, doing string) error {
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
		if err := sleepAtMost(r, fd, unix.SO_SNDTIMEO, "sending the request"); err != nil {
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

// receiveBlocking is stage 01's receiveResponse: read(2) until end of file,
// each call sleeping until some bytes are there, or until SO_RCVTIMEO.
func receiveBlocking(r *request, fd int) error {
	buf := make([]byte, 8192)
	for {
		doing := fmt.Sprintf("reading the response (%d bytes so far)", len(r.response))
		if err := sleepAtMost(r, fd, unix.SO_RCVTIMEO, doing); err != nil {
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
			return nil // end of file: the server closed, the response is complete
		}
		if err := r.checkSize(len(r.response) + n); err != nil {
			return err // a huge or endless response: stop here (-max-bytes)
		}
		r.received(buf[:n])
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

// childDeadlineEnv and childTimeLeftEnv pass -deadline on to a child: the
// flag's value (for its messages) and the time the run has left.
const (
	childDeadlineEnv = "STAGE06_CHILD_DEADLINE"
	childTimeLeftEnv = "STAGE06_CHILD_TIME_LEFT"
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
func fetchInProcess(r *request) error {
	exe, err := executable()
	if err != nil {
		return fmt.Errorf("finding this program to start it again: %w", err)
	}
	server := netip.AddrPortFrom(netip.AddrFrom4(r.addr.Addr), uint16(r.addr.Port))
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+server.String(), childMaxBytesEnv+"="+strconv.Itoa(r.rn.cfg.maxBytes),
		childDeadlineEnv+"="+r.rn.cfg.deadline.String(), childTimeLeftEnv+"="+r.rn.timeLeft().String())
	cmd.Stdin = bytes.NewReader(r.raw)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		r.record("fork/exec", 0, err)
		return fmt.Errorf("starting a process for the request: %w", err)
	}
	r.record("fork/exec", cmd.Process.Pid, nil)

	err = cmd.Wait() // sleeps in waitid(2): this goroutine holds a thread until the child exits
	r.received(stdout.Bytes())
	return childError(cmd.Process.Pid, err, stderr.String())
}

// childError turns how a child ended into its request's error: nil when it
// exited with 0, its own words when it said why it failed.
func childError(pid int, waitErr error, stderr string) error {
	msg := strings.TrimSpace(stderr)
	switch {
	case waitErr == nil:
		return nil
	case msg != "":
		return fmt.Errorf("process %d: %s", pid, msg)
	}
	return fmt.Errorf("process %d failed without saying why: %w", pid, waitErr) // killed by a signal, say
}

// isChild tells whether this process was started by fetchInProcess.
func isChild() bool {
	return os.Getenv(childEnv) != ""
}

// runChild is all that a child process does: read the request, fetch it with
// stage 01's blocking calls, and write the response. It returns the exit
// code: 0 when it read the response to its end, 1 when not, and then
// standard error says why, in the words the other models use. Whether the
// bytes are a good HTTP response is for the parent to judge, as in every
// other model.
func runChild(stdin io.Reader, stdout, stderr io.Writer) int {
	if err := childFetch(os.Getenv(childEnv), stdin, stdout); err != nil {
		fmt.Fprintf(stderr, "%v%s\n", err, hint(err))
		return 1
	}
	return 0
}

// childFetch does the child's one request.
func childFetch(addr string, stdin io.Reader, stdout io.Writer) error {
	server, err := netip.ParseAddrPort(addr)
	if err != nil || !server.Addr().Is4() {
		return fmt.Errorf("%s=%q: want an IPv4 address and a port", childEnv, addr)
	}
	raw, err := io.ReadAll(stdin)
	if err != nil {
		return fmt.Errorf("reading the request from standard input: %w", err)
	}
	// The child's calls are counted in a run of its own, which no one
	// reports: the parent counts the child as one fork/exec.
	rn := &run{calls: map[string]int{}, keys: map[callResult]string{}}
	rn.cfg.maxBytes, _ = strconv.Atoi(os.Getenv(childMaxBytesEnv)) // absent or bad: 0, no limit
	rn.cfg.deadline, _ = time.ParseDuration(os.Getenv(childDeadlineEnv))
	timeLeft, err := time.ParseDuration(os.Getenv(childTimeLeftEnv))
	if err != nil {
		return fmt.Errorf("%s=%q: want the time the run has left, such as 2.5s", childTimeLeftEnv, os.Getenv(childTimeLeftEnv))
	}
	rn.deadline = time.Now().Add(timeLeft)
	sa := &unix.SockaddrInet4{Port: int(server.Port()), Addr: server.Addr().As4()}
	r := &request{rn: rn, addr: sa, raw: raw, target: addr}
	fetchErr := fetchBlocking(r)
	_, writeErr := stdout.Write(r.response) // what arrived, even when the request failed
	if fetchErr != nil {
		return fetchErr
	}
	if writeErr != nil {
		return fmt.Errorf("writing the response to standard output: %w", writeErr)
	}
	return nil
}
