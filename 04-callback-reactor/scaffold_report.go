//go:build unix

// scaffold_report.go is the part of the scaffold that says what happened: a
// summary of the run, printed as a text report or, with -json, as one JSON
// object. The same in every stage, like scaffold.go.

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"blocking-to-epoll/internal/testserver"

	"golang.org/x/sys/unix"
)

// summary is what a run ends with: -json prints it as it is, and the text
// report is made from it.
type summary struct {
	Stage               string         `json:"stage"`
	Server              string         `json:"server"`
	Embedded            bool           `json:"embedded"` // the test server ran in this process
	Requests            int            `json:"requests"`
	DelayMS             float64        `json:"delay_ms"`
	DeadlineMS          float64        `json:"deadline_ms"`
	OK                  int            `json:"ok"`
	Failed              int            `json:"failed"`
	Bytes               int            `json:"bytes"` // body payload bytes
	WallMS              float64        `json:"wall_ms"`
	CPUMS               float64        `json:"cpu_ms"`
	MaxRSSKB            int64          `json:"max_rss_kb"`
	Syscalls            map[string]int `json:"syscalls"`
	Wasted              int            `json:"wasted_calls"` // EAGAIN, EALREADY and waits that found nothing
	AchievedConcurrency float64        `json:"achieved_concurrency"`
	PeakInFlight        *int           `json:"peak_in_flight"` // null when the server does not report it
	PeakNote            string         `json:"peak_note,omitempty"`
	// results, one per request, come last in the JSON (writeJSON).

	calls    []string   // "read 12", …: the calls in the order they first happened
	requests []*request // each gives its result when the report is written (resultOf)
}

// result is one request in the summary: a line of the text report, an
// element of the JSON's results.
type result struct {
	ID      int     `json:"id"`
	Host    string  `json:"host"`
	Path    string  `json:"path"`
	Status  int     `json:"status"`
	Bytes   int     `json:"bytes"`
	StartMS float64 `json:"start_ms"`
	EndMS   float64 `json:"end_ms"`
	Error   string  `json:"error,omitempty"`
}

// summary adds the run up.
func (rn *run) summary() summary {
	wall := rn.end.Sub(rn.start)
	s := summary{Stage: rn.cfg.stage, Server: rn.cfg.addr, Embedded: rn.embedded != nil, Requests: rn.cfg.n,
		DelayMS: ms(rn.cfg.delay), DeadlineMS: ms(rn.cfg.deadline), WallMS: ms(wall), CPUMS: ms(rn.cpu),
		MaxRSSKB: rn.maxRSSKB, Syscalls: rn.counts(), PeakNote: rn.peakNote}
	if rn.peak >= 0 {
		s.PeakInFlight, s.PeakNote = &rn.peak, ""
	}
	s.requests = rn.requests
	var busy time.Duration // the time spent in requests, all added up
	for _, r := range rn.requests {
		if r.err != nil {
			s.Failed++
		} else {
			s.Bytes += len(r.parse.body)
		}
		busy += r.end - r.start
	}
	s.OK = s.Requests - s.Failed
	if wall > 0 {
		s.AchievedConcurrency = float64(busy) / float64(wall)
	}
	for _, c := range rn.order { // rn.order is complete: the run is over
		s.calls = append(s.calls, c.String()+" "+strconv.Itoa(s.Syscalls[c.String()]))
		if c.empty || c.errno == unix.EAGAIN || c.errno == unix.EALREADY {
			s.Wasted += rn.calls[c]
		}
	}
	return s
}

// resultOf is what request r ended with.
func resultOf(r *request) result {
	res := result{ID: r.id, Host: r.host, Path: r.path, StartMS: ms(r.start), EndMS: ms(r.end)}
	if r.err != nil {
		res.Error = r.err.Error()
	} else {
		res.Status, res.Bytes = r.parse.status, len(r.parse.body)
	}
	return res
}

// report prints the summary, as text or JSON, and returns the exit code: 0
// when every request got a complete response, 1 when some failed.
func (rn *run) report(stdout io.Writer) int {
	s := rn.summary()
	var err error
	if rn.cfg.json {
		err = s.writeJSON(stdout)
	} else {
		err = s.write(stdout)
	}
	switch {
	case err != nil:
		fmt.Fprintf(rn.traceOut, "%s: writing the report: %v\n", s.Stage, err)
		return 2
	case s.Failed > 0:
		return 1
	}
	return 0
}

// writeJSON prints the summary as one JSON object, with every request's
// result in "results", its last field. The results are written one at a
// time, straight from the requests, and not made into one block of JSON
// first: a run of 100,000 requests would hold that block, tens of megabytes
// of it, on top of the requests themselves, and the process's peak memory
// is what the comparison shows.
func (s summary) writeJSON(w io.Writer) error {
	head, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	out := bufio.NewWriter(w)
	out.Write(head[:len(head)-len("\n}")]) // the object so far, without its closing brace
	out.WriteString(",\n  \"results\": [")
	for i, r := range s.requests {
		line, err := json.Marshal(resultOf(r))
		if err != nil {
			return err
		}
		if i > 0 {
			out.WriteString(",")
		}
		out.WriteString("\n    ")
		out.Write(line)
	}
	out.WriteString("\n  ]\n}\n")
	return out.Flush()
}

// shownRequests is how many requests the text report prints a line for: after
// them, only a count of each outcome, so that a run of thousands stays
// readable (-json lists every one).
const shownRequests = 20

// write prints the text report: a line per request, the timeline, the totals.
func (s summary) write(w io.Writer) error {
	where, cpuNote := "the server", ""
	if s.Embedded {
		where, cpuNote = "the test server embedded in this process", " (embedded server included)"
	}
	fmt.Fprintf(w, "%s: %d requests to %s at %s, each asked to wait %v\n\n", s.Stage, s.Requests, where, s.Server, duration(s.DelayMS))
	fmt.Fprintf(w, "  req  %-38s status %8s  %15s  %7s\n", "request", "body", "start → end", "took")
	var spans []testserver.Span
	var hidden []string // the outcomes of the requests not shown, in order of first appearance
	hiddenCount := map[string]int{}
	for i, req := range s.requests {
		r := resultOf(req)
		spans = append(spans, testserver.Span{Label: strconv.Itoa(r.ID), Start: duration(r.StartMS), End: duration(r.EndMS), Failed: r.Error != ""})
		what, outcome := fmt.Sprintf("GET %s (%s)", r.Path, r.Host), "succeeded"
		if r.Error != "" {
			outcome = "failed: " + r.Error
		}
		switch {
		case i >= shownRequests:
			if hiddenCount[outcome]++; hiddenCount[outcome] == 1 {
				hidden = append(hidden, outcome)
			}
		case r.Error != "":
			fmt.Fprintf(w, "%5d  %-38s FAILED: %s\n", r.ID, what, r.Error)
		default:
			span := fmt.Sprintf("%.3fs → %.3fs", r.StartMS/1000, r.EndMS/1000)
			fmt.Fprintf(w, "%5d  %-38s %6d %8s  %15s  %5dms\n", r.ID, what, r.Status, strconv.Itoa(r.Bytes)+" B", span, int(r.EndMS-r.StartMS))
		}
	}
	for _, outcome := range hidden {
		fmt.Fprintf(w, "  …    %d more %s\n", hiddenCount[outcome], outcome)
	}
	fmt.Fprintln(w)
	testserver.DrawTimeline(w, spans, 50)
	peak := s.PeakNote
	if s.PeakInFlight != nil {
		peak = strconv.Itoa(*s.PeakInFlight)
	}
	fmt.Fprintf(w, "\n%d ok, %d failed, %d body bytes · wall %.3fs · cpu %.3fs%s\n", s.OK, s.Failed, s.Bytes, s.WallMS/1000, s.CPUMS/1000, cpuNote)
	fmt.Fprintf(w, "achieved concurrency %.2f (time spent in requests / wall) · peak in flight at the server %s\n", s.AchievedConcurrency, peak)
	_, err := fmt.Fprintf(w, "system calls: %s · wasted (EAGAIN, EALREADY, timeout) %d\n", strings.Join(s.calls, ", "), s.Wasted)
	return err
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func duration(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }
