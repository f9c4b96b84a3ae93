//go:build unix

package main

// The tests draw every picture from fixed, made-up data: no stage runs, no
// server, no benchmark. They check that each SVG is well-formed XML, has a
// bar or point for each thing measured, and says what it should.

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var fakeMachine = machine{OS: "linux", Arch: "amd64", Kernel: "6.1.0", CPU: "Fake CPU @ 3.0GHz", Go: "go1.26.0", Cores: 4}

// drawing is what an SVG holds, as the tests look at it.
type drawing struct {
	classes map[string]int // how many elements have each class
	texts   []string       // every text element's content, in order
}

// decode reads an SVG with encoding/xml, failing the test if it is not
// well-formed, or if some text would run past the picture's right edge.
func decode(t *testing.T, svg []byte) drawing {
	t.Helper()
	d := drawing{classes: map[string]int{}}
	dec := xml.NewDecoder(bytes.NewReader(svg))
	var inText bool
	var textStart float64
	var textClass, anchor string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			attrs := map[string]string{}
			for _, a := range tok.Attr {
				attrs[a.Name.Local] = a.Value
			}
			for _, class := range strings.Fields(attrs["class"]) {
				d.classes[class]++
			}
			if tok.Name.Local == "text" {
				inText, textClass, anchor = true, attrs["class"], attrs["text-anchor"]
				textStart, _ = strconv.ParseFloat(attrs["x"], 64)
			}
		case xml.CharData:
			if inText {
				d.texts = append(d.texts, string(tok))
				if anchor == "start" && textStart+textWidth(string(tok), fontSize(textClass)) > width {
					t.Errorf("text %q (class %s) runs past the right edge", tok, textClass)
				}
			}
		case xml.EndElement:
			inText = false
		}
	}
	return d
}

// fontSize is the size of a text class in the stylesheet.
func fontSize(class string) float64 {
	switch class {
	case "title":
		return 18
	case "head":
		return 13
	case "sub", "label", "":
		return 12
	}
	return 11
}

// has fails the test unless some text contains want.
func (d drawing) has(t *testing.T, want string) {
	t.Helper()
	for _, text := range d.texts {
		if strings.Contains(text, want) {
			return
		}
	}
	t.Errorf("no text contains %q; the texts are:\n%s", want, strings.Join(d.texts, "\n"))
}

// fakeSummary makes a summary of n requests of 200 ms, each starting gap ms
// after the one before; the ids in failed failed.
func fakeSummary(n int, gap float64, failed ...int) *summary {
	s := &summary{Requests: n, CPUMS: 1.5}
	for id := 1; id <= n; id++ {
		r := result{ID: id, StartMS: float64(id-1) * gap, EndMS: float64(id-1)*gap + 200}
		for _, f := range failed {
			if f == id {
				r.Error = "connection refused"
			}
		}
		if r.Error == "" {
			s.OK++
		} else {
			s.Failed++
		}
		s.WallMS = r.EndMS
		s.Results = append(s.Results, r)
	}
	return s
}

func fakeTimelines() timelineSet {
	t := timelineSet{Machine: fakeMachine, N: 8, Delay: 200 * time.Millisecond}
	for _, s := range stages {
		p := timelinePanel{Stage: s}
		switch s.Dir {
		case "01-blocking":
			p.Summary = fakeSummary(8, 203)
		case "03-select-multiplex":
			p.Summary = fakeSummary(8, 0, 3)
		case "05-epoll":
			p.Note = "not drawn: stage 05 runs on Linux (epoll), macOS and FreeBSD (kqueue), and this run was on netbsd"
		default:
			p.Summary = fakeSummary(8, 0)
		}
		t.Panels = append(t.Panels, p)
	}
	return t
}

func TestTimelines(t *testing.T) {
	d := decode(t, drawTimelines(fakeTimelines()))
	if got, want := d.classes["bar"], 5*8; got != want {
		t.Errorf("%d request bars; want %d (8 for each of the 5 stages that ran)", got, want)
	}
	if got := d.classes["failed"]; got != 1 {
		t.Errorf("%d failed bars; want 1", got)
	}
	if got := d.classes["cpu"]; got != 5 {
		t.Errorf("%d CPU bars; want 5", got)
	}
	for _, want := range []string{
		"The same 8 requests", "4 cores · Fake CPU @ 3.0GHz", "-n 8 -delay 200ms -json",
		"01 blocking: one request at a time", "06 goroutines (net)", "wall 1,621 ms", "CPU 1.5 ms", "7/8 ok",
		"not drawn: stage 05 runs on Linux (epoll)", "1,600", "milliseconds",
	} {
		d.has(t, want)
	}
}

func fakeComparison() comparison {
	ran := func(model, stage string, wallMS, cpuMS float64, rssKB int64, ok, n int) row {
		s := &summary{Requests: n, OK: ok, Failed: n - ok, WallMS: wallMS, CPUMS: cpuMS, MaxRSSKB: rssKB}
		return row{Model: model, Stage: stage, Summary: s}
	}
	return comparison{
		Machine: fakeMachine,
		Server:  "127.0.0.1:40000",
		Workloads: []workloadRun{
			{workload: workload{Name: "many", N: 1100, Delay: time.Second}, Rows: []row{
				{Model: "01 blocking, one at a time", Stage: "01-blocking", Skipped: "one at a time would take 18m20s"},
				ran("02 nonblocking, busy-polling", "02-nonblocking-spin", 1100, 1050, 8900, 1100, 1100),
				ran("03 select", "03-select-multiplex", 1090, 41, 9700, 1017, 1100),
			}},
			{workload: workload{Name: "scale", N: 5000, Delay: time.Second}, Rows: []row{
				{Model: "03 select", Stage: "03-select-multiplex", Skipped: "select stops at FD_SETSIZE"},
				ran("05 epoll, level-triggered", "05-epoll", 1280, 190, 14900, 5000, 5000),
				{Model: "06 thread per request", Stage: "06-goroutines-compare", Error: "06-goroutines-compare: signal: killed"},
			}},
		},
	}
}

func TestComparison(t *testing.T) {
	d := decode(t, drawComparison(fakeComparison()))
	if got, want := d.classes["bar"], 3*3; got != want {
		t.Errorf("%d bars; want %d (wall, CPU and memory for each of the 3 rows that ran)", got, want)
	}
	if got := d.classes["skip"]; got != 2 {
		t.Errorf("%d skipped rows; want 2", got)
	}
	if got := d.classes["bad"]; got != 2 {
		t.Errorf("%d texts marked bad; want 2 (1,017/1,100 and the failed program)", got)
	}
	for _, want := range []string{
		"wall time (s)", "CPU time (s)", "peak RSS (MB)", "ok/asked",
		"1,100 requests × 1 s (many)", "5,000 requests × 1 s (scale)", "-workloads many,scale", "4 cores · Fake CPU",
		"skipped: one at a time would take 18m20s", "1,017/1,100", "5,000/5,000", "failed: 06-goroutines-compare: signal: killed",
		"1.10", "1.05", "8.7", // 02's wall s, CPU s, RSS MB
	} {
		d.has(t, want)
	}
	for _, text := range d.texts {
		if strings.Contains(text, "children") {
			t.Errorf("a footnote on the process model, which did not run: %q", text)
		}
	}
}

// fakeBenchmark is go test -bench's output, as make curve prints it.
const fakeBenchmark = `goos: linux
goarch: amd64
pkg: blocking-to-epoll/06-goroutines-compare
cpu: Fake CPU @ 3.0GHz
BenchmarkWaitCost/select/10-4         	    2000	      1872 ns/op	       187.2 ns/socket
BenchmarkWaitCost/select/100-4        	    2000	     14557 ns/op	       145.6 ns/socket
BenchmarkWaitCost/select/1000-4       	    2000	    198185 ns/op	       198.2 ns/socket
BenchmarkWaitCost/poll/10-4           	    2000	      1987 ns/op	       198.7 ns/socket
BenchmarkWaitCost/poll/100-4          	    2000	     14375 ns/op	       143.8 ns/socket
BenchmarkWaitCost/poll/1000-4         	    2000	    196738 ns/op	       196.7 ns/socket
BenchmarkWaitCost/poll/10000-4        	    2000	   2945804 ns/op	       294.6 ns/socket
BenchmarkWaitCost/epoll/10-4          	    2000	       439.5 ns/op	        43.95 ns/socket
BenchmarkWaitCost/epoll/100-4         	    2000	       320.3 ns/op	         3.203 ns/socket
BenchmarkWaitCost/epoll/1000-4        	    2000	       323.4 ns/op	         0.3234 ns/socket
BenchmarkWaitCost/epoll/10000-4       	    2000	       356.6 ns/op	         0.03566 ns/socket
PASS
ok  	blocking-to-epoll/06-goroutines-compare	8.123s
`

func TestParseBenchmark(t *testing.T) {
	points, err := parseBenchmark(fakeBenchmark)
	if err != nil {
		t.Fatal(err)
	}
	if len(points) != 11 {
		t.Fatalf("%d points; want 11", len(points))
	}
	if got, want := points[6], (benchPoint{"poll", 10000, 2945804}); got != want {
		t.Errorf("point 6 is %+v; want %+v", got, want)
	}
	if got, want := points[7], (benchPoint{"epoll", 10, 439.5}); got != want {
		t.Errorf("point 7 is %+v; want %+v", got, want)
	}
	if _, err := parseBenchmark("PASS\n"); err == nil {
		t.Error("output without results gave no error")
	}
}

func TestCurve(t *testing.T) {
	points, err := parseBenchmark(fakeBenchmark)
	if err != nil {
		t.Fatal(err)
	}
	d := decode(t, drawCurve(curveSet{Machine: fakeMachine, Points: points}))
	for call, want := range map[string]int{"select": 3, "poll": 4, "epoll": 4} {
		if got := d.classes[call]; got != want {
			t.Errorf("%d %s points; want %d", got, call, want)
		}
	}
	if got := d.classes["curve"]; got != 3 {
		t.Errorf("%d curves; want 3", got)
	}
	for _, want := range []string{
		"select (", "poll (", "epoll_wait (", "-bench WaitCost -benchtime 2000x", "4 cores · Fake CPU",
		"1.9 µs", "198 µs", "2.9 ms", "440 ns", "357 ns", "100 ns", "1 µs", "10 ms", "10,000", "FD_SETSIZE",
	} {
		d.has(t, want)
	}
}

// TestSameDataSameFile: drawing twice gives the same bytes, and nothing of
// the run that changes each time (the server's address) gets in.
func TestSameDataSameFile(t *testing.T) {
	points, _ := parseBenchmark(fakeBenchmark)
	for name, draw := range map[string]func() []byte{
		"timelines":  func() []byte { return drawTimelines(fakeTimelines()) },
		"comparison": func() []byte { return drawComparison(fakeComparison()) },
		"curve":      func() []byte { return drawCurve(curveSet{Machine: fakeMachine, Points: points}) },
	} {
		first, second := draw(), draw()
		if !bytes.Equal(first, second) {
			t.Errorf("%s: two drawings of the same data differ", name)
		}
		if bytes.Contains(first, []byte("127.0.0.1")) {
			t.Errorf("%s: the server's address is in the picture", name)
		}
	}
}

func TestFormats(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{group(5), "5"}, {group(1017), "1,017"}, {group(1234567), "1,234,567"},
		{nsText(320.3), "320 ns"}, {nsText(1872), "1.9 µs"}, {nsText(14557), "15 µs"}, {nsText(2945804), "2.9 ms"}, {nsText(2000), "2.0 µs"},
		{msText(3.24), "3.2 ms"}, {msText(1621.4), "1,621 ms"},
		{durationText(200 * time.Millisecond), "200 ms"}, {durationText(time.Second), "1 s"},
		{num(-0.01), "0"}, {num(12.345), "12.3"}, {num(7), "7"},
		{strconv.FormatFloat(niceStep(1643, 10), 'f', -1, 64), "200"}, {strconv.FormatFloat(niceStep(206, 10), 'f', -1, 64), "50"},
	} {
		if c.got != c.want {
			t.Errorf("got %q; want %q", c.got, c.want)
		}
	}
}

func TestChosen(t *testing.T) {
	if all, err := chosen("all"); err != nil || len(all) != 3 {
		t.Errorf("chosen(all) = %v, %v; want the three pictures", all, err)
	}
	if one, err := chosen("curve"); err != nil || !one["curve"] || len(one) != 1 {
		t.Errorf("chosen(curve) = %v, %v; want curve alone", one, err)
	}
	if _, err := chosen("pie"); err == nil {
		t.Error("chosen(pie) gave no error")
	}
}

// TestPicturesFromSavedComparison: -pictures -only comparison -comparison
// FILE draws from the file alone (no stage is built or run), and
// -save-comparison writes what -comparison reads back.
func TestPicturesFromSavedComparison(t *testing.T) {
	dir := t.TempDir()
	saved, resaved := filepath.Join(dir, "saved.json"), filepath.Join(dir, "again.json")
	var data bytes.Buffer
	if err := writeJSON(&data, fakeComparison()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(saved, data.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	args := []string{"-pictures", "-only", "comparison", "-comparison", saved, "-save-comparison", resaved, "-out", dir, "-bin", filepath.Join(dir, "no such folder")}
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr.String())
	}
	svg, err := os.ReadFile(filepath.Join(dir, "comparison.svg"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(svg, drawComparison(fakeComparison())) {
		t.Error("comparison.svg is not the drawing of the saved comparison")
	}
	again, err := os.ReadFile(resaved)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, data.Bytes()) {
		t.Errorf("-save-comparison wrote another JSON than the one read:\n%s", again)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Errorf("%d files in the output folder; want the two JSON files and comparison.svg alone", len(entries))
	}
}
