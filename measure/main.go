//go:build unix

// Command measure is the tutorial's measuring program. It is not a lesson:
// it builds every stage and the test server, runs the stages' programs
// against one test server in a process of its own, and reads what each run
// did from the stage's -json summary. It never imports a stage (a stage is a
// package main, and stands alone).
//
//	go run ./measure                          # the comparison's tables (make compare)
//	go run ./measure -workloads few,20x100ms  # chosen workloads only
//	go run ./measure -json                    # the comparison as one JSON object
//	go run ./measure -runs 3                  # each row 3 times, interleaved: the medians
//	go run ./measure -runs 3 -write docs/performance.md,docs/c10k.md,README.md   # make performance
//	go run ./measure -comparison saved.json   # the tables of a saved -json run
//	go run ./measure -pictures                # draw docs/pictures/*.svg (make pictures)
//	go run ./measure -pictures -only curve    # one picture of the three
//
// Without -pictures it prints the comparison: every stage, stage 06's
// other models, and the clients a reader would use instead (Go's net/http,
// Python's asyncio, ab and curl when installed: clients.go), on the same
// workloads, one table per workload (compare.go). Each row's CPU and memory
// are the client's alone, over its whole life, since the server runs in a
// process of its own; a small process of measure's starts every program, so
// that none inherits measure's memory (spawner.go). The server's CPU time
// during each run is a column too.
// Around each run it reads the kernel's TCP counters (netstat.go), to show
// the SYNs dropped when a burst of connects passes the listen backlog. With
// -runs N it runs every row N times, interleaved, and prints the medians
// (median.go); with -write it also puts the tables into the blocks of the
// docs marked as its output (generated.go), which is make performance.
//
// With -pictures it draws, from real runs (pictures.go):
//
//   - timelines.svg: each stage with -n 8 -delay 200ms -json; one panel per
//     stage, one bar per request (start_ms to end_ms), on one time axis;
//   - comparison.svg: the comparison on the hundred, many and scale
//     workloads (30 to 40 s), or the JSON of one saved earlier
//     (-comparison FILE), as bars of wall time, CPU time and peak memory;
//   - scaling-curve.svg: make curve's benchmark (Linux only): one select,
//     poll and epoll_wait against the number of idle sockets watched.
//
// The SVG is written by hand, with fmt and encoding/xml's escaping: no
// charting library. Given the same data, the files are the same, byte for
// byte: no dates, no addresses, no temporary folders in them.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// options are the command line.
type options struct {
	workloads []workload // the comparison's workloads
	bin       string     // a folder with the programs already built ("": build them now)
	asJSON    bool       // print the comparison as JSON instead of its tables
	runs      int        // how many times each row runs: the table gives the medians
	clients   bool       // run the clients that are not stages too (clients.go)
	write     []string   // Markdown files whose generated blocks to rewrite with the tables

	pictures       bool   // draw the pictures instead of printing the comparison
	only           string // all, timelines, comparison or curve
	out            string // where the SVGs go ("": docs/pictures in the repository)
	comparison     string // a saved comparison JSON to print or draw instead of running one
	saveComparison string // where to keep the JSON of a comparison run now
}

// The workloads each way of running measures, unless -workloads says others.
const (
	tableWorkloads   = "few,hundred,many,scale,scale10k"
	pictureWorkloads = "hundred,many,scale" // few is too short to see as bars
)

// picturesOnly are the flags that mean something with -pictures alone.
var picturesOnly = []string{"only", "out"}

// tablesOnly are the flags that mean something for the tables alone.
var tablesOnly = []string{"runs", "write", "clients"}

func main() {
	if os.Getenv(spawnerEnv) == "1" { // started by measure to start the programs (spawner.go)
		os.Exit(spawnerMain(os.Stdin, os.Stdout))
	}
	// Ctrl-C ends the programs being measured and the test server too: they
	// all run under this context.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	spawner, err := startSpawner()
	if err != nil {
		fmt.Fprintln(os.Stderr, "measure:", err)
		os.Exit(1)
	}
	theSpawner = spawner
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	spawner.stop()
	stop()
	os.Exit(code)
}

// run is the whole program: 2 for a command line it cannot follow, 1 when a
// measurement could not be made, 0 when it was.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions(args, stderr)
	if err != nil {
		if err != flag.ErrHelp {
			fmt.Fprintln(stderr, "measure:", err)
		}
		return 2
	}
	if o.pictures {
		err = drawPictures(ctx, o, stderr)
	} else {
		err = compare(ctx, o, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "measure:", err)
		return 1
	}
	return 0
}

// parseOptions reads the command line, and refuses a flag that means
// nothing the way the program is asked to run, rather than ignore it.
func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("measure", flag.ContinueOnError)
	fs.SetOutput(stderr)
	workloads := fs.String("workloads", "", "workloads to run: "+workloadNamesHelp+", or NxDELAY such as 20x100ms (default "+tableWorkloads+"; with -pictures "+pictureWorkloads+")")
	fs.StringVar(&o.bin, "bin", "", "`folder` with the stages' programs and testserver already built (default: build them now)")
	fs.BoolVar(&o.asJSON, "json", false, "print the comparison as one JSON object")
	fs.IntVar(&o.runs, "runs", 1, "run each row this many times, interleaved, and print the medians")
	fs.BoolVar(&o.clients, "clients", true, "run the clients that are not stages too: Go's net/http, Python's asyncio, ab and curl (-clients=false: the stages alone, whatever is installed)")
	write := fs.String("write", "", "also write the tables into the blocks marked <!-- generated by: make performance --> of these comma-separated Markdown `files`")
	fs.BoolVar(&o.pictures, "pictures", false, "draw docs/pictures/*.svg from real runs instead of printing the comparison")
	fs.StringVar(&o.only, "only", "all", "with -pictures: which picture to make: all, timelines, comparison or curve")
	fs.StringVar(&o.out, "out", "", "with -pictures: `folder` to write the SVG files to (default: docs/pictures in the repository)")
	fs.StringVar(&o.comparison, "comparison", "", "print the tables (or with -pictures draw comparison.svg) from this saved `file` (go run ./measure -json output) instead of running the comparison")
	fs.StringVar(&o.saveComparison, "save-comparison", "", "also write the JSON of the comparison run now to this `file`, for -comparison next time")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected %q: measure takes flags only (-h lists them)", fs.Arg(0))
	}
	var misplaced []string
	fs.Visit(func(f *flag.Flag) {
		if !o.pictures && slices.Contains(picturesOnly, f.Name) || o.pictures && (f.Name == "json" || slices.Contains(tablesOnly, f.Name)) {
			misplaced = append(misplaced, "-"+f.Name)
		}
	})
	switch {
	case len(misplaced) > 0 && o.pictures:
		return o, fmt.Errorf("%s: for the comparison's tables, not for -pictures (-save-comparison keeps its JSON)", strings.Join(misplaced, ", "))
	case len(misplaced) > 0:
		return o, fmt.Errorf("%s: only with -pictures", strings.Join(misplaced, ", "))
	case o.runs < 1:
		return o, fmt.Errorf("-runs %d: want 1 or more", o.runs)
	case *write != "" && o.asJSON:
		return o, fmt.Errorf("-write puts the tables into the docs, and -json prints no tables")
	}
	if *write != "" {
		o.write = strings.Split(*write, ",")
	}
	if *workloads == "" {
		*workloads = tableWorkloads
		if o.pictures {
			*workloads = pictureWorkloads
		}
	}
	var err error
	o.workloads, err = parseWorkloads(*workloads)
	return o, err
}

// progress says on log what is starting; calling what it returns says how
// long it took.
func progress(log io.Writer, what string) func() {
	fmt.Fprintf(log, "%s …\n", what)
	start := time.Now()
	return func() { fmt.Fprintf(log, "  done in %.1fs\n", time.Since(start).Seconds()) }
}
