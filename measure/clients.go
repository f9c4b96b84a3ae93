//go:build unix

package main

// clients.go is the comparison's rows that are not stages: the clients a
// reader would use instead, measured in the same run, on the same server,
// with the same workloads. Go's net/http client (measure/clients/nethttp,
// built beside the stages) and a Python asyncio client (clients/
// asyncio_client.py, run with python3) make the stages' requests; ApacheBench
// and curl, when installed, repeat one URL. None of them counts its system
// calls, so those columns say "-"; their CPU time and peak memory come from
// the child's rusage, as the kernel counted them when it exited.

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"blocking-to-epoll/internal/testserver"
)

// A client is how to run one row that is not a stage.
type client struct {
	// tool is the program to find on PATH ("" when it is built here). A row
	// whose tool is missing is skipped, saying so.
	tool string
	// note is one line on why the row behaves as it does.
	note string
	// command is the command line for one run of workload w against addr,
	// with tag in the query; stdin is what the program reads, if anything.
	command func(bin, addr, tag string, w workload) (argv []string, stdin []byte)
	// read turns what the program printed into a summary.
	read func(stdout []byte, w workload) (*summary, error)
}

// asyncioClient is the Python client, run as python3 - with the script on
// standard input, so it needs no file of its own wherever measure runs from.
//
//go:embed clients/asyncio_client.py
var asyncioClient []byte

// curlParallelMax is the most transfers curl runs at once: 300, the
// largest --parallel-max it accepts (curl 7.66 to 8.15).
const curlParallelMax = 300

var (
	netHTTP = &client{
		note: "net/http Client, one goroutine per request, keep-alives off: HTTP/1.1 with Connection: close, a goroutine and its stacks per connection, like 06 (net)",
		command: func(bin, addr, tag string, w workload) ([]string, []byte) {
			return []string{filepath.Join(bin, "nethttp"), "-addr", addr, "-n", strconv.Itoa(w.N), "-delay", w.Delay.String(), "-run", tag}, nil
		},
		read: readJSON,
	}
	asyncio = &client{
		tool: "python3",
		note: "asyncio streams on the default event loop (epoll on Linux): one coroutine per request, all of it in one thread, Python's interpreter doing the work",
		command: func(_, addr, tag string, w workload) ([]string, []byte) {
			return []string{"python3", "-", "-addr", addr, "-n", strconv.Itoa(w.N), "-delay", w.Delay.String(), "-run", tag}, asyncioClient
		},
		read: readJSON,
	}
	apacheBench = &client{
		tool: "ab",
		note: "ab -n N -c N repeats one URL (/page); it sends its first request alone and the rest once that is answered, so its wall is at least two delays",
		command: func(_, addr, tag string, w workload) ([]string, []byte) {
			// -r: a failed read counts as a failed request instead of ending ab.
			return []string{"ab", "-q", "-r", "-n", strconv.Itoa(w.N), "-c", strconv.Itoa(w.N), "http://" + addr + "/page?" + query(tag, w)}, nil
		},
		read: readAB,
	}
	curl = &client{
		tool: "curl",
		note: fmt.Sprintf("curl --parallel runs at most %d transfers at once (--parallel-max), so n requests take n/%d delays", curlParallelMax, curlParallelMax),
		command: func(_, addr, tag string, w workload) ([]string, []byte) {
			// One URL with a [1-N] range: curl makes one transfer per number,
			// each req=ID, and -w prints each status code on a line of its own.
			url := fmt.Sprintf("http://%s/page?%s&req=[1-%d]", addr, query(tag, w), w.N)
			return []string{"curl", "--silent", "--http1.0", "--parallel", "--parallel-max", strconv.Itoa(curlParallelMax),
				"--output", "/dev/null", "--write-out", `%{http_code}\n`, url}, nil
		},
		read: readCurl,
	}
)

// query is what ab and curl put in their one URL: the run's tag, so the
// test server counts the row's requests apart and reports their peak, and
// the delay.
func query(tag string, w workload) string { return "run=" + tag + "&delay=" + w.Delay.String() }

// noTool skips a client whose program is not installed.
func noTool(c *client) func(workload, int) string {
	return func(workload, int) string {
		if c.tool == "" {
			return ""
		}
		if _, err := exec.LookPath(c.tool); err != nil {
			if c.tool == "python3" {
				return "no python3"
			}
			return c.tool + " is not installed"
		}
		return ""
	}
}

// runClient runs one client on workload w against the test server at addr
// and makes a summary of what it did: its own figures, its rusage, and the
// peak in flight the server saw under the run's tag.
func runClient(ctx context.Context, c *client, bin, addr string, w workload) (*summary, error) {
	timeout := time.Duration(w.N)*w.Delay + time.Minute + 10*time.Second
	tag := newTag()
	argv, stdin := c.command(bin, addr, tag, w)
	l, err := launch(ctx, timeout, argv, stdin)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", argv[0], err)
	}
	// A client that printed what it did is read whatever its exit status
	// (curl's is that of its last failed transfer, nethttp's and the
	// script's 1 when some failed); one that printed nothing usable failed.
	s, readErr := c.read(l.stdout, w)
	if readErr != nil {
		why := l.Error
		if why == "" {
			why = readErr.Error()
		}
		return nil, fmt.Errorf("%s: %s %s", argv[0], why, firstLine(string(l.stderr)))
	}
	if s.WallMS == 0 { // a tool that does not time itself: the process's life
		s.WallMS = milliseconds(l.Wall)
	}
	s.CPUMS, s.MaxRSSKB = milliseconds(l.CPU), l.MaxRSSKB
	s.AchievedConcurrency = overlap(s)
	if stats, err := testserver.FetchStats(addr, tag, time.Now().Add(10*time.Second)); err == nil {
		s.PeakInFlight = &stats.PeakInFlight
	}
	return s, nil
}

// newTag is a run tag of the row's own: the test server keeps the requests
// of each run apart by it.
func newTag() string { return fmt.Sprintf("measure-%x", time.Now().UnixNano()) }

// overlap is the time spent in requests over the wall time, as the stages
// report it ("achieved concurrency"); 0 when the client did not say when
// each request started and ended.
func overlap(s *summary) float64 {
	var busy float64
	for _, r := range s.Results {
		busy += r.EndMS - r.StartMS
	}
	if s.WallMS <= 0 {
		return 0
	}
	return busy / s.WallMS
}

// readJSON reads the summary that nethttp and the Python client print.
func readJSON(stdout []byte, w workload) (*summary, error) {
	var s summary
	if err := json.Unmarshal(stdout, &s); err != nil {
		return nil, fmt.Errorf("printed no JSON summary: %w", err)
	}
	s.printed = nil // measure adds to it: write it as it is now
	if s.Requests != w.N || s.OK+s.Failed != w.N {
		return nil, fmt.Errorf("the summary is of %d requests (%d ok, %d failed), not %d", s.Requests, s.OK, s.Failed, w.N)
	}
	return &s, nil
}

var (
	abComplete = regexp.MustCompile(`(?m)^Complete requests:\s+(\d+)`)
	abFailed   = regexp.MustCompile(`(?m)^Failed requests:\s+(\d+)`)
	abNon2xx   = regexp.MustCompile(`(?m)^Non-2xx responses:\s+(\d+)`)
)

// readAB reads ab's report: complete requests, less the failed ones and the
// ones not answered 200, are ok. ab prints the wall time too, but from its
// first connect only; the process's life is used for it as for curl.
func readAB(stdout []byte, w workload) (*summary, error) {
	count := func(re *regexp.Regexp) int {
		if m := re.FindSubmatch(stdout); m != nil {
			n, _ := strconv.Atoi(string(m[1]))
			return n
		}
		return 0
	}
	if !abComplete.Match(stdout) {
		return nil, errors.New("no report (no \"Complete requests\" line)")
	}
	ok := count(abComplete) - count(abFailed) - count(abNon2xx)
	return &summary{Requests: w.N, OK: max(ok, 0), Failed: w.N - max(ok, 0)}, nil
}

// readCurl counts the status codes curl printed, one per transfer: 200 is
// ok, anything else (000 for a transfer that got no answer) failed.
func readCurl(stdout []byte, w workload) (*summary, error) {
	lines := bytes.Fields(stdout)
	if len(lines) == 0 {
		return nil, errors.New("printed no status codes")
	}
	ok := 0
	for _, code := range lines {
		if string(code) == "200" {
			ok++
		}
	}
	return &summary{Requests: w.N, OK: ok, Failed: w.N - ok}, nil
}
