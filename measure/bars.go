//go:build unix

package main

// bars.go draws comparison.svg: the comparison's tables (compare.go) as bars.
// One section per workload, one row per model, and three small charts side
// by side: wall time, CPU time, peak memory.

import (
	"fmt"
	"math"
	"strings"
)

// A metric is one of the three small charts.
type metric struct {
	Title  string
	Value  func(s *summary) float64
	Format string // for the value written after each bar
}

var metrics = []metric{
	{"wall time (s)", func(s *summary) float64 { return s.WallMS / 1000 }, "%.2f"},
	{"CPU time (s)", func(s *summary) float64 { return s.CPUMS / 1000 }, "%.2f"},
	{"peak RSS (MB)", func(s *summary) float64 { return float64(s.MaxRSSKB) / 1024 }, "%.1f"},
}

// Layout of the comparison, in pixels.
const (
	cmpLabels  = margin         // model names start here
	cmpCharts  = 210.0          // the first chart starts here
	cmpChart   = 166.0          // each chart's width, gap included
	cmpGap     = 12.0           // between charts
	cmpRoom    = 36.0           // kept right of the longest bar for its value
	cmpOK      = width - margin // the ok column ends here (right-aligned)
	cmpPitch   = 17.0           // from one model's row to the next
	cmpBar     = 11.0           // a bar's height
	cmpSection = 26.0           // a workload's heading
	cmpAfter   = 14.0           // below a workload
)

// drawComparison makes comparison.svg.
func drawComparison(c comparison) []byte {
	var cv canvas
	title := "Every model on the same workloads: wall time, CPU time, peak memory"
	y := cv.header(title, []string{
		"The client process alone: the test server runs in a process of its own. Shorter is better.",
		"Dashed line: the server's delay, the least any model can take. Red: requests that failed.",
		"machine: " + c.Machine.String(),
		"made by: go run ./measure -pictures: the comparison (go run ./measure) on -workloads " + workloadNames(c),
	})
	scales := metricMaxima(c)
	y += 6
	for i, m := range metrics {
		cv.text("head", "start", chartX(i), y, m.Title)
	}
	cv.text("head", "end", cmpOK, y, "ok/asked")
	y += 8
	for _, w := range c.Workloads {
		y = drawWorkload(&cv, w, y, scales)
	}
	if hasProcesses(c) {
		cv.text("note", "start", margin, y+6, "CPU time of 06's process per request includes its children's; peak RSS is the largest one process's, not their sum")
		cv.text("note", "start", margin, y+21, "(the children's together, about 1 GB at 1,100 requests, are not in it: see 06-goroutines-compare's README).")
		y += 30
	}
	return cv.svg(title, y+4)
}

// hasProcesses tells whether the process-per-request model ran, whose
// figures need a footnote.
func hasProcesses(c comparison) bool {
	for _, w := range c.Workloads {
		for _, r := range w.Rows {
			if strings.Contains(r.Model, "process per request") && r.Summary != nil {
				return true
			}
		}
	}
	return false
}

// workloadNames lists the comparison's workloads, as -workloads takes them.
func workloadNames(c comparison) string {
	ws := make([]workload, len(c.Workloads))
	for i, w := range c.Workloads {
		ws[i] = w.workload
	}
	return namesOf(ws)
}

// metricMaxima finds each metric's largest value over every workload, so a
// chart has one scale from the top of the picture to the bottom.
func metricMaxima(c comparison) []float64 {
	maxima := make([]float64, len(metrics))
	for i, m := range metrics {
		maxima[i] = 1e-9
		for _, w := range c.Workloads {
			if i == 0 {
				maxima[i] = math.Max(maxima[i], w.Delay.Seconds())
			}
			for _, r := range w.Rows {
				if r.Summary != nil {
					maxima[i] = math.Max(maxima[i], m.Value(r.Summary))
				}
			}
		}
	}
	return maxima
}

// chartX is where chart i starts.
func chartX(i int) float64 { return cmpCharts + float64(i)*cmpChart }

// barLength is how long a bar of value v is on a chart whose largest value is max.
func barLength(v, max float64) float64 {
	return (cmpChart - cmpGap - cmpRoom) * v / max
}

// drawWorkload draws one workload's section and returns the y below it.
func drawWorkload(cv *canvas, w workloadRun, y float64, scales []float64) float64 {
	cv.line("grid", margin, y+4, cmpOK, y+4)
	heading := fmt.Sprintf("%s requests × %s (%s)", group(w.N), durationText(w.Delay), w.Name)
	cv.text("head", "start", cmpLabels, y+cmpSection-6, heading)
	top := y + cmpSection
	for i, r := range w.Rows {
		drawModelRow(cv, r, w, top+float64(i)*cmpPitch, scales)
	}
	return top + float64(len(w.Rows))*cmpPitch + cmpAfter
}

// drawModelRow draws one model: its name, then its three bars and the count
// of requests that succeeded; or why it did not run.
func drawModelRow(cv *canvas, r row, w workloadRun, y float64, scales []float64) {
	base := y + cmpBar - 1.5 // text baseline, level with the bar
	cv.text("label", "start", cmpLabels, base, r.Model)
	switch {
	case r.Skipped != "":
		cv.text("skip", "start", chartX(0)+6, base, "skipped: "+r.Skipped)
		return
	case r.Error != "" || r.Summary == nil:
		cv.text("bad", "start", chartX(0)+6, base, "failed: "+shorten(r.Error, 90))
		return
	}
	// Each chart's baseline, and the delay on the wall time's, drawn row by
	// row so that they stop where a row says why it has no bars.
	for i := range metrics {
		cv.line("axis", chartX(i), y-3, chartX(i), y+cmpPitch-3)
	}
	if w.Delay > 0 {
		dx := chartX(0) + barLength(w.Delay.Seconds(), scales[0])
		cv.line("ref", dx, y-3, dx, y+cmpPitch-3)
	}
	s := r.Summary
	for i, m := range metrics {
		v := m.Value(s)
		length := math.Max(barLength(v, scales[i]), 1)
		cv.rect("bar", colourOf(r.Stage), chartX(i), y, length, cmpBar)
		cv.text("value", "start", chartX(i)+length+4, base, fmt.Sprintf(m.Format, v))
	}
	class := "note"
	if s.Failed > 0 || s.OK < w.N {
		class = "bad"
	}
	cv.text(class, "end", cmpOK, base, group(s.OK)+"/"+group(w.N))
}

// shorten cuts text to at most max characters.
func shorten(text string, max int) string {
	runes := []rune(text)
	if len(runes) <= max {
		return text
	}
	return string(runes[:max-1]) + "…"
}
