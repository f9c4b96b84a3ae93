//go:build unix

package main

// spawner.go starts every program that measure measures, and reads what
// it used: wall time, CPU time and peak resident memory, over the program's
// whole life (wait4's rusage), not only up to its report.
//
// The programs are started by a small process of measure's own, the
// spawner, and not by measure itself, because of how Linux counts a
// program's peak memory (ru_maxrss): it starts from the peak of the process
// the program was started from. Go starts a program with clone(CLONE_VM),
// so the child runs in its parent's memory until it calls exec, and exec
// records the high-water mark of that memory as the new program's own
// (exec_mmap, into signal->maxrss). Once measure has read a large run's
// results it is some tens of megabytes, and every later row would show at
// least that. The spawner is measure's program again, started once, at the
// beginning; it reads one small line per program and nothing else, and the
// programs write straight into files, never through it. So its memory, the
// floor under every row, stays that of a Go program at rest, smaller than
// any stage's.

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
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// spawnerEnv, set to 1, makes measure's program the spawner.
const spawnerEnv = "BLOCKING_TO_EPOLL_MEASURE_SPAWNER"

// spawnRequest asks the spawner to run one program. Its input and output
// are files, so that nothing the program prints passes through the
// spawner's memory.
type spawnRequest struct {
	Argv    []string      `json:"argv"`
	Stdin   string        `json:"stdin"`  // a file to read from ("": none)
	Stdout  string        `json:"stdout"` // files to write to
	Stderr  string        `json:"stderr"`
	Timeout time.Duration `json:"timeout"` // killed after this long
}

// spawnResult is what the program did.
type spawnResult struct {
	Error    string        `json:"error,omitempty"` // why it did not start, or how it ended if not with exit code 0 or 1
	Exit     int           `json:"exit"`            // its exit code; -1 when a signal ended it or it did not start
	Wall     time.Duration `json:"wall"`
	CPU      time.Duration `json:"cpu"` // user and system, its waited-for children's included
	MaxRSSKB int64         `json:"max_rss_kb"`
}

// spawnerMain is the spawner's whole program: one request a line in, one
// result a line out, until its input ends. SIGTERM or Ctrl-C (measure
// stopping) kills the program running, whose result is still sent, and
// ends the spawner.
func spawnerMain(in io.Reader, out io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	requests := bufio.NewScanner(in)
	results := json.NewEncoder(out)
	for ctx.Err() == nil && requests.Scan() {
		var req spawnRequest
		if err := json.Unmarshal(requests.Bytes(), &req); err != nil {
			fmt.Fprintln(os.Stderr, "measure's spawner:", err)
			return 2
		}
		if err := results.Encode(runDirectly(ctx, req)); err != nil {
			return 2
		}
	}
	return 0
}

// runDirectly runs the program of req from this process, with its files.
func runDirectly(ctx context.Context, req spawnRequest) spawnResult {
	failed := func(err error) spawnResult { return spawnResult{Exit: -1, Error: err.Error()} }
	stdout, err := os.Create(req.Stdout)
	if err != nil {
		return failed(err)
	}
	defer stdout.Close()
	stderr, err := os.Create(req.Stderr)
	if err != nil {
		return failed(err)
	}
	defer stderr.Close()
	var stdin io.Reader // none: the program reads end of file
	if req.Stdin != "" {
		file, err := os.Open(req.Stdin)
		if err != nil {
			return failed(err)
		}
		defer file.Close()
		stdin = file
	}
	ctx, cancel := context.WithTimeout(ctx, req.Timeout)
	defer cancel()
	return runProgram(ctx, req.Argv, stdin, stdout, stderr)
}

// runProgram runs argv, waits for it, and says what it did: its exit code,
// and whether that is a failure (1 is not: a stage whose requests partly
// failed exits with 1, and says which in its summary).
func runProgram(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) spawnResult {
	if len(argv) == 0 {
		return spawnResult{Exit: -1, Error: "no program to run"}
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	start := time.Now()
	err := cmd.Run()
	res := spawnResult{Exit: -1, Wall: time.Since(start)}
	if cmd.ProcessState != nil {
		res.Exit = cmd.ProcessState.ExitCode()
		res.CPU, res.MaxRSSKB = usageOf(cmd.ProcessState)
	}
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && res.Exit == 1) {
		res.Error = err.Error() // "exit status 2", "signal: killed", or why it did not start
	}
	return res
}

// usageOf is a finished program's CPU time and peak resident memory.
func usageOf(state *os.ProcessState) (cpu time.Duration, maxRSSKB int64) {
	usage, ok := state.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, 0
	}
	maxRSSKB = int64(usage.Maxrss)
	if runtime.GOOS == "darwin" {
		maxRSSKB /= 1024 // bytes there, kilobytes on Linux and FreeBSD
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano()), maxRSSKB
}

// spawner is measure's end of the spawner: it sends requests and reads
// results, one program at a time.
type spawner struct {
	mu      sync.Mutex
	cmd     *exec.Cmd
	send    io.WriteCloser
	results *bufio.Scanner
	dir     string // where the programs' input and output files go
}

// theSpawner runs the programs when main has started it; tests leave it nil,
// and their programs run straight from the test.
var theSpawner *spawner

// startSpawner starts measure's own program again as the spawner.
func startSpawner() (*spawner, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding measure's own program to start the spawner: %w", err)
	}
	dir, err := os.MkdirTemp("", "blocking-to-epoll-spawner-")
	if err != nil {
		return nil, fmt.Errorf("making the spawner's folder: %w", err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), spawnerEnv+"=1")
	cmd.Stderr = os.Stderr
	send, err := cmd.StdinPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	results, err := cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting the spawner: %w", err)
	}
	return &spawner{cmd: cmd, send: send, results: bufio.NewScanner(results), dir: dir}, nil
}

// stop ends the spawner (its input ends, and so does its loop) and removes
// its folder.
func (sp *spawner) stop() {
	sp.send.Close()
	sp.cmd.Wait()
	os.RemoveAll(sp.dir)
}

// launched is one program's run: what it printed, and what it used.
type launched struct {
	stdout, stderr []byte
	spawnResult
}

// launch runs argv with stdin as its input, kills it after timeout, and
// returns what it printed and used: through the spawner when there is one,
// else from this process. A program that exits with 1 has not failed here
// (a stage whose requests partly failed does that); Error says otherwise.
func launch(ctx context.Context, timeout time.Duration, argv []string, stdin []byte) (launched, error) {
	if theSpawner == nil {
		return launchHere(ctx, timeout, argv, stdin)
	}
	return theSpawner.launch(ctx, timeout, argv, stdin)
}

func (sp *spawner) launch(ctx context.Context, timeout time.Duration, argv []string, stdin []byte) (launched, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if deadline, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(deadline))
	}
	req := spawnRequest{Argv: argv, Stdout: sp.dir + "/stdout", Stderr: sp.dir + "/stderr", Timeout: timeout}
	if stdin != nil {
		req.Stdin = sp.dir + "/stdin"
		if err := os.WriteFile(req.Stdin, stdin, 0o600); err != nil {
			return launched{}, err
		}
	}
	line, err := json.Marshal(req)
	if err != nil {
		return launched{}, err
	}
	if _, err := sp.send.Write(append(line, '\n')); err != nil {
		return launched{}, fmt.Errorf("the spawner has stopped: %w", err)
	}
	// Should measure be stopped meanwhile, the spawner is told to kill the
	// program, as exec.CommandContext would kill one started here.
	answered := make(chan struct{})
	defer close(answered)
	go func() {
		select {
		case <-ctx.Done():
			sp.cmd.Process.Signal(syscall.SIGTERM)
		case <-answered:
		}
	}()
	if !sp.results.Scan() {
		return launched{}, fmt.Errorf("the spawner has stopped: %v", sp.results.Err())
	}
	var l launched
	if err := json.Unmarshal(sp.results.Bytes(), &l.spawnResult); err != nil {
		return launched{}, fmt.Errorf("the spawner's answer: %w", err)
	}
	l.stdout, _ = os.ReadFile(req.Stdout)
	l.stderr, _ = os.ReadFile(req.Stderr)
	return l, ctx.Err()
}

// launchHere runs the program from this process, as the spawner does, and
// like the spawner's launch says when measure was stopped meanwhile.
func launchHere(ctx context.Context, timeout time.Duration, argv []string, stdin []byte) (launched, error) {
	inTime, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var in io.Reader
	if stdin != nil {
		in = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	res := runProgram(inTime, argv, in, &stdout, &stderr)
	return launched{stdout.Bytes(), stderr.Bytes(), res}, ctx.Err()
}
