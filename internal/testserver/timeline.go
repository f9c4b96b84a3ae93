package testserver

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// defaultTimelineWidth is how many columns the time axis has when the caller gives none.
const defaultTimelineWidth = 50

// maxTimelineRows is the most rows DrawTimeline prints; beyond it, spans are grouped
// so the timeline still fits on a screen.
const maxTimelineRows = 30

// A Span is one bar of a terminal timeline.
type Span struct {
	Label  string
	Start  time.Duration // from the start of the run
	End    time.Duration
	Failed bool
}

// row is one line of the timeline: one span, or a group of consecutive spans.
type row struct {
	label      string
	start, end time.Duration
	spans      int // how many spans the row stands for
	failed     int // how many of them failed
}

// DrawTimeline writes a terminal timeline of spans: one bar per span over a shared
// time axis width columns wide (50 when width <= 0), so sequential work looks like a
// staircase and concurrent work like a stack of parallel bars. A failed span ends in
// '✗'. More than 30 spans are grouped, consecutive ones together, into at most 30 rows.
func DrawTimeline(w io.Writer, spans []Span, width int) {
	// Like fmt.Println, the timeline is for a person at a terminal: a failed write
	// there has nobody to report to, so write errors are ignored.
	if len(spans) == 0 {
		fmt.Fprintln(w, "timeline: nothing to draw (no requests)")
		return
	}
	if width <= 0 {
		width = defaultTimelineWidth
	}
	rows, perRow := groupRows(spans)
	total := latestEnd(rows)
	column := columnLength(total, width)

	requests := "requests"
	if len(spans) == 1 {
		requests = "request"
	}
	header := fmt.Sprintf("timeline: %d %s over %v, each column = %v",
		len(spans), requests, roundForDisplay(total), column)
	if perRow > 1 {
		header += fmt.Sprintf(", each row = up to %d consecutive requests", perRow)
	}
	fmt.Fprintln(w, header)

	labelWidth := 0
	for _, r := range rows {
		labelWidth = max(labelWidth, utf8.RuneCountInString(r.label))
	}
	for _, r := range rows {
		padding := strings.Repeat(" ", labelWidth-utf8.RuneCountInString(r.label))
		fmt.Fprintf(w, "%s%s │%s│ %v%s\n",
			r.label, padding, bar(r, column, width), roundForDisplay(r.end-r.start), failedNote(r))
	}
}

// groupRows turns spans into at most maxTimelineRows rows and says how many spans
// a row stands for (1 when every span has its own row).
func groupRows(spans []Span) ([]row, int) {
	perRow := (len(spans) + maxTimelineRows - 1) / maxTimelineRows
	digits := len(strconv.Itoa(len(spans)))
	var rows []row
	for first := 0; first < len(spans); first += perRow {
		group := spans[first:min(first+perRow, len(spans))]
		r := row{label: group[0].Label, start: group[0].Start, end: group[0].End}
		if perRow > 1 {
			// Right-aligned numbers keep the labels lined up: "  1–125", "126–250".
			r.label = fmt.Sprintf("%*d–%d", digits, first+1, first+len(group))
		}
		for _, sp := range group {
			r.start = min(r.start, sp.Start)
			r.end = max(r.end, sp.End)
			r.spans++
			if sp.Failed {
				r.failed++
			}
		}
		rows = append(rows, r)
	}
	return rows, perRow
}

func latestEnd(rows []row) time.Duration {
	var end time.Duration
	for _, r := range rows {
		end = max(end, r.end)
	}
	return end
}

// columnLength is how much time one column stands for: enough for width columns to
// cover total, rounded up to a whole microsecond (to a whole millisecond from 1ms on)
// so the header reads like "each column = 20ms".
func columnLength(total time.Duration, width int) time.Duration {
	column := (total + time.Duration(width) - 1) / time.Duration(width)
	unit := time.Microsecond
	if column >= time.Millisecond {
		unit = time.Millisecond
	}
	return max(unit, (column+unit-1)/unit*unit)
}

// bar draws one row's bar: '█' for every column the row was busy in, the last one
// '✗' if a span in it failed, and spaces elsewhere.
func bar(r row, column time.Duration, width int) string {
	from := min(max(0, int(r.start/column)), width-1)
	to := min(int((r.end+column-1)/column), width)
	if to <= from {
		to = from + 1 // a span shorter than one column still shows
	}
	var b strings.Builder
	for i := range width {
		switch {
		case i < from || i >= to:
			b.WriteRune(' ')
		case i == to-1 && r.failed > 0:
			b.WriteRune('✗')
		default:
			b.WriteRune('█')
		}
	}
	return b.String()
}

// failedNote says after the duration how much of a row failed.
func failedNote(r row) string {
	switch {
	case r.failed == 0:
		return ""
	case r.spans == 1:
		return " (failed)"
	}
	return fmt.Sprintf(" (%d of %d failed)", r.failed, r.spans)
}

// roundForDisplay drops digits nobody reads: 1.234567s prints as 1.235s.
func roundForDisplay(d time.Duration) time.Duration {
	switch {
	case d >= time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= time.Microsecond:
		return d.Round(time.Microsecond)
	}
	return d
}

// Spans turns the record into timeline spans, one per entry in arrival order, timed
// from the earliest arrival and labelled with the request ID (and the fault, if any).
// A span failed when no HTTP response was sent (status 0) or the status is 400 or more.
func (st Stats) Spans() []Span {
	if len(st.Entries) == 0 {
		return nil
	}
	origin := st.Entries[0].Arrived
	for _, e := range st.Entries {
		if e.Arrived.Before(origin) {
			origin = e.Arrived
		}
	}

	spans := make([]Span, 0, len(st.Entries))
	for _, e := range st.Entries {
		sp := Span{Label: e.ID, Start: e.Arrived.Sub(origin)}
		if e.Fault != "" {
			sp.Label += " (" + e.Fault + ")"
		}
		if e.Finished.IsZero() {
			// Still being handled: no end yet, and no verdict either.
			sp.End = sp.Start
			sp.Label += " (in flight)"
		} else {
			sp.End = e.Finished.Sub(origin)
			sp.Failed = e.Status == 0 || e.Status >= 400
		}
		spans = append(spans, sp)
	}
	return spans
}
