//go:build unix

// The scaffold is the library every lesson calls, the same byte for byte in
// every stage (a test checks it), so make diff never shows it. This file
// holds the flags every stage shares, a run and its requests, and the count
// of system calls; scaffold_http.go reads HTTP responses; scaffold_report.go
// prints what happened. Read main.go first: a lesson reads without them.

package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"blocking-to-epoll/internal/testserver"

	"golang.org/x/sys/unix"
)

// config is what the flags every stage shares say, so that runs compare.
type config struct {
	stage    string        // the stage's name, for messages and the report
	n        int           // -n: how many requests
	delay    time.Duration // -delay: how long the test server waits before answering each
	addr     string        // -addr: an already running server; "" starts the embedded one
	trace    bool          // -trace: print each system call as it happens
	json     bool          // -json: print one JSON object instead of the text report
	maxBytes int           // -max-bytes: the largest response to keep; 0 for no limit
	deadline time.Duration // -deadline: how long the whole run may take
}

// maxRequests bounds -n: every request is kept until the report.
const maxRequests = 100_000

// sharedFlags makes a stage's command line with the flags every stage takes.
// The stage declares its own on it, then calls newRun.
func sharedFlags(stage string, stderr io.Writer) (*flag.FlagSet, *config) {
	cfg := &config{stage: stage}
	fs := flag.NewFlagSet(stage, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&cfg.n, "n", 5, "number of requests (at most 100000)")
	fs.DurationVar(&cfg.delay, "delay", 200*time.Millisecond, "how long the test server waits before answering each request")
	fs.StringVar(&cfg.addr, "addr", "", "host:port of a running HTTP server, IPv4 or IPv6 (default: start the embedded test server)")
	fs.BoolVar(&cfg.trace, "trace", false, "print each system call and its result as it happens (to stderr)")
	fs.BoolVar(&cfg.json, "json", false, "print one JSON object summarising the run instead of the text report")
	fs.IntVar(&cfg.maxBytes, "max-bytes", 16<<20, "the largest response to accept, header included; a longer one fails (0: no limit)")
	fs.DurationVar(&cfg.deadline, "deadline", 30*time.Second, "how long the whole run may take; a request unfinished by then fails as timed out")
	return fs, cfg
}

// newRun reads the command line and prepares the run it asks for. -h comes
// back as flag.ErrHelp.
func newRun(fs *flag.FlagSet, cfg *config, args []string) (*run, error) {
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	case cfg.n < 1 || cfg.n > maxRequests:
		return nil, fmt.Errorf("-n must be from 1 to %d, not %d (every request is kept in memory for the report)", maxRequests, cfg.n)
	case cfg.delay < 0:
		return nil, fmt.Errorf("-delay must not be negative, not %v", cfg.delay)
	case cfg.maxBytes < 0:
		return nil, fmt.Errorf("-max-bytes must not be negative, not %d", cfg.maxBytes)
	case cfg.deadline <= 0:
		return nil, fmt.Errorf("-deadline must be more than 0, not %v", cfg.deadline)
	}
	return prepare(cfg, fs.Output())
}

// cannotStart says why a run could not start, and returns the exit code: 2,
// or 0 for -h (the flag package has printed the help).
func cannotStart(stderr io.Writer, stage string, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "%s: %v\n", stage, err)
	return 2
}

// ---------------------------------------------------------------------------
// A run: the requests of one execution, and the count of its system calls.

type run struct {
	cfg      *config
	tag      string        // run=TAG in every request, so the test server can tell runs apart
	server   unix.Sockaddr // where the requests go, resolved once before any starts
	embedded *testserver.Server
	requests []*request
	traceOut io.Writer // where -trace writes

	start, end time.Time
	deadline   time.Time     // start + -deadline: a request still going then fails as timed out
	cpu        time.Duration // user+system CPU of this process (and its waited-for children)
	maxRSSKB   int64         // this process's peak resident memory
	peak       int           // the most requests the server had in flight at once; -1: unknown
	peakNote   string        // why the peak is unknown

	mu    sync.Mutex
	calls map[call]int // how often each system call returned each kind of result
	order []call       // the calls in the order they first happened, for the report
}

// prepare makes the run that cfg describes: it starts the embedded test
// server unless -addr names a server, resolves the server's address, and
// makes the requests. Close the run when done with it.
func prepare(cfg *config, traceOut io.Writer) (*run, error) {
	rn := &run{cfg: cfg, tag: newTag(cfg.stage), traceOut: traceOut, calls: map[call]int{}}
	if cfg.addr == "" {
		srv, err := testserver.Start("127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("starting the embedded test server: %w", err)
		}
		rn.embedded, cfg.addr = srv, srv.Addr()
	}
	var err error
	if rn.server, err = resolve(cfg.addr); err != nil {
		rn.close()
		return nil, err
	}
	for id := 1; id <= cfg.n; id++ {
		host, path := whatToAsk(id, cfg.addr)
		rn.requests = append(rn.requests, rn.newRequest(id, host, path))
	}
	return rn, nil
}

// close stops the embedded test server, if there is one.
func (rn *run) close() {
	if rn.embedded != nil {
		rn.embedded.Close()
	}
}

func newTag(stage string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on the supported systems
	return strings.SplitN(stage, "-", 2)[0] + "-" + hex.EncodeToString(b)
}

// resolve turns host:port into the socket address connect(2) needs, IPv4 or
// IPv6. A host name is looked up here, once: a lookup inside an event loop
// would stop the whole loop (one of the notes' bugs). A name may have several
// addresses (localhost: 127.0.0.1 and ::1); then the first that accepts a
// connection is used, as a getaddrinfo(3) client tries each in turn.
func resolve(hostport string) (unix.Sockaddr, error) {
	host, portText, err := net.SplitHostPort(hostport)
	port, _ := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("-addr %q: want host:port with a port from 1 to 65535, like 127.0.0.1:8000 or [::1]:8000", hostport)
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return nil, fmt.Errorf("-addr %q: cannot resolve %q: %w", hostport, host, err)
	}
	chosen := ips[0] // if none accepts, the requests will say why
	for _, ip := range ips {
		if len(ips) > 1 && accepts(net.JoinHostPort(ip.String(), portText)) {
			chosen = ip
			break
		}
	}
	if ip4 := chosen.To4(); ip4 != nil {
		return &unix.SockaddrInet4{Port: port, Addr: [4]byte(ip4)}, nil
	}
	return &unix.SockaddrInet6{Port: port, Addr: [16]byte(chosen.To16())}, nil
}

// accepts tells whether something accepts a TCP connection at addr. The
// connection is closed at once: nothing is sent on it.
func accepts(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		conn.Close()
	}
	return err == nil
}

// startClock starts the run's clock, and its deadline with it.
func (rn *run) startClock() {
	rn.cpu, _ = usage()
	rn.start = time.Now()
	rn.deadline = rn.start.Add(rn.cfg.deadline)
}

// stopClock stops the clock, measures what the run cost, and asks the server
// for its peak in flight.
func (rn *run) stopClock() {
	rn.end = time.Now()
	cpu, rss := usage()
	rn.cpu, rn.maxRSSKB = cpu-rn.cpu, rss
	for _, r := range rn.requests {
		if r.end == 0 && r.err == nil { // a bug in the stage: never report it as a success
			r.err = errors.New("never finished: the stage lost this request")
		}
	}
	rn.askServerForPeak()
}

// timeLeft is how long the run has until -deadline: 0 once it has passed.
// Every stage stops waiting then, so that a server that never answers, or
// stops half-way, cannot keep the run going for ever.
func (rn *run) timeLeft() time.Duration {
	return max(time.Until(rn.deadline), 0)
}

// usage reads getrusage(2): the CPU time this process and its waited-for
// children have used so far, and this process's peak resident memory.
func usage() (cpu time.Duration, maxRSSKB int64) {
	var self, children unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &self) // it fails only for a bad argument
	_ = unix.Getrusage(unix.RUSAGE_CHILDREN, &children)
	for _, ru := range []unix.Rusage{self, children} {
		cpu += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if runtime.GOOS == "darwin" {
		return cpu, int64(self.Maxrss) / 1024 // macOS reports bytes, the others kilobytes
	}
	return cpu, int64(self.Maxrss)
}

// askServerForPeak asks the test server how many requests of this run it had
// in flight at once: only the project's own server (the embedded one, or one
// whose responses carried its mark), so that no other server is sent a
// request the user did not ask for. The question ends at -deadline too.
func (rn *run) askServerForPeak() {
	rn.peak, rn.peakNote = -1, "unknown (not the project's test server)"
	switch {
	case rn.embedded != nil:
		rn.peak = rn.embedded.Stats(rn.tag).PeakInFlight
	case rn.marked():
		stats, err := testserver.FetchStats(rn.cfg.addr, rn.tag, rn.deadline)
		if err != nil {
			rn.peakNote = "unknown (" + err.Error() + ")"
			return
		}
		rn.peak = stats.PeakInFlight
	}
}

// marked tells whether some response came with the test server's mark.
func (rn *run) marked() bool {
	for _, r := range rn.requests {
		if r.parse.marked {
			return true
		}
	}
	return false
}

// call is one kind of result of one system call, as the report counts it:
// "read", "read EAGAIN", "epoll_wait timeout" (a wait that found nothing).
type call struct {
	name  string
	errno syscall.Errno // what it failed with; 0 if it did not
	other bool          // it failed with an error that is not an errno
	empty bool          // a wait that returned with nothing ready
}

func (c call) String() string {
	switch {
	case c.errno != 0:
		return c.name + " " + errnoName(c.errno)
	case c.other:
		return c.name + " error"
	case c.empty:
		return c.name + " timeout"
	}
	return c.name
}

// record counts a system call that belongs to no one request, such as the
// select or epoll_wait of an event loop. Stages 01 and 02 have none.
//
//lint:ignore U1000 used by the stages that have an event loop
func (rn *run) record(name string, result int, err error) {
	rn.count("loop", name, result, err)
}

// count counts one system call by its name and kind of result, and prints
// it under -trace. Each stage records a call right after making it:
//
//	n, err := unix.Read(fd, buf)
//	r.record("read", n, err)
func (rn *run) count(who, name string, result int, err error) {
	c := call{name: name, empty: err == nil && result == 0 && isWait(name)}
	if err != nil {
		c.errno, c.other = errnoOf(err)
	}
	rn.mu.Lock()
	defer rn.mu.Unlock()
	if rn.calls[c] == 0 {
		rn.order = append(rn.order, c)
	}
	rn.calls[c]++
	if rn.cfg.trace {
		outcome := strconv.Itoa(result)
		if err != nil {
			outcome = "-1 " + strings.TrimPrefix(c.String(), name+" ") + " (" + err.Error() + ")"
		}
		fmt.Fprintf(rn.traceOut, "%9.6f %-7s %-14s = %s\n", time.Since(rn.start).Seconds(), who, name, outcome)
	}
}

// errnoOf is the errno that err is or wraps; other is true when it has
// none. (Its own variable, not a field of count's call: errors.As needs a
// pointer, and a pointer into call would make every call counted cost an
// allocation, not only the ones that failed.)
func errnoOf(err error) (errno syscall.Errno, other bool) {
	if errors.As(err, &errno) {
		return errno, false
	}
	return 0, true
}

// counts is how often each kind of result came, by the report's names.
func (rn *run) counts() map[string]int {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	counts := map[string]int{}
	for c, n := range rn.calls {
		counts[c.String()] += n
	}
	return counts
}

// isWait tells the calls that wait for readiness apart from the others.
func isWait(name string) bool {
	return name == "select" || name == "poll" || name == "epoll_wait" || name == "kevent"
}

func errnoName(errno syscall.Errno) string {
	if name := unix.ErrnoName(errno); name != "" {
		return name
	}
	return "errno " + strconv.Itoa(int(errno))
}

// ---------------------------------------------------------------------------
// One request: the bytes to send, and what came back.

type request struct {
	rn       *run
	id       int
	who      string        // "req 3": how -trace names it
	host     string        // the Host header
	path     string        // what a person asked for, e.g. /s?wd=hello
	addr     unix.Sockaddr // where to connect: a copy each, since unix.Connect writes into it
	family   int           // the socket's address family: AF_INET or AF_INET6, as addr's
	raw      []byte        // the exact bytes of the request
	hostport string        // the server as -addr names it, for messages

	start, end time.Duration // since the run started
	response   []byte        // every byte read, header included
	parse      framing       // what the response's header says, and how much has come
	err        error         // why it failed; nil when a complete response arrived
}

// whatToAsk picks request id's Host header and path: the notes' two searches
// first, then the test server's generic page.
func whatToAsk(id int, addr string) (host, path string) {
	switch id {
	case 1:
		return "www.baidu.com", "/s?wd=hello"
	case 2:
		return "www.so.com", "/s?q=hello"
	}
	return addr, "/page"
}

// newRequest makes a request for path, with that Host header. The test server
// reads run, req and delay from the query; other servers ignore them.
func (rn *run) newRequest(id int, host, path string) *request {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	// Made in one buffer of the right size: with 100,000 requests, every
	// byte made and dropped here is memory the run's peak may count.
	raw := make([]byte, 0, 80+len(path)+len(rn.tag)+len(host))
	raw = fmt.Appendf(raw, "GET %s%srun=%s&req=%d&delay=%v HTTP/1.0\r\nHost: %s\r\n\r\n", path, sep, rn.tag, id, rn.cfg.delay, host)
	r := &request{rn: rn, id: id, who: "req " + strconv.Itoa(id), host: host, path: path, hostport: rn.cfg.addr, raw: raw}
	r.setAddr(rn.server)
	return r
}

// setAddr points the request at sa, and its socket's family with it.
func (r *request) setAddr(sa unix.Sockaddr) {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		c := *sa
		r.addr, r.family = &c, unix.AF_INET
	case *unix.SockaddrInet6:
		c := *sa
		r.addr, r.family = &c, unix.AF_INET6
	}
}

// record counts a system call made for this request (see run.count).
func (r *request) record(name string, result int, err error) {
	r.rn.count(r.who, name, result, err)
}

// begin marks the moment the request starts (just before its socket is made).
func (r *request) begin() { r.start = time.Since(r.rn.start) }

// errTimedOut is in the error of every request that -deadline ended.
var errTimedOut = errors.New("timed out")

// timedOut is the error of a request still going when -deadline passes.
// doing says what it was waiting for: "connecting", "sending the request",
// "reading the response (120 bytes so far)".
func (r *request) timedOut(doing string) error {
	return fmt.Errorf("%w %s: the run's -deadline of %v passed", errTimedOut, doing, r.rn.cfg.deadline)
}

// notStarted is the error of a request whose turn came after -deadline.
func (r *request) notStarted() error {
	return fmt.Errorf("not started: the run's -deadline of %v passed", r.rn.cfg.deadline)
}

// finish marks the request done: err says why it failed, or nil once the
// stage has read to the response's end (received said so, or end of file).
func (r *request) finish(err error) {
	r.end = time.Since(r.rn.start)
	if err == nil {
		err = r.parse.atEnd(r.response)
	}
	if err != nil {
		r.err = fmt.Errorf("%w%s", err, hint(err))
	}
}

// hint adds a sentence for the errors students meet most.
func hint(err error) string {
	var limit unix.Rlimit
	switch {
	case errors.Is(err, unix.ECONNREFUSED):
		return " (nothing is listening on that port)"
	case errors.Is(err, unix.ECONNRESET):
		return " (the server aborted the connection with a TCP reset)"
	case errors.Is(err, unix.EPIPE):
		return " (the server closed the connection before the request was sent)"
	case errors.Is(err, unix.ETIMEDOUT):
		return " (the server did not answer the TCP handshake)"
	case errors.Is(err, unix.EHOSTUNREACH), errors.Is(err, unix.ENETUNREACH):
		return " (no route to that address)"
	case errors.Is(err, unix.EADDRNOTAVAIL):
		return " (no local port left to connect from: too many connections to one server at once)"
	case errors.Is(err, unix.EMFILE) && unix.Getrlimit(unix.RLIMIT_NOFILE, &limit) == nil:
		return fmt.Sprintf(" (this process has as many descriptors open as its limit, RLIMIT_NOFILE = %d, allows: "+
			"ask for fewer requests with -n, use a standalone server (make server), whose ends of the connections "+
			"then do not count here, or raise the limit with ulimit -n)", limit.Cur)
	case errors.Is(err, unix.ENFILE):
		return " (the whole system is out of file descriptors: see /proc/sys/fs/file-max)"
	}
	return ""
}
