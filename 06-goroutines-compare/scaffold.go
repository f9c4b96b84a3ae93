//go:build unix

// scaffold.go is the same, byte for byte, in every stage (a test checks it), so
// `make diff` never shows it. It holds everything that does not change from one
// stage to the next: the command line, the requests to send, reading an HTTP
// response, counting system calls, and the report. The lesson of each stage is
// in main.go, in the function fetchAll; you can read main.go without this file.

package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"blocking-to-epoll/internal/testserver"

	"golang.org/x/sys/unix"
)

// ---------------------------------------------------------------------------
// The command line (the same flags in every stage, so runs compare).

type config struct {
	n        int           // -n: how many requests
	delay    time.Duration // -delay: how long the test server waits before answering each
	addr     string        // -addr: an already running server; "" starts the embedded one
	trace    bool          // -trace: print each system call as it happens
	maxBytes int           // -max-bytes: the largest response to keep; 0 for no limit
	deadline time.Duration // -deadline: how long the whole run may take
	json     bool          // -json: print one JSON object instead of the text report
}

// maxRequests bounds -n. Far fewer can be in flight at once (each holds a
// descriptor, and a process may have some thousands), but every request is
// kept until the report, and this many keep memory to some tens of MB.
const maxRequests = 100_000

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet(stage, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&cfg.n, "n", 5, "number of requests")
	fs.DurationVar(&cfg.delay, "delay", 200*time.Millisecond, "how long the test server waits before answering each request")
	fs.StringVar(&cfg.addr, "addr", "", "host:port of a running HTTP server (default: start the embedded test server)")
	fs.BoolVar(&cfg.trace, "trace", false, "print each system call and its result as it happens (to stderr)")
	fs.BoolVar(&cfg.json, "json", false, "print one JSON object summarising the run instead of the text report")
	fs.IntVar(&cfg.maxBytes, "max-bytes", 16<<20, "the largest response to accept, header included; a longer one fails (0: no limit)")
	fs.DurationVar(&cfg.deadline, "deadline", 30*time.Second, "how long the whole run may take; a request unfinished by then fails as timed out")
	addStageFlags(fs) // a stage's own flags, if it has any (see main.go)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	}
	if cfg.n < 1 || cfg.n > maxRequests {
		return cfg, fmt.Errorf("-n must be from 1 to %d, not %d (every request is kept in memory for the report)", maxRequests, cfg.n)
	}
	if cfg.delay < 0 {
		return cfg, fmt.Errorf("-delay must not be negative, not %v", cfg.delay)
	}
	if cfg.maxBytes < 0 {
		return cfg, fmt.Errorf("-max-bytes must not be negative, not %d", cfg.maxBytes)
	}
	if cfg.deadline <= 0 {
		return cfg, fmt.Errorf("-deadline must be more than 0, not %v", cfg.deadline)
	}
	return cfg, nil
}

// runStage is what main calls: parse the flags, find or start a server, fetch,
// report. It returns the exit code: 0 when every request got a complete
// response, 1 when some failed, 2 when the run could not start.
func runStage(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", stage, err)
		return 2
	}
	var embedded *testserver.Server
	if cfg.addr == "" {
		if embedded, err = testserver.Start("127.0.0.1:0"); err != nil {
			fmt.Fprintf(stderr, "%s: starting the embedded test server: %v\n", stage, err)
			return 2
		}
		defer embedded.Close()
		cfg.addr = embedded.Addr()
	}
	rn, err := newRun(cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", stage, err)
		return 2
	}
	rn.embedded = embedded != nil
	rn.fetch()
	rn.askServerForPeak(embedded)
	if cfg.json {
		err = rn.writeJSON(stdout)
	} else {
		err = rn.writeReport(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: writing the report: %v\n", stage, err)
		return 2
	}
	if rn.failed() > 0 {
		return 1
	}
	return 0
}

// ---------------------------------------------------------------------------
// A run: the requests of one execution, and the count of system calls.

type run struct {
	cfg      config
	tag      string        // run=TAG in every request, so the test server can tell runs apart
	server   unix.Sockaddr // where the requests go (resolved once, before any request starts)
	requests []*request
	traceOut io.Writer // where -trace writes
	embedded bool      // the server is the test server inside this process

	start, end time.Time
	deadline   time.Time     // start + -deadline: a request still going then fails as timed out
	cpu        time.Duration // user+system CPU of this process during the fetch
	maxRSSKB   int64
	peak       int    // the most requests the server had in flight at once
	peakNote   string // why peak is unknown, when it is

	mu    sync.Mutex
	calls map[string]int        // "read" → 12, "read EAGAIN" → 340, …
	keys  map[callResult]string // the names used in calls, made once each
}

func newRun(cfg config, traceOut io.Writer) (*run, error) {
	server, err := resolve(cfg.addr)
	if err != nil {
		return nil, err
	}
	rn := &run{cfg: cfg, tag: newTag(), server: server, traceOut: traceOut, calls: map[string]int{}, keys: map[callResult]string{}}
	for id := 1; id <= cfg.n; id++ {
		host, path := whatToAsk(id, cfg.addr)
		rn.requests = append(rn.requests, rn.newRequest(id, host, path))
	}
	return rn, nil
}

// resolve turns host:port into the socket address connect(2) needs: an
// IPv4 or an IPv6 one, and the socket follows (see family). A host name is
// looked up here, once, before the first request: a name lookup inside an
// event loop would block the whole loop (one of the notes' bugs). A name may
// have several addresses (localhost is often 127.0.0.1 and ::1): then the
// first that accepts a connection is used, as a client of getaddrinfo(3)
// does when it tries each address in turn (the connection is closed at once;
// nothing is sent on it).
func resolve(hostport string) (unix.Sockaddr, error) {
	host, portText, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("-addr %q: want host:port, like 127.0.0.1:8000 or [::1]:8000", hostport)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("-addr %q: port must be a number from 1 to 65535", hostport)
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return nil, fmt.Errorf("-addr %q: cannot resolve %q: %w", hostport, host, err)
	}
	chosen := ips[0] // if none accepts, the requests will say why
	for _, ip := range ips {
		if len(ips) == 1 || accepts(ip, portText) {
			chosen = ip
			break
		}
	}
	if ip4 := chosen.To4(); ip4 != nil {
		return &unix.SockaddrInet4{Port: port, Addr: [4]byte(ip4)}, nil
	}
	return &unix.SockaddrInet6{Port: port, Addr: [16]byte(chosen.To16())}, nil
}

// accepts tells whether something at ip and port accepts a TCP connection.
func accepts(ip net.IP, port string) bool {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(ip.String(), port), time.Second)
	if err == nil {
		conn.Close()
	}
	return err == nil
}

// family is the address family of a socket that can connect to sa: AF_INET
// for an IPv4 address, AF_INET6 for an IPv6 one.
func family(sa unix.Sockaddr) int {
	if _, ok := sa.(*unix.SockaddrInet6); ok {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

// copyOf copies a socket address: unix.Connect writes into the address it
// is given, so requests that connect at the same time need one each.
func copyOf(sa unix.Sockaddr) unix.Sockaddr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		c := *sa
		return &c
	case *unix.SockaddrInet6:
		c := *sa
		return &c
	}
	return sa
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

func newTag() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on the supported systems
	return stage[:2] + "-" + hex.EncodeToString(b)
}

// fetch times the lesson's fetchAll and measures the CPU it used (its own,
// and that of any child processes it waited for: stage 06 can make some).
func (rn *run) fetch() {
	cpuBefore, _ := usage()
	rn.start = time.Now()
	rn.deadline = rn.start.Add(rn.cfg.deadline)
	fetchAll(rn)
	rn.end = time.Now()
	for _, r := range rn.requests {
		if r.end == 0 && r.err == nil { // a bug in the stage: never report it as a success
			r.err = errors.New("never finished: the stage lost this request")
		}
	}
	cpuAfter, rss := usage()
	rn.cpu, rn.maxRSSKB = cpuAfter-cpuBefore, rss
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
	if unix.Getrusage(unix.RUSAGE_SELF, &self) != nil || unix.Getrusage(unix.RUSAGE_CHILDREN, &children) != nil {
		return 0, 0
	}
	for _, ru := range []unix.Rusage{self, children} {
		cpu += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	maxRSSKB = int64(self.Maxrss)
	if runtime.GOOS == "darwin" {
		maxRSSKB /= 1024 // macOS reports bytes, Linux and FreeBSD kilobytes
	}
	return cpu, maxRSSKB
}

// askServerForPeak asks the test server how many requests of this run it was
// handling at once. It asks only the project's own test server: the one in
// this process, or one whose responses carried its mark. Any other server is
// never sent a request the user did not ask for, and the peak stays unknown.
// The question is small, its answer is read up to a small size, and it too
// ends at -deadline: nothing but the report comes after the deadline.
func (rn *run) askServerForPeak(embedded *testserver.Server) {
	rn.peak = -1
	switch {
	case embedded != nil:
		rn.peak = embedded.Stats(rn.tag).PeakInFlight
	case !slices.ContainsFunc(rn.requests, func(r *request) bool { return r.marked }):
		rn.peakNote = "unknown (not the project's test server)"
	default:
		stats, err := testserver.FetchStats(rn.cfg.addr, rn.tag, rn.deadline)
		if err != nil {
			rn.peakNote = "unknown (" + err.Error() + ")"
			return
		}
		rn.peak = stats.PeakInFlight
	}
}

// record counts a system call that belongs to no one request, such as the
// select or epoll_wait of an event loop (see count). Stages 01 and 02 have no
// such call.
//
//lint:ignore U1000 used by the stages that have an event loop
func (rn *run) record(call string, result int, err error) {
	rn.count("loop", call, result, err)
}

// count counts one system call by its name and result, and prints it under
// -trace. Each stage records a call right after making it, for example
//
//	n, err := unix.Read(fd, buf)
//	r.record("read", n, err)
//
// Results that are errors are counted apart ("read EAGAIN"), and so are
// waits that returned with nothing ready ("select timeout"), so a report shows
// how many calls did nothing.
func (rn *run) count(who string, call string, result int, err error) {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	rn.calls[rn.key(call, result, err)]++
	if !rn.cfg.trace {
		return
	}
	outcome := strconv.Itoa(result)
	if err != nil {
		outcome = "-1 " + errnoName(err) + " (" + err.Error() + ")"
	}
	fmt.Fprintf(rn.traceOut, "%9.6f %-7s %-14s = %s\n", time.Since(rn.start).Seconds(), who, call, outcome)
}

// key names what a call returned, such as "read" or "read EAGAIN". The names
// are kept once made: a busy loop records millions of calls, and making a
// new string for each would leave millions behind for the garbage collector.
func (rn *run) key(call string, result int, err error) string {
	errno, bare := err.(syscall.Errno) // what x/sys returns: no allocation to look at it
	if err != nil && !bare {
		return call + " " + errnoName(err) // a wrapped error (stage 06's net errors): rare
	}
	k := callResult{call, errno, err != nil, result == 0 && isWait(call)}
	if name, ok := rn.keys[k]; ok {
		return name
	}
	name := call
	switch {
	case err != nil:
		name = call + " " + errnoName(err)
	case k.timeout:
		name = call + " timeout"
	}
	rn.keys[k] = name
	return name
}

// callResult is what key needs to know about a call's result.
type callResult struct {
	call    string
	errno   syscall.Errno
	failed  bool
	timeout bool
}

// isWait tells the calls that wait for readiness apart from the others.
func isWait(call string) bool {
	return call == "select" || call == "poll" || call == "epoll_wait" || call == "kevent"
}

func errnoName(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if name := unix.ErrnoName(errno); name != "" {
			return name
		}
	}
	return "error"
}

// ---------------------------------------------------------------------------
// One request: the bytes to send, and what came back.

type request struct {
	rn       *run
	id       int
	who      string        // "req 3": how -trace names it
	host     string        // the Host header
	path     string        // what a person asked for, e.g. /s?wd=hello
	addr     unix.Sockaddr // where to connect
	family   int           // the socket's address family: AF_INET or AF_INET6, as addr's
	raw      []byte        // the exact bytes of the request
	hostport string        // the server as -addr names it, for messages

	start, end time.Duration // since the run started
	response   []byte        // every byte read, header included
	parse      framing       // what the response's header says, and how much has come
	err        error         // why it failed; nil when a complete response arrived

	status int    // from the response, once it is over
	body   []byte // its payload; nil when it failed
	marked bool   // it came from the project's test server (its header says so)
}

func (rn *run) newRequest(id int, host, path string) *request {
	// The test server reads run, req and delay from the query; other servers ignore them.
	query := fmt.Sprintf("run=%s&req=%d", rn.tag, id)
	if rn.cfg.delay > 0 {
		query += "&delay=" + rn.cfg.delay.String()
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	raw := "GET " + path + sep + query + " HTTP/1.0\r\nHost: " + host + "\r\n\r\n"
	return &request{rn: rn, id: id, who: "req " + strconv.Itoa(id), host: host, path: path,
		addr: copyOf(rn.server), family: family(rn.server), raw: []byte(raw), hostport: rn.cfg.addr}
}

// record counts a system call made for this request (see run.count).
func (r *request) record(call string, result int, err error) {
	r.rn.count(r.who, call, result, err)
}

// begin marks the moment the request starts (just before its socket is made).
func (r *request) begin() { r.start = time.Since(r.rn.start) }

// received keeps the bytes a read returned and says whether the response is
// now complete. A stage calls it after every read that returned bytes, and
// stops reading once it says complete: the response's framing says so
// (Content-Length bytes of body, or the last chunk of a chunked body), which
// matters for a server that keeps the connection open after answering
// (many ignore "Connection: close"). Otherwise end of file ends the response
// (see finish). err says why the response cannot be a good one: it is not
// HTTP, its framing is broken, or it grew past -max-bytes. The stage then
// stops reading and closes, so a server that streams forever fails that
// request instead of making the process grow without end.
func (r *request) received(data []byte) (complete bool, err error) {
	if limit := r.rn.cfg.maxBytes; limit > 0 && len(r.response)+len(data) > limit {
		return false, fmt.Errorf("the response is larger than -max-bytes (%d bytes): stopped reading it", limit)
	}
	r.response = append(r.response, data...)
	return r.parse.more(r.response)
}

// errTimedOut is in the error of every request that -deadline ended.
var errTimedOut = errors.New("timed out")

// timedOut is the error of a request still going when -deadline passes.
// doing says what it was waiting for: "connecting", "sending the request",
// "reading the response (120 bytes so far)".
func (r *request) timedOut(doing string) error {
	return fmt.Errorf("%w %s: the run's -deadline of %v passed", errTimedOut, doing, r.rn.cfg.deadline)
}

// notStarted is the error of a request whose turn came after -deadline had
// passed: nothing is started after the deadline.
func (r *request) notStarted() error {
	return fmt.Errorf("not started: the run's -deadline of %v passed", r.rn.cfg.deadline)
}

// finish marks the request done: err says why it failed, or nil once the
// stage has read to its end: end of file, or what received called complete.
func (r *request) finish(err error) {
	r.end = time.Since(r.rn.start)
	if err == nil {
		err = r.parse.atEnd(r.response)
	}
	r.status, r.body, r.marked = r.parse.status, r.parse.body, r.parse.marked
	if err != nil {
		r.err = fmt.Errorf("%w%s", err, hint(err))
		r.body = nil
	}
}

// hint adds a sentence for the errors students meet most.
func hint(err error) string {
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
	case errors.Is(err, unix.EMFILE):
		var limit unix.Rlimit
		_ = unix.Getrlimit(unix.RLIMIT_NOFILE, &limit) // on failure the limit shows as 0
		return fmt.Sprintf(" (this process has as many descriptors open as its limit, RLIMIT_NOFILE = %d, allows: ask for fewer requests with -n, use a standalone server (make server), whose ends of the connections then do not count here, or raise the limit with ulimit -n)", limit.Cur)
	case errors.Is(err, unix.ENFILE):
		return " (the whole system is out of file descriptors: see /proc/sys/fs/file-max)"
	}
	return ""
}

// ---------------------------------------------------------------------------
// Reading an HTTP response, as a careful HTTP/1.0 client does (RFC 9112).

// framing follows one response as its bytes arrive: where its header ends,
// what it says about the body, and how much of the body is there. It never
// looks at a byte twice, so a response that comes in thousands of pieces
// costs no more to follow than one that comes whole.
type framing struct {
	scanned   int    // the header has been read up to here: the start of its unfinished line
	bodyStart int    // where the body starts; 0 while the header has not ended
	status    int    // from the status line
	length    int    // Content-Length; -1 when there is none
	encoded   bool   // a Transfer-Encoding: the body is not Content-Length bytes
	chunked   bool   // the last transfer coding is chunked: the body comes in chunks, each with its size
	noBody    bool   // a 1xx, 204 or 304 response: it ends with its header
	marked    bool   // the header says the project's test server sent it
	body      []byte // the payload: for a chunked body, the chunks' bytes without their framing
	complete  bool   // the framing says the response has ended

	chunkAt   int  // chunked: how far the body has been decoded
	chunkLeft int  // chunked: bytes of this chunk still to come; -1 when its line end comes next
	inTrailer bool // chunked: the last chunk has come; trailer lines follow, then an empty line
}

// more looks at the bytes that have arrived (all of them, raw) and says
// whether the response is complete, or what is wrong with it.
func (f *framing) more(raw []byte) (complete bool, err error) {
	if f.complete {
		return true, fmt.Errorf("the server sent %d more bytes after a complete response", len(raw)-f.end())
	}
	if f.bodyStart == 0 {
		if err := f.readHeader(raw); err != nil || f.bodyStart == 0 {
			return false, err // broken, or the header has not ended yet
		}
	}
	switch {
	case f.noBody:
		f.complete = true
	case f.chunked:
		if err := f.readChunks(raw); err != nil {
			return false, err
		}
	case f.length >= 0 && !f.encoded:
		f.body = raw[f.bodyStart:min(len(raw), f.bodyStart+f.length)]
		f.complete = len(f.body) == f.length
	default:
		f.body = raw[f.bodyStart:] // no framing: the body ends at end of file
	}
	if f.complete && len(raw) > f.end() {
		return false, fmt.Errorf("the server sent %d bytes more than the response it framed (%s)", len(raw)-f.end(), f.framedAs())
	}
	return f.complete, nil
}

// end is where a complete response ends in the bytes received.
func (f *framing) end() int {
	if f.chunked {
		return f.chunkAt
	}
	return f.bodyStart + len(f.body)
}

func (f *framing) framedAs() string {
	switch {
	case f.noBody:
		return fmt.Sprintf("a %d response has no body", f.status)
	case f.chunked:
		return "its chunked body had ended"
	}
	return fmt.Sprintf("Content-Length: %d", f.length)
}

// atEnd is called when the stage has stopped reading without an error: at
// end of file, or because more said complete. It says whether what arrived
// is a whole response.
func (f *framing) atEnd(raw []byte) error {
	switch {
	case f.complete:
		return nil
	case len(raw) == 0:
		return errors.New("the server closed the connection without sending anything")
	case f.bodyStart == 0:
		return fmt.Errorf("the response ended inside its header (%d bytes, no blank line)", len(raw))
	case f.chunked:
		return fmt.Errorf("the response was cut short: its chunked body ended before the last chunk (%d bytes of payload arrived)", len(f.body))
	case f.length >= 0 && !f.encoded:
		return fmt.Errorf("the response was cut short: Content-Length says %d bytes, %d arrived", f.length, len(f.body))
	}
	f.complete = true // no framing: end of file is the end of the body
	return nil
}

// readHeader reads the header lines that have arrived whole. The first is
// the status line; the header ends at an empty line. A line may end in CRLF
// or, as RFC 9112 lets a recipient accept, in a bare LF.
func (f *framing) readHeader(raw []byte) error {
	if !couldBeStatusLine(raw) {
		return fmt.Errorf("the server's answer is not HTTP: it starts with %q", raw[:min(len(raw), 24)])
	}
	for {
		lineEnd := bytes.IndexByte(raw[f.scanned:], '\n')
		if lineEnd < 0 {
			return nil // the rest of this line has not arrived yet
		}
		line := bytes.TrimSuffix(raw[f.scanned:f.scanned+lineEnd], []byte("\r"))
		first := f.scanned == 0
		f.scanned += lineEnd + 1
		switch {
		case first:
			f.length = -1
			f.status, _ = strconv.Atoi(string(line[9:12])) // couldBeStatusLine checked the digits
			f.noBody = f.status < 200 || f.status == 204 || f.status == 304
		case len(line) == 0:
			f.bodyStart = f.scanned
			f.chunkAt = f.scanned
			return nil
		default:
			if err := f.headerField(string(line)); err != nil {
				return err
			}
		}
	}
}

// couldBeStatusLine tells whether raw can be the start of a status line such
// as "HTTP/1.1 200 OK": it checks as many of the first 13 bytes as have
// arrived, so bytes that are not HTTP fail at once, not at end of file.
func couldBeStatusLine(raw []byte) bool {
	const shape = "HTTP/9.9 999 " // 9: a digit
	for i := 0; i < min(len(raw), len(shape)); i++ {
		c := raw[i]
		switch {
		case shape[i] != '9':
			if c != shape[i] && !(i == 12 && (c == '\r' || c == '\n')) { // the reason phrase may be missing
				return false
			}
		case c < '0' || c > '9', i == 9 && c == '0': // a status code starts with 1-9
			return false
		}
	}
	return true
}

// headerField reads one "Name: value" line, for the fields that frame the
// body, and the test server's mark.
func (f *framing) headerField(line string) error {
	if line[0] == ' ' || line[0] == '\t' {
		return nil // an obsolete continuation of the previous field's value
	}
	name, value, found := strings.Cut(line, ":")
	if !found {
		return fmt.Errorf("the response's header has a line that is not a field: %q", line[:min(len(line), 40)])
	}
	value = strings.TrimSpace(value)
	switch {
	case strings.EqualFold(name, "Transfer-Encoding"):
		codings := strings.Split(value, ",")
		f.encoded = true // Content-Length no longer frames the body (RFC 9112, 6.3)
		f.chunked = strings.EqualFold(strings.TrimSpace(codings[len(codings)-1]), "chunked")
	case strings.EqualFold(name, "Content-Length"):
		for _, v := range strings.Split(value, ",") { // "5, 5" is allowed: the same length twice
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 {
				return fmt.Errorf("the response's Content-Length %q is not a length", value)
			}
			if f.length >= 0 && n != f.length {
				return fmt.Errorf("the response gives two different Content-Lengths (%d and %d)", f.length, n)
			}
			f.length = n
		}
	case strings.EqualFold(name, testserver.MarkHeader):
		f.marked = value == testserver.MarkValue
	}
	return nil
}

// readChunks decodes what has arrived of a chunked body: each chunk is its
// size in hex on a line of its own (perhaps with ";extensions"), the bytes,
// and a line end; a chunk of size 0 is the last, followed by optional trailer
// fields and an empty line. Only the chunks' bytes are the body.
func (f *framing) readChunks(raw []byte) error {
	for !f.complete {
		if f.chunkLeft > 0 { // inside a chunk's bytes
			take := min(f.chunkLeft, len(raw)-f.chunkAt)
			if take == 0 {
				return nil
			}
			f.body = append(f.body, raw[f.chunkAt:f.chunkAt+take]...)
			f.chunkAt += take
			f.chunkLeft -= take
			if f.chunkLeft == 0 {
				f.chunkLeft = -1 // the line end after the chunk's bytes comes next
			}
			continue
		}
		lineEnd := bytes.IndexByte(raw[f.chunkAt:], '\n')
		if lineEnd < 0 {
			return nil // the line has not arrived whole yet
		}
		line := string(bytes.TrimSuffix(raw[f.chunkAt:f.chunkAt+lineEnd], []byte("\r")))
		f.chunkAt += lineEnd + 1
		switch {
		case f.chunkLeft == -1: // the end of a chunk's bytes
			if line != "" {
				return fmt.Errorf("the response's chunked body is broken: a chunk is longer than its size says")
			}
			f.chunkLeft = 0
		case f.inTrailer:
			f.complete = line == "" // trailer fields are skipped; an empty line ends the body
		default: // a chunk's size line
			size, _, _ := strings.Cut(line, ";")
			n, err := strconv.ParseInt(strings.TrimSpace(size), 16, 32)
			if err != nil || n < 0 {
				return fmt.Errorf("the response's chunked body is broken: %q is not a chunk size", line[:min(len(line), 40)])
			}
			f.chunkLeft, f.inTrailer = int(n), n == 0
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// The report.

func (rn *run) failed() int {
	failed := 0
	for _, r := range rn.requests {
		if r.err != nil {
			failed++
		}
	}
	return failed
}

func (rn *run) bodyBytes() int {
	total := 0
	for _, r := range rn.requests {
		total += len(r.body)
	}
	return total
}

func (rn *run) wall() time.Duration { return rn.end.Sub(rn.start) }

// achievedConcurrency is the sum of the requests' durations over the wall time:
// about 1 when requests run one after another, about n when all overlap.
func (rn *run) achievedConcurrency() float64 {
	var busy time.Duration
	for _, r := range rn.requests {
		busy += r.end - r.start
	}
	if rn.wall() <= 0 {
		return 0
	}
	return float64(busy) / float64(rn.wall())
}

// wasted counts the calls that did nothing: a read or write that returned
// EAGAIN ("try again"), a connect that returned EALREADY ("still
// connecting"), and a wait that timed out with nothing ready.
func (rn *run) wasted() int {
	total := 0
	for key, count := range rn.calls {
		if strings.HasSuffix(key, " EAGAIN") || strings.HasSuffix(key, " EALREADY") || strings.HasSuffix(key, " timeout") {
			total += count
		}
	}
	return total
}

// shownRequests is how many per-request lines the text report prints in full.
const shownRequests = 20

func (rn *run) writeReport(w io.Writer) error {
	where, cpuNote := "the server", ""
	if rn.embedded {
		where, cpuNote = "the test server embedded in this process", " (embedded server included)"
	}
	fmt.Fprintf(w, "%s: %d requests to %s at %s, each asked to wait %v\n\n", stage, rn.cfg.n, where, rn.cfg.addr, rn.cfg.delay)
	rn.writeRequestLines(w)
	fmt.Fprintln(w)
	testserver.DrawTimeline(w, rn.spans(), 50)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%d ok, %d failed, %d body bytes · wall %s · cpu %s%s\n",
		rn.cfg.n-rn.failed(), rn.failed(), rn.bodyBytes(), seconds(rn.wall()), seconds(rn.cpu), cpuNote)
	fmt.Fprintf(w, "achieved concurrency %.2f (time spent in requests / wall) · peak in flight at the server %s\n",
		rn.achievedConcurrency(), rn.peakText())
	_, err := fmt.Fprintf(w, "system calls: %s · wasted (EAGAIN, EALREADY, timeout) %d\n", rn.callsText(), rn.wasted())
	return err
}

// writeRequestLines prints one line per request; after the first
// shownRequests, only a count of each outcome, so a run of thousands stays
// readable (-json lists every request).
func (rn *run) writeRequestLines(w io.Writer) {
	fmt.Fprintf(w, "  req  %-38s status %8s  %15s  %7s\n", "request", "body", "start → end", "took")
	var hidden []string // the outcomes not printed, in order of first appearance
	hiddenCount := map[string]int{}
	for i, r := range rn.requests {
		if i >= shownRequests {
			outcome := "succeeded"
			if r.err != nil {
				outcome = "failed: " + r.err.Error()
			}
			if hiddenCount[outcome] == 0 {
				hidden = append(hidden, outcome)
			}
			hiddenCount[outcome]++
			continue
		}
		what := fmt.Sprintf("GET %s (%s)", r.path, r.host)
		if r.err != nil {
			fmt.Fprintf(w, "%5d  %-38s FAILED: %v\n", r.id, what, r.err)
			continue
		}
		span := fmt.Sprintf("%s → %s", seconds(r.start), seconds(r.end))
		fmt.Fprintf(w, "%5d  %-38s %6d %8s  %15s  %7s\n", r.id, what, r.status, strconv.Itoa(len(r.body))+" B", span, millis(r.end-r.start))
	}
	for _, outcome := range hidden {
		fmt.Fprintf(w, "  …    %d more %s\n", hiddenCount[outcome], outcome)
	}
}

func (rn *run) spans() []testserver.Span {
	spans := make([]testserver.Span, len(rn.requests))
	for i, r := range rn.requests {
		spans[i] = testserver.Span{Label: strconv.Itoa(r.id), Start: r.start, End: r.end, Failed: r.err != nil}
	}
	return spans
}

func (rn *run) peakText() string {
	if rn.peak < 0 {
		return rn.peakNote
	}
	return strconv.Itoa(rn.peak)
}

// callOrder is the order in which the report lists system calls: roughly the
// order in which a request makes them.
var callOrder = []string{"fork/exec", "epoll_create1", "kqueue", "socket", "fcntl", "setsockopt", "dial", "connect", "epoll_ctl ADD", "getsockopt", "write", "epoll_ctl MOD", "read", "select", "poll", "epoll_wait", "kevent", "epoll_ctl DEL", "close"}

// callsText lists the system calls in callOrder, each result kind apart.
func (rn *run) callsText() string {
	rank := func(key string) int {
		best, bestLength := len(callOrder), 0 // calls not in the list go last
		for i, call := range callOrder {
			if (key == call || strings.HasPrefix(key, call+" ")) && len(call) > bestLength {
				best, bestLength = i, len(call)
			}
		}
		return best
	}
	keys := make([]string, 0, len(rn.calls))
	for key := range rn.calls {
		keys = append(keys, key)
	}
	sort.Slice(keys, func(i, j int) bool {
		if ri, rj := rank(keys[i]), rank(keys[j]); ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, key := range keys {
		parts[i] = fmt.Sprintf("%s %d", key, rn.calls[key])
	}
	return strings.Join(parts, ", ")
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }
func millis(d time.Duration) string  { return fmt.Sprintf("%dms", d.Milliseconds()) }

// summary is what -json prints.
type summary struct {
	Stage               string         `json:"stage"`
	Server              string         `json:"server"`
	Requests            int            `json:"requests"`
	DelayMS             float64        `json:"delay_ms"`
	DeadlineMS          float64        `json:"deadline_ms"`
	OK                  int            `json:"ok"`
	Failed              int            `json:"failed"`
	Bytes               int            `json:"bytes"`
	WallMS              float64        `json:"wall_ms"`
	CPUMS               float64        `json:"cpu_ms"`
	MaxRSSKB            int64          `json:"max_rss_kb"`
	Syscalls            map[string]int `json:"syscalls"`
	Wasted              int            `json:"wasted_calls"`
	AchievedConcurrency float64        `json:"achieved_concurrency"`
	PeakInFlight        *int           `json:"peak_in_flight"` // null when the server does not report it
	Results             []result       `json:"results"`
}

type result struct {
	ID      int     `json:"id"`
	Host    string  `json:"host"`
	Path    string  `json:"path"`
	Status  int     `json:"status"`
	Bytes   int     `json:"bytes"`
	StartMS float64 `json:"start_ms"`
	EndMS   float64 `json:"end_ms"`
	Error   string  `json:"error,omitempty"`
}

func (rn *run) writeJSON(w io.Writer) error {
	s := summary{
		Stage: stage, Server: rn.cfg.addr, Requests: rn.cfg.n, DelayMS: ms(rn.cfg.delay), DeadlineMS: ms(rn.cfg.deadline),
		OK: rn.cfg.n - rn.failed(), Failed: rn.failed(), Bytes: rn.bodyBytes(),
		WallMS: ms(rn.wall()), CPUMS: ms(rn.cpu), MaxRSSKB: rn.maxRSSKB,
		Syscalls: rn.calls, Wasted: rn.wasted(), AchievedConcurrency: rn.achievedConcurrency(),
	}
	if rn.peak >= 0 {
		s.PeakInFlight = &rn.peak
	}
	for _, r := range rn.requests {
		res := result{ID: r.id, Host: r.host, Path: r.path, Status: r.status, Bytes: len(r.body), StartMS: ms(r.start), EndMS: ms(r.end)}
		if r.err != nil {
			res.Error = r.err.Error()
		}
		s.Results = append(s.Results, res)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
