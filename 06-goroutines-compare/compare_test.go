//go:build unix

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakePrograms writes a shell script in place of each stage's program, so
// the comparison's own logic can be tested without building anything: every
// stage answers with script, the stage named broken with brokenScript.
func fakePrograms(t *testing.T, script, broken, brokenScript string) string {
	t.Helper()
	dir := t.TempDir()
	for _, c := range candidates {
		body := script
		if c.Stage == broken {
			body = brokenScript
		}
		if err := os.WriteFile(filepath.Join(dir, c.Stage), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestComparisonShowsFailures: a run where some requests failed shows its
// failures in the ok/failed column, and a program that crashes or prints no
// summary gets a FAILED row; neither is hidden.
func TestComparisonShowsFailures(t *testing.T) {
	partly := `echo '{"stage":"x","requests":10,"ok":8,"failed":2,"wall_ms":200,"cpu_ms":1,"syscalls":{"read":20},"results":[]}'; exit 1`
	crash := `echo 'panic: something broke' >&2; exit 2`
	dir := fakePrograms(t, partly, "03-select-multiplex", crash)

	rows := runWorkload(dir, "127.0.0.1:1", workload{Name: "test", N: 10}, 1000)
	var out bytes.Buffer
	if err := writeComparison(&out, comparison{Workloads: []workloadRun{{workload{Name: "test", N: 10}, rows}}}); err != nil {
		t.Fatal(err)
	}
	table := out.String()
	for _, want := range []string{"03 select                      FAILED: 03-select-multiplex: exit status 2 panic: something broke", "8/2"} {
		if !strings.Contains(table, want) {
			t.Errorf("table does not show %q:\n%s", want, table)
		}
	}
	for _, r := range rows {
		if r.Stage == "03-select-multiplex" && (r.Error == "" || r.Summary != nil) {
			t.Errorf("row %s: error %q, summary %v: want the crash reported", r.Model, r.Error, r.Summary)
		}
		if r.Stage != "03-select-multiplex" && r.Skipped == "" && (r.Summary == nil || r.Summary.Failed != 2) {
			t.Errorf("row %s: %+v, want the summary with its 2 failures", r.Model, r)
		}
	}
}

// TestComparisonRunsEveryStage builds the stages and runs a tiny workload
// for real: every row must run, succeed and report from -json.
func TestComparisonRunsEveryStage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every stage")
	}
	var out, errOut bytes.Buffer
	if code := runCompare([]string{"-compare", "-json", "-workloads", "3x20ms"}, &out, &errOut); code != 0 {
		t.Fatalf("exit code %d: %s", code, errOut.String())
	}
	var c comparison
	if err := json.Unmarshal(out.Bytes(), &c); err != nil {
		t.Fatalf("the comparison's JSON does not parse: %v\n%s", err, out.String())
	}
	if len(c.Workloads) != 1 || len(c.Workloads[0].Rows) != len(candidates) {
		t.Fatalf("want one workload with %d rows: %s", len(candidates), out.String())
	}
	got := map[string]string{}
	want := map[string]string{}
	for _, r := range c.Workloads[0].Rows {
		want[r.Model] = "3 ok, peak 3"
		switch {
		case r.Skipped != "" || r.Error != "":
			got[r.Model] = r.Skipped + r.Error
		case r.Summary.PeakInFlight == nil:
			got[r.Model] = "no peak"
		default:
			got[r.Model] = fmt.Sprintf("%d ok, peak %d", r.Summary.OK, *r.Summary.PeakInFlight)
		}
	}
	want["01 blocking, one at a time"] = "3 ok, peak 1"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

// TestSelectLimitIsMeasuredNotAssumed: how many requests fit under select's
// FD_SETSIZE depends on the descriptors the program holds already, so the
// table prints the number only from a run that met the limit, and the rule
// otherwise.
func TestSelectLimitIsMeasuredNotAssumed(t *testing.T) {
	met := &summary{OK: 1013, Failed: 87, Results: []result{{ID: 1014, Error: "not started: select(2) cannot watch descriptors at or above FD_SETSIZE (1024)"}}}
	refused := &summary{OK: 900, Failed: 200, Results: []result{{ID: 901, Error: "socket: too many open files"}}}
	got := []string{fdSetSize(met, 0), fdSetSize(refused, 0), fdSetSize(&summary{OK: 10}, 0), fdSetSize(nil, 0)}
	want := []string{"1013 (FD_SETSIZE)", "< 1024 (FD_SETSIZE)", "< 1024 (FD_SETSIZE)", "< 1024 (FD_SETSIZE)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("largest -n of select (-want +got):\n%s", diff)
	}
}
