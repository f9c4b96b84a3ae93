//go:build unix

// compare.go is the side-by-side comparison: `go run ./06-goroutines-compare
// -compare` (or make compare) runs every stage, and this stage's other
// models, on the same workloads against one test server running in a process
// of its own, so that each row's CPU and memory are the client's alone. It
// prints one table per workload, or with -json one JSON object.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A workload is one line of the comparison: the same n requests, each held
// delay by the server, for every model.
type workload struct {
	Name  string        `json:"name"`
	N     int           `json:"n"`
	Delay time.Duration `json:"delay_ns"`
}

// The standard workloads: a few slow requests (the staircase against the
// stack), a hundred (what spinning costs), more than select can watch, and
// thousands at once.
var workloads = map[string]workload{
	"few":     {"few", 10, 200 * time.Millisecond},
	"hundred": {"hundred", 100, time.Second},
	"many":    {"many", 1100, time.Second},
	"scale":   {"scale", 5000, time.Second},
}

// A candidate is one row of the table: a stage's program with some flags.
type candidate struct {
	Name  string   `json:"name"`
	Stage string   `json:"stage"` // the program: a stage folder's name
	Args  []string `json:"args,omitempty"`
	// skip says why this model does not run a workload ("" runs it).
	skip func(w workload) string
	// limit says the largest -n it handles, given how the run went.
	limit func(s *summary, maxFDs int) string
}

var candidates = []candidate{
	{Name: "01 blocking, one at a time", Stage: "01-blocking", skip: oneAtATime, limit: noLimit},
	{Name: "02 nonblocking, busy-polling", Stage: "02-nonblocking-spin", limit: descriptors},
	{Name: "03 select", Stage: "03-select-multiplex", skip: pastFDSetSize, limit: fdSetSize},
	{Name: "04 select, callbacks", Stage: "04-callback-reactor", skip: pastFDSetSize, limit: fdSetSize},
	{Name: "05 epoll, level-triggered", Stage: "05-epoll", limit: descriptors},
	{Name: "05 epoll, edge-triggered", Stage: "05-epoll", Args: []string{"-edge"}, limit: descriptors},
	{Name: "06 goroutines (net)", Stage: "06-goroutines-compare", limit: descriptors},
	{Name: "06 thread per request", Stage: "06-goroutines-compare", Args: []string{"-model", "threads"}, limit: threads},
	{Name: "06 process per request", Stage: "06-goroutines-compare", Args: []string{"-model", "processes"}, skip: tooManyProcesses, limit: processes},
}

func oneAtATime(w workload) string {
	if w.N > 20 {
		return fmt.Sprintf("one at a time would take %d × %v = %v", w.N, w.Delay, time.Duration(w.N)*w.Delay)
	}
	return ""
}

func pastFDSetSize(w workload) string {
	if w.N > 2000 {
		return "select stops at FD_SETSIZE: see the 1,100-request workload"
	}
	return ""
}

func tooManyProcesses(w workload) string {
	if w.N > 2000 {
		return fmt.Sprintf("%d Go processes would need about %d GB of memory", w.N, w.N/1000)
	}
	return ""
}

func noLimit(*summary, int) string { return "any (n × delay)" }

func descriptors(_ *summary, maxFDs int) string {
	return fmt.Sprintf("~%d (ulimit -n)", maxFDs-10) // less the few the program itself holds
}

// fdSetSize reports the measured limit when the run met it. Otherwise it
// states the rule, not a number: select watches descriptors 0 to
// FD_SETSIZE-1 only, so fewer requests than FD_SETSIZE fit, less the
// descriptors the program holds already (standard input, output and error,
// the runtime's poller, ...), which depend on the Go version and the system.
// A workload past the limit (many: 1,100 requests) prints how many fitted.
func fdSetSize(s *summary, _ int) string {
	if s != nil && s.Failed > 0 && failedOn(s, "FD_SETSIZE") {
		return fmt.Sprintf("%d (FD_SETSIZE)", s.OK)
	}
	return fmt.Sprintf("< %d (FD_SETSIZE)", unix.FD_SETSIZE)
}

func threads(*summary, int) string { return fmt.Sprintf("%d (Go's thread cap)", threadLimit) }

func processes(*summary, int) string { return "memory, pid_max" }

// failedOn tells whether some request failed with an error containing text.
func failedOn(s *summary, text string) bool {
	return slices.ContainsFunc(s.Results, func(r result) bool { return strings.Contains(r.Error, text) })
}

// A row is what one model did on one workload.
type row struct {
	Model    string   `json:"model"`
	Stage    string   `json:"stage"`
	Args     []string `json:"args,omitempty"`
	Skipped  string   `json:"skipped,omitempty"` // why it did not run
	Error    string   `json:"error,omitempty"`   // why the program itself failed
	LargestN string   `json:"largest_n"`
	Summary  *summary `json:"summary,omitempty"` // the program's own -json output
}

// comparison is what -compare -json prints.
type comparison struct {
	Machine   machine       `json:"machine"`
	Server    string        `json:"server"`
	Workloads []workloadRun `json:"workloads"`
}

type workloadRun struct {
	workload
	Rows []row `json:"rows"`
}

type machine struct {
	OS, Arch, Kernel, CPU, Go string
	Cores, MaxFDs             int
}

// wantsCompare tells whether the command line asks for the comparison.
func wantsCompare(args []string) bool {
	return slices.Contains(args, "-compare") || slices.Contains(args, "--compare")
}

// runCompare is -compare: build, start the server, run every row, print.
func runCompare(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(stage+" -compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Bool("compare", true, "run the comparison")
	asJSON := fs.Bool("json", false, "print the comparison as one JSON object")
	names := fs.String("workloads", "few,hundred,many,scale", "workloads to run: few, hundred, many, scale, or NxDELAY such as 20x100ms")
	binDir := fs.String("bin", "", "folder with the stages' programs and testserver already built (default: build them now)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	chosen, err := parseWorkloads(*names)
	if err == nil && *binDir == "" {
		*binDir, err = buildPrograms()
		defer os.RemoveAll(*binDir)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s -compare: %v\n", stage, err)
		return 2
	}
	addr, stop, err := startServerProcess(filepath.Join(*binDir, "testserver"))
	if err != nil {
		fmt.Fprintf(stderr, "%s -compare: %v\n", stage, err)
		return 2
	}
	defer stop()

	result := comparison{Machine: describeMachine(), Server: addr}
	for _, w := range chosen {
		if !*asJSON {
			fmt.Fprintf(stderr, "running %d × %v …\n", w.N, w.Delay)
		}
		result.Workloads = append(result.Workloads, workloadRun{w, runWorkload(*binDir, addr, w, result.Machine.MaxFDs)})
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(result)
	} else {
		err = writeComparison(stdout, result)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s -compare: %v\n", stage, err)
		return 2
	}
	return 0
}

// parseWorkloads reads "few,many" or "20x100ms".
func parseWorkloads(list string) ([]workload, error) {
	var chosen []workload
	for _, name := range strings.Split(list, ",") {
		if w, ok := workloads[name]; ok {
			chosen = append(chosen, w)
			continue
		}
		nText, delayText, found := strings.Cut(name, "x")
		n, errN := strconv.Atoi(nText)
		delay, errD := time.ParseDuration(delayText)
		if !found || errN != nil || errD != nil || n < 1 || delay < 0 {
			return nil, fmt.Errorf("-workloads: %q is not few, hundred, many, scale or NxDELAY (such as 20x100ms)", name)
		}
		chosen = append(chosen, workload{Name: name, N: n, Delay: delay})
	}
	return chosen, nil
}

// buildPrograms builds every stage and the test server into a new folder,
// from the module's root (found by the go command itself).
func buildPrograms() (string, error) {
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("finding the module's folder (the comparison builds the stages with the go command): %w", err)
	}
	dir, err := os.MkdirTemp("", "blocking-to-epoll-compare-")
	if err != nil {
		return "", fmt.Errorf("making a folder for the programs: %w", err)
	}
	packages := []string{"./internal/testserver/cmd/testserver"}
	for _, m := range candidates {
		if !slices.Contains(packages, "./"+m.Stage) {
			packages = append(packages, "./"+m.Stage)
		}
	}
	build := exec.Command("go", append([]string{"build", "-o", dir + string(os.PathSeparator)}, packages...)...)
	build.Dir = strings.TrimSpace(string(root))
	if out, err := build.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("building the stages: %w\n%s", err, out)
	}
	return dir, nil
}

// startServerProcess starts the test server program on a free loopback port
// and waits until it accepts connections. stop ends it.
func startServerProcess(program string) (addr string, stop func(), err error) {
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("finding a free port: %w", err)
	}
	addr = probe.Addr().String()
	probe.Close()

	cmd := exec.Command(program, "-addr", addr)
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("starting the test server: %w", err)
	}
	stop = func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}
	for try := 0; try < 100; try++ { // up to 5 s for it to listen
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			return addr, stop, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return "", nil, fmt.Errorf("the test server did not start listening on %s", addr)
}

// runWorkload runs every model on one workload, one after another.
func runWorkload(binDir, addr string, w workload, maxFDs int) []row {
	var rows []row
	for _, m := range candidates {
		r := row{Model: m.Name, Stage: m.Stage, Args: m.Args}
		if m.skip != nil {
			r.Skipped = m.skip(w)
		}
		if r.Skipped == "" {
			r.Summary, r.Error = runModel(filepath.Join(binDir, m.Stage), addr, w, m.Args)
		}
		r.LargestN = m.limit(r.Summary, maxFDs)
		rows = append(rows, r)
	}
	return rows
}

// runModel runs one program with -json and returns its summary. A program
// that exits with 1 (some requests failed) still has a summary: the table
// shows the failures. Anything else is an error the table shows instead.
func runModel(program, addr string, w workload, extra []string) (*summary, string) {
	// Long enough for one request after another (stage 01), and a minute more.
	budget := time.Duration(w.N)*w.Delay + time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), budget+10*time.Second)
	defer cancel()
	args := append([]string{"-addr", addr, "-n", strconv.Itoa(w.N), "-delay", w.Delay.String(), "-deadline", budget.String(), "-json"}, extra...)
	cmd := exec.CommandContext(ctx, program, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		return nil, fmt.Sprintf("%s: %v %s", filepath.Base(program), err, firstLine(stderr.String()))
	}
	var s summary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		return nil, fmt.Sprintf("%s printed no JSON summary: %v %s", filepath.Base(program), err, firstLine(stderr.String()))
	}
	return &s, ""
}

func firstLine(text string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(text), "\n")
	return line
}

// describeMachine says where the figures come from.
func describeMachine() machine {
	m := machine{OS: runtime.GOOS, Arch: runtime.GOARCH, Go: runtime.Version(), Cores: runtime.NumCPU()}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		m.Kernel = unix.ByteSliceToString(uts.Release[:])
	}
	if info, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(info), "\n") {
			if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
				m.CPU = strings.TrimSpace(value)
				break
			}
		}
	}
	var limit unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &limit) == nil {
		m.MaxFDs = int(min(limit.Cur, 1<<30))
	}
	return m
}

// writeComparison prints one table per workload.
func writeComparison(w io.Writer, c comparison) error {
	m := c.Machine
	fmt.Fprintf(w, "machine: %d cores, %s, %s %s, kernel %s, %s; test server in its own process at %s\n",
		m.Cores, m.CPU, m.OS, m.Arch, m.Kernel, m.Go, c.Server)
	for _, wr := range c.Workloads {
		fmt.Fprintf(w, "\n%d requests × %v (%s)\n", wr.N, wr.Delay, wr.Name)
		fmt.Fprintf(w, "  %-30s %8s %8s %5s %9s %9s %9s %8s %8s %11s  %s\n",
			"model", "wall", "cpu", "cpu%", "peak RSS", "calls", "wasted", "overlap", "at once", "ok/failed", "largest -n")
		for _, r := range wr.Rows {
			writeRow(w, r)
		}
	}
	_, err := fmt.Fprint(w, "\ncalls: what the program counts (06's goroutines count calls into net, not system calls); wasted: EAGAIN, EALREADY and empty waits;\noverlap: time in requests / wall; at once: peak in flight at the server; cpu and RSS: the client process alone (06 processes: children's CPU included).\n")
	return err
}

func writeRow(w io.Writer, r row) {
	switch {
	case r.Skipped != "":
		fmt.Fprintf(w, "  %-30s skipped: %s\n", r.Model, r.Skipped)
		return
	case r.Error != "":
		fmt.Fprintf(w, "  %-30s FAILED: %s\n", r.Model, r.Error)
		return
	}
	s := r.Summary
	calls := 0
	for _, count := range s.Syscalls {
		calls += count
	}
	atOnce := "?"
	if s.PeakInFlight != nil {
		atOnce = strconv.Itoa(*s.PeakInFlight)
	}
	cpuShare := 0.0
	if s.WallMS > 0 {
		cpuShare = 100 * s.CPUMS / s.WallMS
	}
	fmt.Fprintf(w, "  %-30s %7.2fs %7.2fs %4.0f%% %6.1f MB %9d %9d %8.0f %8s %11s  %s\n",
		r.Model, s.WallMS/1000, s.CPUMS/1000, cpuShare, float64(s.MaxRSSKB)/1024, calls, s.Wasted,
		s.AchievedConcurrency, atOnce, fmt.Sprintf("%d/%d", s.OK, s.Failed), r.LargestN)
}
