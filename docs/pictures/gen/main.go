// Command gen draws the pictures in docs/pictures from real runs of the
// stages. Run it from the repository (make pictures):
//
//	go run ./docs/pictures/gen                          # all three pictures
//	go run ./docs/pictures/gen -only timelines          # one of them
//	go run ./docs/pictures/gen -comparison saved.json   # reuse a comparison's JSON
//
// It builds the test server and every stage, then
//
//   - timelines.svg: starts one test server process and runs each stage
//     against it with -n 8 -delay 200ms -json; one panel per stage, one
//     bar per request (start_ms to end_ms), on one time axis;
//   - comparison.svg: runs `06-goroutines-compare -compare -json` on the
//     hundred, many and scale workloads (30 to 40 s), or reads that JSON
//     from -comparison, and draws wall time, CPU time and peak memory;
//   - scaling-curve.svg: runs make curve's benchmark (Linux only) and plots
//     the time of one select, poll and epoll_wait against the idle sockets.
//
// The SVG is written by hand, with fmt and encoding/xml's escaping: no
// charting library. Given the same data, the files are the same, byte for
// byte: no dates, no addresses, no temporary folders in them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

// options are the command line.
type options struct {
	out            string // where the SVGs go ("": docs/pictures in the repository)
	only           string // all, timelines, comparison or curve
	comparison     string // a saved comparison JSON to draw instead of running one
	saveComparison string // where to keep the JSON of a comparison this run makes
}

func main() {
	var o options
	flag.StringVar(&o.out, "out", "", "folder to write the SVG files to (default: docs/pictures in the repository)")
	flag.StringVar(&o.only, "only", "all", "which picture to make: all, timelines, comparison or curve")
	flag.StringVar(&o.comparison, "comparison", "", "draw comparison.svg from this saved `file` (06-goroutines-compare -compare -json output) instead of running the comparison")
	flag.StringVar(&o.saveComparison, "save-comparison", "", "also write the comparison's JSON to this `file`, for -comparison next time")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// run makes the pictures the options ask for.
func run(ctx context.Context, o options) error {
	want, err := chosen(o.only)
	if err != nil {
		return err
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	if o.out == "" {
		o.out = filepath.Join(root, "docs", "pictures")
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	bin := ""
	if want["timelines"] || (want["comparison"] && o.comparison == "") {
		step := progress("building the test server and the stages")
		if bin, err = buildPrograms(ctx, root); err != nil {
			return err
		}
		defer os.RemoveAll(bin)
		step()
	}
	if want["timelines"] {
		if err := makeTimelines(ctx, bin, o.out); err != nil {
			return err
		}
	}
	if want["comparison"] {
		if err := makeComparison(ctx, bin, o); err != nil {
			return err
		}
	}
	if want["curve"] {
		return makeCurve(ctx, root, o)
	}
	return nil
}

// chosen reads -only.
func chosen(only string) (map[string]bool, error) {
	switch only {
	case "all":
		return map[string]bool{"timelines": true, "comparison": true, "curve": true}, nil
	case "timelines", "comparison", "curve":
		return map[string]bool{only: true}, nil
	}
	return nil, fmt.Errorf("-only %q: want all, timelines, comparison or curve", only)
}

// stage05Runs tells whether stage 05 can run on a system: on epoll
// (main.go) or on its kqueue twin (main_kqueue.go); elsewhere it only says
// why it cannot.
func stage05Runs(goos string) bool {
	return goos == "linux" || goos == "darwin" || goos == "freebsd"
}

// makeTimelines runs every stage against one test server process and draws
// timelines.svg.
func makeTimelines(ctx context.Context, bin, out string) error {
	step := progress(fmt.Sprintf("timelines: every stage, %d requests × %v", timelineN, timelineDelay))
	addr, stop, err := startServer(ctx, filepath.Join(bin, "testserver"))
	if err != nil {
		return err
	}
	defer stop()
	t := timelineSet{Machine: describeMachine(), N: timelineN, Delay: timelineDelay}
	for _, s := range stages {
		if s.Dir == "05-epoll" && !stage05Runs(runtime.GOOS) {
			t.Panels = append(t.Panels, timelinePanel{Stage: s, Note: "not drawn: stage 05 runs on Linux (epoll), macOS and FreeBSD (kqueue), and this run was on " + runtime.GOOS})
			continue
		}
		summary, err := runStage(ctx, filepath.Join(bin, s.Dir), addr, timelineN, timelineDelay)
		if err != nil {
			return err
		}
		t.Panels = append(t.Panels, timelinePanel{Stage: s, Summary: summary})
	}
	step()
	return write(filepath.Join(out, "timelines.svg"), drawTimelines(t))
}

// makeComparison runs the comparison (or reads -comparison) and draws
// comparison.svg.
func makeComparison(ctx context.Context, bin string, o options) error {
	var data []byte
	var err error
	if o.comparison != "" {
		data, err = os.ReadFile(o.comparison)
	} else {
		step := progress("comparison: 06-goroutines-compare -compare -json (30 to 40 s)")
		data, err = runComparison(ctx, bin)
		step()
	}
	if err != nil {
		return err
	}
	if o.saveComparison != "" {
		if err := write(o.saveComparison, data); err != nil {
			return err
		}
	}
	c, err := parseComparison(data)
	if err != nil {
		return err
	}
	return write(filepath.Join(o.out, "comparison.svg"), drawComparison(c))
}

// makeCurve runs the wait-cost benchmark and draws scaling-curve.svg. The
// benchmark needs Linux: elsewhere the picture is left as it is.
func makeCurve(ctx context.Context, root string, o options) error {
	if runtime.GOOS != "linux" {
		if o.only == "curve" {
			return errors.New("the scaling curve's benchmark needs Linux (epoll)")
		}
		fmt.Fprintf(os.Stderr, "scaling-curve.svg left as it is: its benchmark needs Linux, and this is %s\n", runtime.GOOS)
		return nil
	}
	step := progress("curve: go test -bench WaitCost (about 10 s)")
	output, err := runBenchmark(ctx, root)
	if err != nil {
		return err
	}
	step()
	points, err := parseBenchmark(output)
	if err != nil {
		return err
	}
	return write(filepath.Join(o.out, "scaling-curve.svg"), drawCurve(curveSet{Machine: describeMachine(), Points: points}))
}

// progress says on stderr what is starting; calling what it returns says
// how long it took.
func progress(what string) func() {
	fmt.Fprintf(os.Stderr, "%s …\n", what)
	start := time.Now()
	return func() { fmt.Fprintf(os.Stderr, "  done in %.1fs\n", time.Since(start).Seconds()) }
}

// write writes a file and says so.
func write(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", path)
	return nil
}
