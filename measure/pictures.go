//go:build unix

package main

// pictures.go is measure -pictures (make pictures): it makes the runs that
// docs/pictures/*.svg are drawn from, and writes the files. The drawing is
// in timelines.go, bars.go and curve.go, on svg.go's canvas.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
)

// drawPictures makes the pictures the options ask for.
func drawPictures(ctx context.Context, o options, log io.Writer) error {
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
	// The timelines and a comparison run now need the programs and one test
	// server, which they share; a comparison read from a file and the curve
	// (a benchmark) need neither.
	bin, srv := "", server{}
	if want["timelines"] || (want["comparison"] && o.comparison == "") {
		var done, stop func()
		if bin, done, err = programs(ctx, o.bin, log); err != nil {
			return err
		}
		defer done()
		if srv, stop, err = startServer(ctx, filepath.Join(bin, "testserver")); err != nil {
			return err
		}
		defer stop()
	}
	if want["timelines"] {
		if err := makeTimelines(ctx, bin, srv.addr, o.out, log); err != nil {
			return err
		}
	}
	if want["comparison"] {
		if err := makeComparison(ctx, bin, srv, o, log); err != nil {
			return err
		}
	}
	if want["curve"] {
		return makeCurve(ctx, root, o, log)
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
// (epoll.go) or on kqueue (kqueue.go); elsewhere it only says why it cannot.
func stage05Runs(goos string) bool {
	return goos == "linux" || goos == "darwin" || goos == "freebsd"
}

// makeTimelines runs every stage against the test server at addr and draws
// timelines.svg.
func makeTimelines(ctx context.Context, bin, addr, out string, log io.Writer) error {
	step := progress(log, fmt.Sprintf("timelines: every stage, %d requests × %v", timelineN, timelineDelay))
	t := timelineSet{Machine: describeMachine(), N: timelineN, Delay: timelineDelay}
	for _, s := range stages {
		if s.Dir == "05-epoll" && !stage05Runs(runtime.GOOS) {
			t.Panels = append(t.Panels, timelinePanel{Stage: s, Note: "not drawn: stage 05 runs on Linux (epoll), macOS and FreeBSD (kqueue), and this run was on " + runtime.GOOS})
			continue
		}
		summary, err := runStage(ctx, filepath.Join(bin, s.Dir), addr, workload{N: timelineN, Delay: timelineDelay})
		if err != nil {
			return err
		}
		t.Panels = append(t.Panels, timelinePanel{Stage: s, Summary: summary})
	}
	step()
	return write(log, filepath.Join(out, "timelines.svg"), drawTimelines(t))
}

// makeComparison runs the comparison (or reads -comparison) and draws
// comparison.svg.
func makeComparison(ctx context.Context, bin string, srv server, o options, log io.Writer) error {
	var c comparison
	if o.comparison != "" {
		var err error
		if c, err = loadComparison(o.comparison); err != nil {
			return err
		}
	} else {
		step := progress(log, "comparison: every stage and model, -workloads "+namesOf(o.workloads))
		c = runComparison(ctx, bin, srv, o.workloads, 1, log)
		step()
	}
	if err := saveComparison(o.saveComparison, c, log); err != nil {
		return err
	}
	return write(log, filepath.Join(o.out, "comparison.svg"), drawComparison(c))
}

// makeCurve runs the wait-cost benchmark and draws scaling-curve.svg. The
// benchmark needs Linux: elsewhere the picture is left as it is.
func makeCurve(ctx context.Context, root string, o options, log io.Writer) error {
	if runtime.GOOS != "linux" {
		if o.only == "curve" {
			return errors.New("the scaling curve's benchmark needs Linux (epoll)")
		}
		fmt.Fprintf(log, "scaling-curve.svg left as it is: its benchmark needs Linux, and this is %s\n", runtime.GOOS)
		return nil
	}
	step := progress(log, "curve: go test -bench WaitCost (about 10 s)")
	output, err := runBenchmark(ctx, root, log)
	if err != nil {
		return err
	}
	step()
	points, err := parseBenchmark(output)
	if err != nil {
		return err
	}
	return write(log, filepath.Join(o.out, "scaling-curve.svg"), drawCurve(curveSet{Machine: describeMachine(), Points: points}))
}

// write writes a file and says so.
func write(log io.Writer, path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(log, "wrote %s\n", path)
	return nil
}
