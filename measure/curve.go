//go:build unix

package main

// curve.go draws scaling-curve.svg: what one select, poll or epoll_wait
// costs as the number of idle sockets watched grows (BenchmarkWaitCost).

import (
	"bufio"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// A benchPoint is one sub-benchmark: a wait call, how many idle sockets it
// watched, and the time one wait took.
type benchPoint struct {
	Call    string
	Idle    int
	NsPerOp float64
}

// benchLine matches "BenchmarkWaitCost/poll/1000-2   2000   196738 ns/op ...".
var benchLine = regexp.MustCompile(`^BenchmarkWaitCost/(\w+)/(\d+)(?:-\d+)?\s+\d+\s+([0-9.e+]+) ns/op`)

// parseBenchmark reads the points out of go test -bench's output.
func parseBenchmark(output string) ([]benchPoint, error) {
	var points []benchPoint
	lines := bufio.NewScanner(strings.NewReader(output))
	for lines.Scan() {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(lines.Text()))
		if m == nil {
			continue
		}
		idle, err1 := strconv.Atoi(m[2])
		ns, err2 := strconv.ParseFloat(m[3], 64)
		if err1 != nil || err2 != nil || idle < 1 || ns <= 0 {
			return nil, fmt.Errorf("cannot read the benchmark line %q", lines.Text())
		}
		points = append(points, benchPoint{m[1], idle, ns})
	}
	if len(points) == 0 {
		return nil, fmt.Errorf("no BenchmarkWaitCost results in the benchmark's output")
	}
	return points, nil
}

// A series is one wait call's curve and how it is drawn.
type series struct {
	Call, Legend, Colour string
	Ink                  string // the colour of its values: Colour, darkened enough to read
	Dashed, Square       bool
	Above                bool // its values are written above its points (else below)
}

// The curves. select and poll cost almost the same, so they differ in dash,
// marker and where their values go.
var curves = []series{
	{"select", "select (rebuilds and passes its set every call)", "#0072B2", "#0072B2", false, false, true},
	{"poll", "poll (passes its whole list every call)", "#E69F00", "#9A6300", true, true, false},
	{"epoll", "epoll_wait (sockets registered once)", "#009E73", "#007558", false, false, true},
}

// curveSet is everything scaling-curve.svg shows.
type curveSet struct {
	Machine machine
	Points  []benchPoint
}

// Layout of the curve's plot, in pixels.
const (
	cvLeft   = 90.0
	cvRight  = width - 40.0
	cvHeight = 360.0
)

// drawCurve makes scaling-curve.svg.
func drawCurve(cs curveSet) []byte {
	var c canvas
	title := "One wait for readiness, more and more idle sockets watched"
	top := c.header(title, []string{
		"Time of one select, poll or epoll_wait, with one socket ready: the last one. Both axes are logarithmic.",
		"machine: " + cs.Machine.String(),
		"made by: go test -run '^$' -bench WaitCost -benchtime 2000x ./06-goroutines-compare (make curve)",
	}) + 22
	bottom := top + cvHeight
	lowX, highX := 5.0, 20000.0 // sockets: a little room either side of 10 … 10,000
	lowY, highY := decadeRange(cs.Points)
	x := func(idle float64) float64 { return logScale(idle, lowX, highX, cvLeft, cvRight) }
	y := func(ns float64) float64 { return logScale(ns, lowY, highY, bottom, top) }

	drawCurveAxes(&c, top, bottom, lowY, highY, x, y)
	for _, s := range curves {
		drawSeries(&c, s, pointsOf(cs.Points, s.Call), x, y)
	}
	drawSelectLimit(&c, cs.Points, x, y)
	drawLegend(&c, cvLeft+14, top+18)
	return c.svg(title, bottom+56)
}

// drawCurveAxes draws the frame, gridlines at every power of ten, and the
// axes' labels.
func drawCurveAxes(c *canvas, top, bottom, lowY, highY float64, x, y func(float64) float64) {
	for idle := 10.0; idle <= 10000; idle *= 10 {
		c.line("grid", x(idle), top, x(idle), bottom)
		c.text("tick", "middle", x(idle), bottom+17, group(int(idle)))
	}
	for ns := lowY; ns <= highY*1.001; ns *= 10 {
		c.line("grid", cvLeft, y(ns), cvRight, y(ns))
		c.text("tick", "end", cvLeft-8, y(ns)+4, strings.Replace(nsText(ns), ".0 ", " ", 1)) // 1 µs, not 1.0 µs
	}
	c.line("axis", cvLeft, bottom, cvRight, bottom)
	c.line("axis", cvLeft, top, cvLeft, bottom)
	c.text("note", "middle", (cvLeft+cvRight)/2, bottom+36, "idle sockets watched, plus the one ready socket (log scale)")
	c.text("note", "start", margin, top-16, "time for one wait (log scale)")
}

// drawSeries draws one curve: a line, its markers, and each point's value.
func drawSeries(c *canvas, s series, points []benchPoint, x, y func(float64) float64) {
	if len(points) == 0 {
		return
	}
	var line [][2]float64
	for _, p := range points {
		line = append(line, [2]float64{x(float64(p.Idle)), y(p.NsPerOp)})
	}
	c.path("curve", s.Colour, s.Dashed, line)
	for i, p := range points {
		px, py := line[i][0], line[i][1]
		c.marker("point "+s.Call, s.Colour, s.Square, px, py)
		if s.Above {
			c.inkText("value", s.Ink, "end", px-7, py-8, nsText(p.NsPerOp))
		} else {
			c.inkText("value", s.Ink, "start", px+7, py+16, nsText(p.NsPerOp))
		}
	}
}

// drawLegend draws a line and marker per curve, with what each is.
func drawLegend(c *canvas, x, y float64) {
	for i, s := range curves {
		ly := y + float64(i)*18
		c.path("legend", s.Colour, s.Dashed, [][2]float64{{x, ly}, {x + 30, ly}})
		c.marker("legend", s.Colour, s.Square, x+15, ly)
		c.text("label", "start", x+40, ly+4, s.Legend)
	}
}

// pointsOf picks one call's points, in the order of the sizes measured.
func pointsOf(points []benchPoint, call string) []benchPoint {
	var picked []benchPoint
	for _, p := range points {
		if p.Call == call {
			picked = append(picked, p)
		}
	}
	return picked
}

// drawSelectLimit says, under select's last point, why its curve stops
// there (when it does, as BenchmarkWaitCost has no select/10000).
func drawSelectLimit(c *canvas, points []benchPoint, x, y func(float64) float64) {
	var last *benchPoint
	for i, p := range points {
		if p.Call == "select" && (last == nil || p.Idle > last.Idle) {
			last = &points[i]
		}
	}
	if last == nil || last.Idle >= 10000 {
		return
	}
	px, py := x(float64(last.Idle)), y(last.NsPerOp)
	c.text("note", "start", px+12, py+44, "select stops here: it cannot watch")
	c.text("note", "start", px+12, py+58, "descriptor 1,024 or above (FD_SETSIZE)")
}

// decadeRange is the powers of ten just below and above every point.
func decadeRange(points []benchPoint) (low, high float64) {
	low, high = math.Inf(1), 0
	for _, p := range points {
		low, high = math.Min(low, p.NsPerOp), math.Max(high, p.NsPerOp)
	}
	low = math.Pow(10, math.Floor(math.Log10(low)))
	high = math.Pow(10, math.Ceil(math.Log10(high)))
	if high <= low {
		high = low * 10
	}
	return low, high
}

// logScale maps v in low…high, logarithmically, to from…to.
func logScale(v, low, high, from, to float64) float64 {
	return from + (to-from)*(math.Log10(v)-math.Log10(low))/(math.Log10(high)-math.Log10(low))
}

// nsText writes a time given in ns with a unit a person reads at a glance:
// 320 ns, 1.9 µs, 2.0 µs, 15 µs, 2.9 ms.
func nsText(ns float64) string {
	value, unit := ns, "ns"
	switch {
	case ns >= 1e6:
		value, unit = ns/1e6, "ms"
	case ns >= 1e3:
		value, unit = ns/1e3, "µs"
	}
	if value < 9.95 {
		return fmt.Sprintf("%.1f %s", value, unit)
	}
	return fmt.Sprintf("%.0f %s", value, unit)
}
