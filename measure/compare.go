//go:build unix

package main

// compare.go is the comparison (make compare): every stage, and stage 06's
// other models, on the same workloads against one test server, one table
// per workload, or with -json one JSON object.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A workload is one table of the comparison: the same n requests, each held
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
	Name  string
	Stage string // the program: a stage folder's name
	Args  []string
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
	{Name: "06 goroutines, own epoll loop", Stage: "06-goroutines-compare", Args: []string{"-model", "epoll-goroutines"}, skip: notLinux, limit: descriptors},
	{Name: "06 goroutines (net)", Stage: "06-goroutines-compare", limit: descriptors},
	{Name: "06 thread per request", Stage: "06-goroutines-compare", Args: []string{"-model", "threads"}, limit: threads},
	{Name: "06 process per request", Stage: "06-goroutines-compare", Args: []string{"-model", "processes"}, skip: tooManyProcesses, limit: processes},
}

// threadLimit is how many requests stage 06's -model threads runs at once:
// its threadLimit in 06-goroutines-compare/models.go, below the 10,000
// threads at which Go stops a program (runtime/debug.SetMaxThreads). A copy,
// as measure never imports a stage: change both together.
const threadLimit = 9000

// notLinux skips the models that need epoll itself.
func notLinux(workload) string {
	if runtime.GOOS != "linux" {
		return "epoll is Linux's"
	}
	return ""
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

// comparison is what -json prints, and what comparison.svg is drawn from.
type comparison struct {
	Machine   machine       `json:"machine"`
	Server    string        `json:"server"`
	Workloads []workloadRun `json:"workloads"`
}

// workloadRun is one workload and what every model did on it.
type workloadRun struct {
	workload
	Rows []row `json:"rows"`
}

// compare is measure without -pictures: build, start the server, run every
// row, print.
func compare(ctx context.Context, o options, stdout, stderr io.Writer) error {
	log := stderr
	if o.asJSON {
		log = io.Discard // -json is for programs: nothing on the side
	}
	bin, done, err := programs(ctx, o.bin, log)
	if err != nil {
		return err
	}
	defer done()
	addr, stop, err := startServer(ctx, filepath.Join(bin, "testserver"))
	if err != nil {
		return err
	}
	defer stop()
	c := runComparison(ctx, bin, addr, o.workloads, log)
	if o.asJSON {
		return writeJSON(stdout, c)
	}
	return writeComparison(stdout, c)
}

// runComparison runs every workload, one after another, against the test
// server at addr, with the programs in bin.
func runComparison(ctx context.Context, bin, addr string, chosen []workload, log io.Writer) comparison {
	c := comparison{Machine: describeMachine(), Server: addr}
	for _, w := range chosen {
		fmt.Fprintf(log, "running %d × %v …\n", w.N, w.Delay)
		c.Workloads = append(c.Workloads, workloadRun{w, runWorkload(ctx, bin, addr, w, c.Machine.MaxFDs)})
	}
	return c
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

// namesOf lists workloads as -workloads takes them: few,20x100ms.
func namesOf(ws []workload) string {
	names := make([]string, len(ws))
	for i, w := range ws {
		names[i] = w.Name
	}
	return strings.Join(names, ",")
}

// runWorkload runs every model on one workload, one after another. A
// program that failed gets a row that says why, and the others still run.
func runWorkload(ctx context.Context, bin, addr string, w workload, maxFDs int) []row {
	// Long enough for one request after another (stage 01), and a minute more.
	deadline := time.Duration(w.N)*w.Delay + time.Minute
	var rows []row
	for _, m := range candidates {
		r := row{Model: m.Name, Stage: m.Stage, Args: m.Args}
		if m.skip != nil {
			r.Skipped = m.skip(w)
		}
		if r.Skipped == "" {
			s, err := runStage(ctx, filepath.Join(bin, m.Stage), addr, w, append([]string{"-deadline", deadline.String()}, m.Args...)...)
			if err != nil {
				r.Error = err.Error()
			}
			r.Summary = s
		}
		r.LargestN = m.limit(r.Summary, maxFDs)
		rows = append(rows, r)
	}
	return rows
}

// writeJSON prints a comparison as -json does (and -save-comparison keeps it).
func writeJSON(w io.Writer, c comparison) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(c)
}

// parseComparison reads the JSON of -json, as -pictures -comparison does.
func parseComparison(data []byte) (comparison, error) {
	var c comparison
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("reading the comparison's JSON: %w", err)
	}
	if len(c.Workloads) == 0 {
		return c, fmt.Errorf("the comparison has no workloads")
	}
	return c, nil
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
