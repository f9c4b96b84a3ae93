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
	"os"
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
// thousands at once: 5,000, then 10,000, past the listen backlog of most
// Linux machines (somaxconn, 4096 since Linux 5.4).
var workloads = map[string]workload{
	"few":      {"few", 10, 200 * time.Millisecond},
	"hundred":  {"hundred", 100, time.Second},
	"many":     {"many", 1100, time.Second},
	"scale":    {"scale", 5000, time.Second},
	"scale10k": {"scale10k", 10000, time.Second},
}

// workloadNamesHelp lists the named workloads for the messages.
const workloadNamesHelp = "few, hundred, many, scale, scale10k"

// A candidate is one row of the table: a stage's program with some flags,
// or a client that is not a stage (clients.go).
type candidate struct {
	Name  string
	Stage string // the program: a stage folder's name, or a client's folder
	Args  []string
	// client runs the rows that are not stages; nil for a stage.
	client *client
	// skip says why this model does not run a workload here ("" runs it),
	// given the descriptors a process may hold (ulimit -n).
	skip func(w workload, maxFDs int) string
	// limit says the largest -n it handles, given how the run went.
	limit func(s *summary, maxFDs int) string
}

var candidates = []candidate{
	{Name: "01 blocking, one at a time", Stage: "01-blocking", skip: oneAtATime, limit: noLimit},
	{Name: "02 nonblocking, busy-polling", Stage: "02-nonblocking-spin", skip: fitsDescriptors, limit: descriptors},
	{Name: "03 select", Stage: "03-select-multiplex", skip: pastFDSetSize, limit: fdSetSize},
	{Name: "04 select, callbacks", Stage: "04-callback-reactor", skip: pastFDSetSize, limit: fdSetSize},
	{Name: "05 epoll, level-triggered", Stage: "05-epoll", skip: fitsDescriptors, limit: descriptors},
	{Name: "05 epoll, edge-triggered", Stage: "05-epoll", Args: []string{"-edge"}, skip: fitsDescriptors, limit: descriptors},
	{Name: "06 goroutines, own epoll loop", Stage: "06-goroutines-compare", Args: []string{"-model", "epoll-goroutines"}, skip: firstOf(notLinux, fitsDescriptors), limit: descriptors},
	{Name: "06 goroutines (net)", Stage: "06-goroutines-compare", skip: fitsDescriptors, limit: descriptors},
	{Name: "06 io_uring, completions", Stage: "06-goroutines-compare", Args: []string{"-model", "io_uring"}, skip: firstOf(notLinux, fitsDescriptors), limit: descriptors},
	{Name: "06 thread per request", Stage: "06-goroutines-compare", Args: []string{"-model", "threads"}, skip: fitsDescriptors, limit: threads},
	{Name: "06 process per request", Stage: "06-goroutines-compare", Args: []string{"-model", "processes"}, skip: tooManyProcesses, limit: processes},
	// What a reader would use instead (clients.go).
	{Name: "Go net/http, keep-alives off", Stage: "measure/clients/nethttp", client: netHTTP, skip: fitsDescriptors, limit: descriptors},
	{Name: "Python asyncio", Stage: "measure/clients/asyncio_client.py", client: asyncio, skip: firstOf(noTool(asyncio), fitsDescriptors), limit: descriptors},
	{Name: "ab (ApacheBench) -c n", Stage: "ab", client: apacheBench, skip: firstOf(noTool(apacheBench), fitsDescriptors, abConcurrency), limit: abLimit},
	{Name: "curl --parallel", Stage: "curl", client: curl, skip: noTool(curl), limit: curlLimit},
}

// stagesOnly leaves out the rows that are not stages, for -clients=false:
// a table that is the same wherever it runs, whatever is installed.
func stagesOnly(all []candidate) []candidate {
	var stages []candidate
	for _, c := range all {
		if c.client == nil {
			stages = append(stages, c)
		}
	}
	return stages
}

// threadLimit is how many requests stage 06's -model threads runs at once:
// its threadLimit in 06-goroutines-compare/models.go, below the 10,000
// threads at which Go stops a program (runtime/debug.SetMaxThreads). A copy,
// as measure never imports a stage: change both together.
const threadLimit = 9000

// firstOf skips for the first of several reasons that applies.
func firstOf(reasons ...func(workload, int) string) func(workload, int) string {
	return func(w workload, maxFDs int) string {
		for _, why := range reasons {
			if s := why(w, maxFDs); s != "" {
				return s
			}
		}
		return ""
	}
}

// reserved is about how many descriptors a client holds besides its
// connections: standard input, output and error, the runtime's poller, the
// stage's own epoll, an inherited one or two.
const reserved = 20

// fitsDescriptors skips a model that holds every connection open at once
// when the process may not have that many descriptors. The server is in
// another process, so it is one per connection here.
func fitsDescriptors(w workload, maxFDs int) string {
	if maxFDs > 0 && w.N+reserved > maxFDs {
		return fmt.Sprintf("%d connections at once need about %d descriptors, and ulimit -n is %d", w.N, w.N+reserved, maxFDs)
	}
	return ""
}

// notLinux skips the models that need epoll itself.
func notLinux(workload, int) string {
	if runtime.GOOS != "linux" {
		return "epoll is Linux's"
	}
	return ""
}

func oneAtATime(w workload, _ int) string {
	if w.N > 20 {
		return fmt.Sprintf("one at a time would take %d × %v = %v", w.N, w.Delay, time.Duration(w.N)*w.Delay)
	}
	return ""
}

func pastFDSetSize(w workload, _ int) string {
	if w.N > 2000 {
		return "select stops at FD_SETSIZE: see the 1,100-request workload"
	}
	return ""
}

func tooManyProcesses(w workload, _ int) string {
	if w.N > 2000 {
		return fmt.Sprintf("%d Go processes would need about %d GB of memory", w.N, w.N/1000)
	}
	return ""
}

func noLimit(*summary, int) string { return "any (n × delay)" }

func descriptors(_ *summary, maxFDs int) string {
	return fmt.Sprintf("~%d (ulimit -n)", maxFDs-reserved) // less the few the program itself holds
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

// abMaxConcurrency is the largest -c ab takes (MAX_CONCURRENCY in ab.c).
const abMaxConcurrency = 20000

func abConcurrency(w workload, _ int) string {
	if w.N > abMaxConcurrency {
		return fmt.Sprintf("ab takes -c %d at most", abMaxConcurrency)
	}
	return ""
}

func abLimit(_ *summary, maxFDs int) string {
	return fmt.Sprintf("~%d (ulimit -n)", min(maxFDs-reserved, abMaxConcurrency))
}

func curlLimit(*summary, int) string {
	return fmt.Sprintf("any, %d at once", curlParallelMax)
}

// failedOn tells whether some request failed with an error containing text.
func failedOn(s *summary, text string) bool {
	return slices.ContainsFunc(s.Results, func(r result) bool { return strings.Contains(r.Error, text) })
}

// A row is what one model did on one workload.
type row struct {
	Model    string   `json:"model"`
	Stage    string   `json:"stage"`
	Args     []string `json:"args,omitempty"`
	Note     string   `json:"note,omitempty"`    // a client that is not a stage: why it behaves as it does
	Skipped  string   `json:"skipped,omitempty"` // why it did not run
	Error    string   `json:"error,omitempty"`   // why the program itself failed
	LargestN string   `json:"largest_n"`
	// Summary is the program's own -json output; with -runs above 1, each
	// figure is the median of the runs' (median.go).
	Summary *summary `json:"summary,omitempty"`
	// Kernel is what the machine's TCP counters went up by during the run
	// (the median, with -runs); nil where they cannot be read.
	Kernel *kernelCounts `json:"kernel,omitempty"`
	// Runs are the runs the medians come from, with -runs above 1.
	Runs []runRecord `json:"runs,omitempty"`
}

// runRecord is one run of a row.
type runRecord struct {
	Summary *summary      `json:"summary,omitempty"`
	Kernel  *kernelCounts `json:"kernel,omitempty"`
	Error   string        `json:"error,omitempty"`
}

// comparison is what -json prints, and what comparison.svg is drawn from.
type comparison struct {
	Machine   machine       `json:"machine"`
	Server    string        `json:"server"`
	Runs      int           `json:"runs,omitempty"` // of each row: the table gives their medians (0 or 1: one run)
	Workloads []workloadRun `json:"workloads"`
}

// workloadRun is one workload and what every model did on it.
type workloadRun struct {
	workload
	Rows []row `json:"rows"`
	// ConnectRampMS is how long a client that only starts its n connects
	// takes to start them all (the connects program; the median, with
	// -runs): the floor under 05's ramp, printed with its targets. nil on
	// the workloads the targets do not read, or when it could not run.
	ConnectRampMS *float64 `json:"connect_ramp_ms,omitempty"`
}

// compare is measure without -pictures: build, start the server, run every
// row, print; with -write, put the tables into the docs' generated blocks.
func compare(ctx context.Context, o options, stdout, stderr io.Writer) error {
	log := stderr
	if o.asJSON {
		log = io.Discard // -json is for programs: nothing on the side
	}
	var c comparison
	if o.comparison != "" {
		var err error
		if c, err = loadComparison(o.comparison); err != nil {
			return err
		}
	} else {
		if !o.clients {
			candidates = stagesOnly(candidates) // the rows are this program's run's to choose
		}
		var err error
		if c, err = measureComparison(ctx, o, log); err != nil {
			return err
		}
		if err := saveComparison(o.saveComparison, c, log); err != nil {
			return err
		}
	}
	if o.asJSON {
		return writeJSON(stdout, c)
	}
	if err := writeComparison(stdout, c); err != nil {
		return err
	}
	for _, file := range o.write {
		if err := writeGenerated(file, c, log); err != nil {
			return err
		}
	}
	return nil
}

// measureComparison builds the programs, starts the server and runs the
// comparison.
func measureComparison(ctx context.Context, o options, log io.Writer) (comparison, error) {
	bin, done, err := programs(ctx, o.bin, log)
	if err != nil {
		return comparison{}, err
	}
	defer done()
	srv, stop, err := startServer(ctx, filepath.Join(bin, "testserver"))
	if err != nil {
		return comparison{}, err
	}
	defer stop()
	return runComparison(ctx, bin, srv, o.workloads, o.runs, log), nil
}

// runComparison runs every workload, one after another, against the test
// server srv, with the programs in bin, each row runs times.
func runComparison(ctx context.Context, bin string, srv server, chosen []workload, runs int, log io.Writer) comparison {
	c := comparison{Machine: describeMachine(), Server: srv.addr, Runs: max(runs, 1)}
	for _, w := range chosen {
		c.Workloads = append(c.Workloads, runWorkload(ctx, bin, srv, w, c.Machine.MaxFDs, c.Runs, log))
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
			return nil, fmt.Errorf("-workloads: %q is not %s or NxDELAY (such as 20x100ms)", name, workloadNamesHelp)
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

// runWorkload runs every model on one workload, runs times over,
// interleaved: every row once, then every row again, so that a slow moment
// of the machine falls on several rows' one run rather than on one row's
// every run. A program that failed gets a row that says why, and the others
// still run.
func runWorkload(ctx context.Context, bin string, srv server, w workload, maxFDs, runs int, log io.Writer) workloadRun {
	rows := make([]row, len(candidates))
	var ramps []float64 // the connects alone, once a run (connectRamp)
	for i, m := range candidates {
		rows[i] = row{Model: m.Name, Stage: m.Stage, Args: m.Args}
		if m.client != nil {
			rows[i].Note = m.client.note
		}
		if m.skip != nil {
			rows[i].Skipped = m.skip(w, maxFDs)
		}
	}
	for run := 1; run <= runs; run++ {
		if runs > 1 {
			fmt.Fprintf(log, "running %d × %v, run %d of %d …\n", w.N, w.Delay, run, runs)
		} else {
			fmt.Fprintf(log, "running %d × %v …\n", w.N, w.Delay)
		}
		for i, m := range candidates {
			if rows[i].Skipped == "" {
				rows[i].Runs = append(rows[i].Runs, runOnce(ctx, m, bin, srv, w))
			}
		}
		if readsTargets(w) {
			ramps = append(ramps, connectRamp(ctx, bin, srv.addr, w, log))
		}
	}
	for i, m := range candidates {
		r := &rows[i]
		if r.Skipped == "" {
			r.Summary, r.Kernel, r.Error = medianOf(r.Runs)
			if runs == 1 {
				r.Runs = nil // the one run is the row
			}
		}
		r.LargestN = m.limit(r.Summary, maxFDs)
	}
	wr := workloadRun{workload: w, Rows: rows}
	if len(ramps) == runs && !slices.Contains(ramps, -1) {
		ramp := median(ramps)
		wr.ConnectRampMS = &ramp
	}
	return wr
}

// runOnce runs one row once, and reads the kernel's TCP counters and the
// test server's CPU time before and after it.
func runOnce(ctx context.Context, m candidate, bin string, srv server, w workload) runRecord {
	// Long enough for one request after another (stage 01), and a minute more.
	deadline := time.Duration(w.N)*w.Delay + time.Minute
	before := readKernelCounts()
	serverBefore, known := processCPU(srv.pid)
	var s *summary
	var err error
	if m.client != nil {
		s, err = runClient(ctx, m.client, bin, srv.addr, w)
	} else {
		s, err = runStage(ctx, filepath.Join(bin, m.Stage), srv.addr, w, append([]string{"-deadline", deadline.String()}, m.Args...)...)
	}
	if serverAfter, ok := processCPU(srv.pid); s != nil && known && ok {
		used := milliseconds(serverAfter - serverBefore)
		s.ServerCPUMS = &used
	}
	r := runRecord{Summary: s, Kernel: readKernelCounts().since(before)}
	s.trim() // keep measure small: see trim
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

// saveComparison keeps c's JSON in file, for -comparison next time ("": not
// asked for).
func saveComparison(file string, c comparison, log io.Writer) error {
	if file == "" {
		return nil
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	err = writeJSON(f, c)
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "wrote %s\n", file)
	return nil
}

// writeJSON prints a comparison as -json does (and -save-comparison keeps it).
func writeJSON(w io.Writer, c comparison) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(c)
}

// loadComparison reads a comparison saved with -json (-comparison FILE), to
// print its tables or draw its picture without measuring again.
func loadComparison(file string) (comparison, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return comparison{}, err
	}
	return parseComparison(data)
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

// writeComparison prints the machine line, one table per workload, and
// what the columns and the clients' rows mean.
func writeComparison(w io.Writer, c comparison) error {
	writeMachine(w, c)
	for _, wr := range c.Workloads {
		fmt.Fprintln(w)
		writeTable(w, wr, c.Runs)
	}
	fmt.Fprint(w, "\ncalls: what the program counts (06's goroutines count calls into net, not system calls; \"-\": not counted); wasted: EAGAIN, EALREADY and empty waits;\n"+
		"overlap: time in requests / wall; at once: peak in flight at the server; cpu and RSS: the client process alone, its whole life (06 processes: its children's included);\n"+
		"srv cpu: the test server's CPU time during the run, user and system (the client and the server share the machine's cores);\n"+
		"drops: SYNs the kernel dropped at a full listen queue (ListenDrops), SYN rtx: SYNs sent again (TCPSynRetrans), both for the whole machine during the run.\n")
	var notes []string
	for _, m := range candidates {
		if m.client != nil {
			notes = append(notes, fmt.Sprintf("  %-30s %s", m.Name, m.client.note))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "the clients that are not stages (wall: ab's and curl's the process's whole life):\n%s\n", strings.Join(notes, "\n"))
	}
	if findWorkload(c, 5000) == nil && findWorkload(c, 10000) == nil {
		return nil // the targets are read on 5,000 and 10,000 × 1 s
	}
	fmt.Fprintln(w)
	return writeTargets(w, c)
}

// writeMachine prints the line that says where the figures come from.
func writeMachine(w io.Writer, c comparison) {
	m := c.Machine
	somaxconn := "somaxconn unknown"
	if m.Somaxconn > 0 {
		somaxconn = fmt.Sprintf("somaxconn %d", m.Somaxconn)
	}
	fmt.Fprintf(w, "machine: %d cores, %s, %s %s, kernel %s, %s, ulimit -n %d, %s; test server in its own process at %s\n",
		m.Cores, m.CPU, m.OS, m.Arch, m.Kernel, m.Go, m.MaxFDs, somaxconn, c.Server)
}

// tableHeader is the line of column names, the same in every table; the
// docs' test checks the generated tables against it.
var tableHeader = fmt.Sprintf("  %-30s %8s %8s %5s %8s %9s %9s %9s %8s %8s %11s %6s %7s  %s",
	"model", "wall", "cpu", "cpu%", "srv cpu", "peak RSS", "calls", "wasted", "overlap", "at once", "ok/failed", "drops", "SYN rtx", "largest -n")

// writeTable prints one workload's table.
func writeTable(w io.Writer, wr workloadRun, runs int) {
	of := "1 run"
	if runs > 1 {
		of = fmt.Sprintf("median of %d runs", runs)
	}
	fmt.Fprintf(w, "%d requests × %v (%s), %s\n", wr.N, wr.Delay, wr.Name, of)
	fmt.Fprintln(w, tableHeader)
	for _, r := range wr.Rows {
		writeRow(w, r)
	}
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
	// A client that is not a stage counts no calls, and ab and curl do not
	// say when each request started and ended.
	calls, wasted, overlap := "-", "-", "?"
	if s.Syscalls != nil {
		total := 0
		for _, count := range s.Syscalls {
			total += count
		}
		calls, wasted = strconv.Itoa(total), strconv.Itoa(s.Wasted)
	}
	if s.AchievedConcurrency > 0 {
		overlap = fmt.Sprintf("%.0f", s.AchievedConcurrency)
	}
	atOnce := "?"
	if s.PeakInFlight != nil {
		atOnce = strconv.Itoa(*s.PeakInFlight)
	}
	drops, retrans := "n/a", "n/a"
	if r.Kernel != nil {
		drops, retrans = strconv.FormatInt(r.Kernel.ListenDrops, 10), strconv.FormatInt(r.Kernel.SynRetrans, 10)
	}
	cpuShare := 0.0
	if s.WallMS > 0 {
		cpuShare = 100 * s.CPUMS / s.WallMS
	}
	serverCPU := "n/a"
	if s.ServerCPUMS != nil {
		serverCPU = fmt.Sprintf("%.2fs", *s.ServerCPUMS/1000)
	}
	fmt.Fprintf(w, "  %-30s %7.2fs %7.2fs %4.0f%% %8s %6.1f MB %9s %9s %8s %8s %11s %6s %7s  %s\n",
		r.Model, s.WallMS/1000, s.CPUMS/1000, cpuShare, serverCPU, float64(s.MaxRSSKB)/1024, calls, wasted,
		overlap, atOnce, fmt.Sprintf("%d/%d", s.OK, s.Failed), drops, retrans, r.LargestN)
}
