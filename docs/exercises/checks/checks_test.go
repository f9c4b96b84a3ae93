//go:build exercises

// Package checks holds the checkers of the exercises in docs/exercises/README.md:
// one test per exercise, TestExercise03_1 for exercise 03.1, run by
//
//	make check EX=03.1
//
// which is go test -tags exercises -count=1 -run '^TestExercise03_1$' ./docs/exercises/checks.
// The build tag keeps them out of go test ./...: on the stages as they are,
// every checker fails, on purpose, saying what the exercise still has to do.
//
// The checkers are black-box. Each builds the stage's program from the
// working tree (go build ./03-select-multiplex), so it sees whatever you
// changed there, runs it with flags, and reads what it prints: the -json
// summary, the -trace lines, its exit code. They never import a stage.
//
// They judge behaviour, not timing: the server's count of requests in flight,
// the order of events, the system calls counted, the error messages. Where a
// clock is involved at all, it is a generous bound that says "did not hang"
// (a run that takes a second is allowed a minute), never a measure of speed.
package checks

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// runLimit is how long one run of a stage may take before a checker gives up
// on it. It only catches a program that hangs: every run a checker makes
// takes a few seconds at most.
const runLimit = 60 * time.Second

// binDir holds the stages the checkers build, one binary per stage, built
// once per go test run however many checkers use it.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "exercise-checks-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// ---------------------------------------------------------------------------
// Building and running a stage.

// check is one exercise's checker at work: its id, for every message, and the
// stage's program, built from the working tree.
type check struct {
	t   *testing.T
	ex  string // "03.1"
	dir string // "03-select-multiplex"
	bin string

	// limit is how long one run may take before it counts as hung (runLimit
	// unless a checker says otherwise), and hangHint what to say then.
	limit    time.Duration
	hangHint string
}

var (
	buildMu sync.Mutex
	built   = map[string]string{} // stage folder → its binary
)

// begin builds the stage (once per test run) for exercise ex.
func begin(t *testing.T, ex, dir string) *check {
	t.Helper()
	c := &check{t: t, ex: ex, dir: dir, limit: runLimit, hangHint: "it hangs"}
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := built[dir]; ok {
		c.bin = bin
		return c
	}
	root := moduleRoot(t)
	bin := filepath.Join(binDir, dir)
	cmd := exec.Command("go", "build", "-o", bin, "./"+dir)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		c.fatalf("%s does not build (go build ./%s in %s): %v\n%s", dir, dir, root, err, out)
	}
	built[dir] = bin
	c.bin = bin
	return c
}

// moduleRoot is the folder of go.mod, found by walking up from this package.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the checks folder: run the checkers from inside the repository")
		}
		dir = parent
	}
}

func (c *check) fatalf(format string, args ...any) {
	c.t.Helper()
	c.t.Fatalf(c.ex+": "+format, args...)
}

func (c *check) errorf(format string, args ...any) {
	c.t.Helper()
	c.t.Errorf(c.ex+": "+format, args...)
}

// linuxOnly skips the check on systems without epoll.
func linuxOnly(t *testing.T, ex string) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("%s: epoll(7) is Linux's; run this check on Linux (this is %s)", ex, runtime.GOOS)
	}
}

// output is what one run of a stage printed, and its exit code.
type output struct {
	args           []string
	stdout, stderr string
	code           int
}

func (o output) String() string {
	return fmt.Sprintf("the run `%s` exited with %d; its standard error:\n%s", strings.Join(o.args, " "), o.code, indent(last(o.stderr, 30)))
}

// run runs the stage with args and returns what it printed. A run that does
// not end within c.limit is killed and fails the check.
func (c *check) run(args ...string) output {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), c.limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	o := output{args: append([]string{c.dir}, args...), stdout: stdout.String(), stderr: stderr.String()}
	if ctx.Err() != nil {
		c.fatalf("`%s` did not finish within %v (a generous bound: it should take seconds): %s", strings.Join(o.args, " "), c.limit, c.hangHint)
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		o.code = exit.ExitCode()
	case err != nil:
		c.fatalf("running %s: %v", c.bin, err)
	}
	return o
}

// runJSON runs the stage with args and -json and decodes its summary. Exit
// codes 0 (every request succeeded) and 1 (some failed) are both fine here;
// 2 (the run could not start, a bad flag) fails the check.
func (c *check) runJSON(args ...string) (summary, output) {
	c.t.Helper()
	o := c.run(append(args, "-json")...)
	if o.code == 2 {
		c.fatalf("the stage refused to run:\n%v", o)
	}
	var s summary
	dec := json.NewDecoder(strings.NewReader(o.stdout))
	if err := dec.Decode(&s); err != nil {
		c.fatalf("with -json, standard output must be the JSON summary alone (print anything else to standard error): %v\nstandard output starts with %q\n%v", err, first(o.stdout, 200), o)
	}
	if dec.More() {
		c.fatalf("with -json, standard output must be the JSON summary alone, but more follows it: print anything else to standard error")
	}
	if len(s.Results) != s.Requests {
		c.fatalf("the summary lists %d results for %d requests", len(s.Results), s.Requests)
	}
	sort.Slice(s.Results, func(i, j int) bool { return s.Results[i].ID < s.Results[j].ID })
	return s, o
}

// requireFlag fails the check unless the stage has the flag; hint says
// where it goes.
func (c *check) requireFlag(flag, hint string) {
	c.t.Helper()
	o := c.run("-h")
	if !regexp.MustCompile(`(?m)^\s+-` + regexp.QuoteMeta(flag) + `\b`).MatchString(o.stderr) {
		c.fatalf("%s has no -%s flag yet (go run ./%s -h does not list it). %s", c.dir, flag, c.dir, hint)
	}
}

// ---------------------------------------------------------------------------
// The -json summary (see summary in scaffold.go).

type summary struct {
	Stage               string         `json:"stage"`
	Requests            int            `json:"requests"`
	OK                  int            `json:"ok"`
	Failed              int            `json:"failed"`
	Bytes               int            `json:"bytes"`
	WallMS              float64        `json:"wall_ms"`
	CPUMS               float64        `json:"cpu_ms"`
	MaxRSSKB            int64          `json:"max_rss_kb"`
	Syscalls            map[string]int `json:"syscalls"`
	Wasted              int            `json:"wasted_calls"`
	AchievedConcurrency float64        `json:"achieved_concurrency"`
	PeakInFlight        *int           `json:"peak_in_flight"`
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
	Error   string  `json:"error"`
}

// peak is the server's peak in flight, or -1 when it did not say.
func (s summary) peak() int {
	if s.PeakInFlight == nil {
		return -1
	}
	return *s.PeakInFlight
}

// calls counts the calls named call, with every result ("read", "read
// EAGAIN", …) when call has no space, or that one result otherwise.
func (s summary) calls(call string) int {
	if strings.Contains(call, " ") {
		return s.Syscalls[call]
	}
	total := 0
	for key, n := range s.Syscalls {
		if key == call || strings.HasPrefix(key, call+" ") {
			total += n
		}
	}
	return total
}

// callsText lists the calls as the text report does, for messages.
func (s summary) callsText() string {
	keys := make([]string, 0, len(s.Syscalls))
	for key := range s.Syscalls {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, key := range keys {
		parts[i] = fmt.Sprintf("%s %d", key, s.Syscalls[key])
	}
	return strings.Join(parts, ", ")
}

// failures returns the results that failed, and how many of them have an
// error containing want (case-insensitive).
func (s summary) failures(want string) (failed []result, matching int) {
	for _, r := range s.Results {
		if r.Error == "" {
			continue
		}
		failed = append(failed, r)
		if strings.Contains(strings.ToLower(r.Error), strings.ToLower(want)) {
			matching++
		}
	}
	return failed, matching
}

// notStarted says whether err is the error of a request that -deadline kept
// from starting: "not started: the run's -deadline of 1s passed", as the
// stages' r.notStarted() says it, or "timed out before it started".
func notStarted(err string) bool {
	err = strings.ToLower(err)
	return strings.Contains(err, "not started") || strings.Contains(err, "timed out")
}

// firstError is the first request's error, for messages.
func (s summary) firstError() string {
	for _, r := range s.Results {
		if r.Error != "" {
			return fmt.Sprintf("request %d: %s", r.ID, r.Error)
		}
	}
	return "(none failed)"
}

// allOK fails the check unless every request got a 200 with a body.
func (c *check) allOK(s summary, what string) {
	c.t.Helper()
	if s.Failed > 0 {
		c.fatalf("%s: %d of %d requests failed; the first: %s", what, s.Failed, s.Requests, s.firstError())
	}
	for _, r := range s.Results {
		if r.Status != 200 || r.Bytes == 0 {
			c.fatalf("%s: request %d has status %d and %d body bytes, and no error: its response never arrived, yet it was not failed (was its callback or finish ever called?)", what, r.ID, r.Status, r.Bytes)
		}
	}
}

// ---------------------------------------------------------------------------
// Servers the checkers need besides the stage's embedded test server.

// rawServer is the smallest HTTP/1.0 server: it reads each request's header
// and hands the connection to serve, in a goroutine of its own. It answers
// the stage's closing /stats request the same way, so the stage reports the
// peak as unknown, as it does against any server that is not the project's.
type rawServer struct {
	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// startRawServer listens on 127.0.0.1 and serves until the test ends, when
// it closes every connection still open. serve gets the request line
// ("GET /page?run=…&req=3 HTTP/1.0").
func startRawServer(t *testing.T, serve func(conn net.Conn, requestLine string)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[conn] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer conn.Close()
				line, err := readRequest(conn)
				if err == nil {
					serve(conn, line)
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for conn := range s.conns {
			conn.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return ln.Addr().String()
}

// readRequest reads a request's header and returns its first line.
func readRequest(conn net.Conn) (string, error) {
	br := bufio.NewReader(conn)
	first := ""
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		if first == "" {
			first = strings.TrimSpace(line)
		}
		if line == "\r\n" || line == "\n" {
			return first, nil
		}
	}
}

// requestID is the req=N of a request line, or 0 (the /stats request).
func requestID(requestLine string) int {
	m := regexp.MustCompile(`[?&]req=(\d+)`).FindStringSubmatch(requestLine)
	if m == nil {
		return 0
	}
	id, _ := strconv.Atoi(m[1])
	return id
}

// answer writes a whole HTTP/1.0 response with a body of size bytes.
func answer(conn net.Conn, size int) {
	header := fmt.Sprintf("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n", size)
	_, _ = conn.Write(append([]byte(header), bytes.Repeat([]byte("x"), size)...))
}

// holdOpen keeps a connection open without answering until the client closes
// it (or the test ends).
func holdOpen(conn net.Conn) {
	_, _ = io.Copy(io.Discard, conn)
}

// blackHole returns a loopback address where connect(2) never completes, as
// with a server that is down or a firewall that drops: no answer at all, not
// a refusal. It is a listening socket with a backlog of 0 that never accepts,
// its queue filled by one connection made here. The kernel then drops every
// further SYN (the queue is full), and a client's connect waits, resending
// the SYN, for about two minutes. It needs no network and no root. When this
// system does not behave so, the check is skipped.
func blackHole(t *testing.T, ex string) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
	// Fill the queue: each connection the kernel completes stays queued,
	// since nothing accepts. When one does not complete, the hole is ready.
	for range 8 {
		conn, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { conn.Close() })
	}
	t.Skipf("%s: could not make a port that never answers on this system (a full listen queue did not drop SYNs)", ex)
	return ""
}

// ---------------------------------------------------------------------------
// Small helpers for messages.

func first(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// last keeps the last n lines of s.
func last(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"…"}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}
