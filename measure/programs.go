//go:build unix

package main

// programs.go runs the real things every measurement is made of: the go
// command, the test server, and the stages' programs. The comparison, the
// timelines and the curve all come through here.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// moduleRoot asks the go command where the module is, so the stages are
// built and benchmarked from the right folder wherever measure runs from.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("finding the module's folder with the go command (run this from the repository): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// stageDirs lists the stage folders that the comparison's rows and the
// timelines' panels run, each once, in the course's order.
func stageDirs() []string {
	var dirs []string
	for _, c := range candidates {
		if c.client == nil && !slices.Contains(dirs, c.Stage) {
			dirs = append(dirs, c.Stage)
		}
	}
	for _, s := range stages {
		if !slices.Contains(dirs, s.Dir) {
			dirs = append(dirs, s.Dir)
		}
	}
	return dirs
}

// programs returns the folder of the programs to measure: bin when the
// command line gave one, else a new folder with every stage and the test
// server built into it. done removes a folder made here.
func programs(ctx context.Context, bin string, log io.Writer) (dir string, done func(), err error) {
	if bin != "" {
		return bin, func() {}, nil
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", nil, err
	}
	step := progress(log, "building the test server and the stages")
	if dir, err = buildPrograms(ctx, root); err != nil {
		return "", nil, err
	}
	step()
	return dir, func() { os.RemoveAll(dir) }, nil
}

// netHTTPClient is the one client that is not a stage and is built here
// (clients.go): its program is nethttp in the folder.
const netHTTPClient = "./measure/clients/nethttp"

// connectsProgram is the floor under stage 05's connect ramp (targets.go):
// its program is connects in the folder.
const connectsProgram = "./measure/clients/connects"

// buildPrograms builds the test server, every stage measured and the
// net/http client into a new folder, which the caller removes. 05 builds everywhere (on epoll on Linux,
// on kqueue on macOS and FreeBSD, and elsewhere as a program that says why
// it cannot run).
func buildPrograms(ctx context.Context, root string) (string, error) {
	dir, err := os.MkdirTemp("", "blocking-to-epoll-measure-")
	if err != nil {
		return "", fmt.Errorf("making a folder for the programs: %w", err)
	}
	args := []string{"build", "-o", dir + string(os.PathSeparator), "./internal/testserver/cmd/testserver", netHTTPClient, connectsProgram}
	for _, s := range stageDirs() {
		args = append(args, "./"+s)
	}
	build := exec.CommandContext(ctx, "go", args...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("building the stages: %w\n%s", err, out)
	}
	return dir, nil
}

// listening finds the address in the line the test server prints first.
var listening = regexp.MustCompile(`listening on http://(\S+)`)

// server is the test server's process, as startServer started it.
type server struct {
	addr string // where it listens
	pid  int    // its process, whose CPU time each row reads (0: not known)
}

// startServer starts the test server program on port 0 of loopback, so the
// kernel picks a free port, and reads the address it got from the line it
// prints. stop ends it (it closes its connections first) and waits for it.
func startServer(ctx context.Context, program string) (srv server, stop func(), err error) {
	cmd := exec.CommandContext(ctx, program, "-addr", "127.0.0.1:0")
	// Its output goes through a pipe read here to the end, so that the
	// server never blocks on a full pipe. The pipe is closed when the server
	// exits, which ends the reading, early if it could not start.
	printed, out := io.Pipe()
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = out, &stderr
	if err := cmd.Start(); err != nil {
		return server{}, nil, fmt.Errorf("starting the test server: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		out.Close()
		close(exited)
	}()
	stop = func() {
		cmd.Process.Signal(os.Interrupt)
		<-exited
	}
	first := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(printed)
		lines.Scan()
		first <- lines.Text()
		io.Copy(io.Discard, printed)
	}()
	select {
	case line := <-first:
		if m := listening.FindStringSubmatch(line); m != nil {
			return server{addr: m[1], pid: cmd.Process.Pid}, stop, nil
		}
		stop()
		return server{}, nil, fmt.Errorf("the test server did not say where it listens: %q %s", line, firstLine(stderr.String()))
	case <-time.After(10 * time.Second):
		stop()
		return server{}, nil, errors.New("the test server did not start within 10 s")
	}
}

// runStage runs one stage's program against addr on workload w with -json,
// plus extra flags, and returns its summary, with the CPU time and peak
// memory of the program's whole life (launch). Exit code 1 means some
// requests failed, and the summary says which; anything else is an error,
// which names the program and its first line on stderr (a panic's, say).
func runStage(ctx context.Context, program, addr string, w workload, extra ...string) (*summary, error) {
	// Long enough for one request after another (stage 01), and a minute
	// more: this only stops a program that hangs.
	timeout := time.Duration(w.N)*w.Delay + time.Minute + 10*time.Second
	args := append([]string{program, "-addr", addr, "-n", strconv.Itoa(w.N), "-delay", w.Delay.String(), "-json"}, extra...)
	l, err := launch(ctx, timeout, args, nil)
	if err == nil && l.Error != "" {
		err = errors.New(l.Error)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %v %s", filepath.Base(program), err, firstLine(string(l.stderr)))
	}
	var s summary
	if err := json.Unmarshal(l.stdout, &s); err != nil {
		return nil, fmt.Errorf("%s printed no JSON summary: %v %s", filepath.Base(program), err, firstLine(string(l.stderr)))
	}
	s.CPUMS, s.MaxRSSKB = milliseconds(l.CPU), l.MaxRSSKB
	return &s, nil
}

// milliseconds is d in the summaries' unit.
func milliseconds(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

func firstLine(text string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(text), "\n")
	return line
}

// benchmarkArgs is make curve: the go test command that measures one wait.
// The benchmark is stage 06's (waitcost_linux_test.go), run as a reader
// runs it, not imported.
var benchmarkArgs = []string{"test", "-run", "^$", "-bench", "WaitCost", "-benchtime", "2000x", "./06-goroutines-compare"}

// runBenchmark runs the wait-cost benchmark from the module's folder and
// returns what it printed.
func runBenchmark(ctx context.Context, root string, log io.Writer) (string, error) {
	cmd := exec.CommandContext(ctx, "go", benchmarkArgs...)
	cmd.Dir = root
	cmd.Stderr = log
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(benchmarkArgs, " "), err, out)
	}
	return string(out), nil
}
