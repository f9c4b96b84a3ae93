package testserver

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const ms = time.Millisecond

func drawn(spans []Span, width int) string {
	var b strings.Builder
	DrawTimeline(&b, spans, width)
	return b.String()
}

func TestDrawTimelineSequentialIsAStaircase(t *testing.T) {
	spans := []Span{
		{Label: "1", Start: 0, End: 100 * ms},
		{Label: "2", Start: 100 * ms, End: 200 * ms},
		{Label: "3", Start: 200 * ms, End: 300 * ms},
		{Label: "4", Start: 300 * ms, End: 400 * ms},
	}
	want := `timeline: 4 requests over 400ms, each column = 50ms
1 │██      │ 100ms
2 │  ██    │ 100ms
3 │    ██  │ 100ms
4 │      ██│ 100ms
`
	if diff := cmp.Diff(want, drawn(spans, 8)); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}
}

func TestDrawTimelineConcurrentIsAStack(t *testing.T) {
	var spans []Span
	for i := range 5 {
		start := time.Duration(i) * ms
		spans = append(spans, Span{Label: fmt.Sprint("req ", i+1), Start: start, End: start + 200*ms})
	}
	want := `timeline: 5 requests over 204ms, each column = 11ms
req 1 │███████████████████ │ 200ms
req 2 │███████████████████ │ 200ms
req 3 │███████████████████ │ 200ms
req 4 │███████████████████ │ 200ms
req 5 │███████████████████ │ 200ms
`
	if diff := cmp.Diff(want, drawn(spans, 20)); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}
}

func TestDrawTimelineMarksFailures(t *testing.T) {
	spans := []Span{
		{Label: "ok", Start: 0, End: 100 * ms},
		{Label: "refused", Start: 0, End: 40 * ms, Failed: true},
		{Label: "tiny", Start: 50 * ms, End: 50*ms + 100*time.Microsecond, Failed: true}, // shorter than a column
	}
	want := `timeline: 3 requests over 100ms, each column = 10ms
ok      │██████████│ 100ms
refused │███✗      │ 40ms (failed)
tiny    │     ✗    │ 100µs (failed)
`
	if diff := cmp.Diff(want, drawn(spans, 10)); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}
}

func TestDrawTimelineGroupsManySpans(t *testing.T) {
	var spans []Span
	for i := range 40 {
		start := time.Duration(i) * 10 * ms
		spans = append(spans, Span{Label: fmt.Sprint(i + 1), Start: start, End: start + 10*ms, Failed: i == 3})
	}
	want := `timeline: 40 requests over 400ms, each column = 20ms, each row = up to 2 consecutive requests
 1–2  │█                   │ 20ms
 3–4  │ ✗                  │ 20ms (1 of 2 failed)
 5–6  │  █                 │ 20ms
 7–8  │   █                │ 20ms
 9–10 │    █               │ 20ms
11–12 │     █              │ 20ms
13–14 │      █             │ 20ms
15–16 │       █            │ 20ms
17–18 │        █           │ 20ms
19–20 │         █          │ 20ms
21–22 │          █         │ 20ms
23–24 │           █        │ 20ms
25–26 │            █       │ 20ms
27–28 │             █      │ 20ms
29–30 │              █     │ 20ms
31–32 │               █    │ 20ms
33–34 │                █   │ 20ms
35–36 │                 █  │ 20ms
37–38 │                  █ │ 20ms
39–40 │                   █│ 20ms
`
	if diff := cmp.Diff(want, drawn(spans, 20)); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}
}

func TestDrawTimelineGroupsIntoAtMost30Rows(t *testing.T) {
	spans := make([]Span, 4000)
	for i := range spans {
		spans[i] = Span{Label: fmt.Sprint(i + 1), Start: 0, End: time.Second}
	}
	lines := strings.Split(strings.TrimSuffix(drawn(spans, 0), "\n"), "\n")
	if rows := len(lines) - 1; rows > maxTimelineRows {
		t.Errorf("%d rows, want at most %d", rows, maxTimelineRows)
	}
	if !strings.HasPrefix(lines[1], "   1–134 ") || !strings.HasPrefix(lines[len(lines)-1], "3887–4000 ") {
		t.Errorf("first and last rows are %q and %q", lines[1], lines[len(lines)-1])
	}
}

func TestDrawTimelineDefaultsAndEmpty(t *testing.T) {
	if diff := cmp.Diff("timeline: nothing to draw (no requests)\n", drawn(nil, 10)); diff != "" {
		t.Errorf("empty timeline (-want +got):\n%s", diff)
	}
	want := "timeline: 1 request over 50ms, each column = 1ms\n" +
		"1 │" + strings.Repeat("█", 50) + "│ 50ms\n"
	if diff := cmp.Diff(want, drawn([]Span{{Label: "1", End: 50 * ms}}, 0)); diff != "" {
		t.Errorf("width 0 should mean 50 columns (-want +got):\n%s", diff)
	}
}

func TestStatsSpans(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	st := Stats{Entries: []Entry{
		{ID: "1", Arrived: t0, Finished: t0.Add(100 * ms), Status: 200},
		{ID: "2", Arrived: t0.Add(10 * ms), Finished: t0.Add(20 * ms), Status: 404},
		{ID: "3", Fault: "reset", Arrived: t0.Add(20 * ms), Finished: t0.Add(21 * ms)},
		{ID: "4", Arrived: t0.Add(30 * ms)}, // still in flight
	}}
	want := []Span{
		{Label: "1", Start: 0, End: 100 * ms},
		{Label: "2", Start: 10 * ms, End: 20 * ms, Failed: true},
		{Label: "3 (reset)", Start: 20 * ms, End: 21 * ms, Failed: true},
		{Label: "4 (in flight)", Start: 30 * ms, End: 30 * ms},
	}
	if diff := cmp.Diff(want, st.Spans()); diff != "" {
		t.Errorf("spans (-want +got):\n%s", diff)
	}
}
