//go:build unix

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestTargets: each target is read off the right row and workload, and says
// met or by how much it missed; a workload that did not run says which
// -workloads it needs.
func TestTargets(t *testing.T) {
	onlyStages(t)
	stage05 := func(wall, cpu float64, rssKB int64) *summary {
		return &summary{Requests: 5000, OK: 5000, WallMS: wall, CPUMS: cpu, MaxRSSKB: rssKB}
	}
	rows := func(level, edge, next *summary) []row {
		return []row{
			{Model: "05 epoll, level-triggered", Stage: "05-epoll", Summary: level},
			{Model: "05 epoll, edge-triggered", Stage: "05-epoll", Summary: edge},
			{Model: "06 goroutines (net)", Stage: "06-goroutines-compare", Summary: next},
			{Model: "06 thread per request", Stage: "06-goroutines-compare", Error: "a failed row is not the next"},
		}
	}
	ramp := 130.0
	c := comparison{Workloads: []workloadRun{
		{workload: workload{"few", 10, 200 * time.Millisecond}, Rows: rows(stage05(200, 1, 8000), stage05(200, 1, 8000), stage05(200, 1, 9000))},
		{workload: workload{"scale", 5000, time.Second}, Rows: rows(
			stage05(1100, 200, 8000+5000*1.2), // 1.10 s, 40 µs, 1.2 KB: all met
			stage05(1200, 250, 8000+5000*2),   // 1.20 s, 50 µs, 2 KB: each missed
			stage05(1300, 400, 90000)),        // the next row: 1.30 s
			ConnectRampMS: &ramp},
	}}
	var out bytes.Buffer
	if err := writeTargets(&out, c); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"wall at 5000 × 1s, at most 1.15s                 1.10s: met                                   1.20s: missed by 0.05s",
		"ahead of the next row at 5000, by 10% or more    18% ahead of 06 goroutines (net): met        8% ahead of 06 goroutines (net): missed by 2 points",
		"client cpu per request at 5000, at most 45µs     40µs: met                                    50µs: missed by 5µs",
		"memory per connection at 5000, at most 1.5 KB    1.20 KB: met                                 2.00 KB: missed by 0.50 KB",
		"wall at 10000 × 1s, at most 1.30s                not run (-workloads scale10k)",
		"the floor at 5000: its connects alone            0.13s of its 0.10s past the delay            0.13s of its 0.20s past the delay",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the targets do not say\n  %s\n%s", want, got)
		}
	}
}

// TestConnectsAlone: the connects program starts its n connects to a server
// and says how long that took; measure reads it, and one that cannot run is
// -1, said on the log.
func TestConnectsAlone(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the connects program")
	}
	srv := startTestServer(t)
	bin := buildProgram(t, "./clients/connects")
	var log bytes.Buffer
	if ramp := connectRamp(context.Background(), bin, srv.Addr(), workload{N: 20, Delay: time.Second}, &log); ramp <= 0 {
		t.Errorf("20 connects took %v ms; want a time (log: %s)", ramp, log.String())
	}
	if ramp := connectRamp(context.Background(), bin, "127.0.0.1:notaport", workload{N: 20, Delay: time.Second}, &log); ramp != -1 || !strings.Contains(log.String(), "connects alone") {
		t.Errorf("against no address: %v, log %q; want -1 and a line saying why", ramp, log.String())
	}
}
