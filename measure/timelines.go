//go:build unix

package main

// timelines.go draws timelines.svg: every stage on the same small workload,
// one panel per stage and one bar per request, on one time axis.

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// The workload of the timelines: few requests, long enough to see.
const (
	timelineN     = 8
	timelineDelay = 200 * time.Millisecond
)

// A stageInfo is a stage's folder and the name its panel shows.
type stageInfo struct {
	Dir, Caption string
}

// stages are the programs drawn, in the course's order (05 and 06 run their
// default: level-triggered epoll, goroutines).
var stages = []stageInfo{
	{"01-blocking", "01 blocking: one request at a time"},
	{"02-nonblocking-spin", "02 nonblocking, busy-polling"},
	{"03-select-multiplex", "03 select"},
	{"04-callback-reactor", "04 select with callbacks (a reactor)"},
	{"05-epoll", "05 epoll (level-triggered)"},
	{"06-goroutines-compare", "06 goroutines (net)"},
}

// A timelinePanel is one stage's run, or why there is none.
type timelinePanel struct {
	Stage   stageInfo
	Summary *summary // nil when the stage was not run
	Note    string   // shown instead of bars when Summary is nil
}

// timelineSet is everything timelines.svg shows.
type timelineSet struct {
	Machine machine
	N       int
	Delay   time.Duration
	Panels  []timelinePanel
}

// Layout of the timelines, in pixels.
const (
	tlLeft     = 44.0 // where time 0 is (request numbers go left of it)
	tlRight    = width - margin
	tlHead     = 22.0 // a panel's heading
	tlPitch    = 12.0 // from one request's bar to the next
	tlBar      = 9.0  // a bar's height
	tlGap      = 12.0 // between panels
	tlNoteRows = 20.0 // height of a panel that only has a note
)

// cpuColour is the colour of the CPU time's bar.
const cpuColour = "#24292f"

// drawTimelines makes timelines.svg.
func drawTimelines(t timelineSet) []byte {
	var c canvas
	title := fmt.Sprintf("The same %d requests, stage by stage", t.N)
	top := c.header(title, []string{
		fmt.Sprintf("Each request is held %s by the test server. One bar per request, one time axis for every stage.", durationText(t.Delay)),
		"machine: " + t.Machine.String(),
		fmt.Sprintf("made by: go run ./measure -pictures (each stage: -addr ADDR -n %d -delay %v -json; one testserver)", t.N, t.Delay),
	})
	span, step := timeAxis(t.Panels)
	x := func(ms float64) float64 { return tlLeft + (tlRight-tlLeft)*ms/span }

	bottom := top
	for _, p := range t.Panels {
		bottom += panelHeight(p)
	}
	for ms := 0.0; ms <= span+step/2; ms += step { // gridlines first: behind the bars
		c.line("grid", x(ms), top, x(ms), bottom)
	}
	y := top
	for _, p := range t.Panels {
		drawPanel(&c, p, y, x)
		y += panelHeight(p)
	}
	drawTimeAxis(&c, bottom, span, step, x, t.N)
	return c.svg(title, bottom+48)
}

// panelHeight is the room a panel takes, its gap below included.
func panelHeight(p timelinePanel) float64 {
	if p.Summary == nil {
		return tlHead + tlNoteRows + tlGap
	}
	return tlHead + float64(len(p.Summary.Results)+1)*tlPitch + tlGap // +1: the CPU bar
}

// drawPanel draws one stage: a heading with its figures, then its bars.
func drawPanel(c *canvas, p timelinePanel, y float64, x func(ms float64) float64) {
	c.text("head", "start", tlLeft, y+14, p.Stage.Caption)
	if p.Summary == nil {
		c.text("skip", "start", tlLeft, y+tlHead+12, p.Note)
		return
	}
	s := p.Summary
	c.text("note", "end", tlRight, y+14, panelFigures(s))
	for i, r := range s.Results {
		top := y + tlHead + float64(i)*tlPitch
		class, fill := "bar", colourOf(p.Stage.Dir)
		if r.Error != "" {
			class, fill = "bar failed", failedColour
		}
		c.text("tick", "end", tlLeft-6, top+tlBar-0.5, fmt.Sprint(r.ID))
		c.rect(class, fill, x(r.StartMS), top, math.Max(x(r.EndMS)-x(r.StartMS), 1.5), tlBar)
	}
	// The CPU time the client used in all, on the same scale: as long as
	// the wall time when a stage spins, a sliver when it sleeps.
	top := y + tlHead + float64(len(s.Results))*tlPitch
	c.text("tick", "end", tlLeft-6, top+tlBar-0.5, "CPU")
	c.rect("cpu", cpuColour, x(0), top+3, math.Max(x(s.CPUMS)-x(0), 1.5), tlBar-4)
}

// panelFigures is the line right of a panel's name: wall, CPU, outcome.
func panelFigures(s *summary) string {
	parts := []string{
		"wall " + msText(s.WallMS),
		"CPU " + msText(s.CPUMS),
		fmt.Sprintf("%d/%d ok", s.OK, s.Requests),
	}
	if s.PeakInFlight != nil {
		parts = append(parts, fmt.Sprintf("at most %d in flight", *s.PeakInFlight))
	}
	return strings.Join(parts, " · ")
}

// drawTimeAxis draws the axis under the last panel, ticks in milliseconds.
func drawTimeAxis(c *canvas, y, span, step float64, x func(ms float64) float64, n int) {
	c.line("axis", x(0), y, x(span), y)
	for ms := 0.0; ms <= span+step/2; ms += step {
		c.line("axis", x(ms), y, x(ms), y+4)
		c.text("tick", "middle", x(ms), y+17, group(int(math.Round(ms))))
	}
	c.text("note", "middle", (tlLeft+tlRight)/2, y+36, fmt.Sprintf("milliseconds since the stage started · rows: requests 1 to %d, then the CPU time the client used", n))
}

// timeAxis chooses the axis: its length in ms, a whole number of ticks
// covering every bar, and the tick step.
func timeAxis(panels []timelinePanel) (span, step float64) {
	longest := 1.0
	for _, p := range panels {
		if p.Summary == nil {
			continue
		}
		longest = math.Max(longest, p.Summary.WallMS)
		for _, r := range p.Summary.Results {
			longest = math.Max(longest, r.EndMS)
		}
	}
	step = niceStep(longest, 10)
	return math.Ceil(longest/step) * step, step
}

// niceStep is the smallest step of 1, 2 or 5 times a power of ten that
// divides 0…max into at most ticks parts.
func niceStep(max float64, ticks int) float64 {
	for power := math.Pow(10, math.Floor(math.Log10(max/float64(ticks)))); ; power *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if max/(m*power) <= float64(ticks) {
				return m * power
			}
		}
	}
}

// msText writes a time in ms: "1,624 ms", or "3.2 ms" when short.
func msText(ms float64) string {
	if ms < 10 {
		return fmt.Sprintf("%.1f ms", ms)
	}
	return group(int(math.Round(ms))) + " ms"
}

// durationText writes a delay the way a person says it: "200 ms", "1 s".
func durationText(d time.Duration) string {
	if d >= time.Second && d%time.Second == 0 {
		return fmt.Sprintf("%d s", d/time.Second)
	}
	return fmt.Sprintf("%g ms", float64(d)/float64(time.Millisecond))
}
