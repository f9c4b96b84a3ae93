//go:build unix

package main

// The comparison's own logic, tested with shell scripts in place of the
// stages' programs, and the whole of it once for real (not with -short).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakePrograms writes a shell script in place of each stage's program, so
// the comparison's own logic can be tested without building anything: every
// stage answers with script, the stage named broken with brokenScript. The
// rows run are the stages' alone, as the scripts stand in for nothing else.
func fakePrograms(t *testing.T, script, broken, brokenScript string) string {
	t.Helper()
	onlyStages(t)
	dir := t.TempDir()
	for _, stage := range stageDirs() {
		body := script
		if stage == broken {
			body = brokenScript
		}
		if err := os.WriteFile(filepath.Join(dir, stage), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// onlyStages makes the comparison's rows the stages' alone until the test
// ends: the clients that are not stages are tested in clients_test.go.
func onlyStages(t *testing.T) {
	all := candidates
	t.Cleanup(func() { candidates = all })
	candidates = stagesOnly(all)
}

// TestComparisonShowsFailures: a run where some requests failed shows its
// failures in the ok/failed column, and a program that crashes or prints no
// summary gets a FAILED row; neither is hidden.
func TestComparisonShowsFailures(t *testing.T) {
	partly := `echo '{"stage":"x","requests":10,"ok":8,"failed":2,"wall_ms":200,"cpu_ms":1,"syscalls":{"read":20},"results":[]}'; exit 1`
	crash := `echo 'panic: something broke' >&2; exit 2`
	dir := fakePrograms(t, partly, "03-select-multiplex", crash)

	rows := runWorkload(context.Background(), dir, server{addr: "127.0.0.1:1"}, workload{Name: "test", N: 10}, 1000, 1, io.Discard).Rows
	var out bytes.Buffer
	if err := writeComparison(&out, comparison{Workloads: []workloadRun{{workload: workload{Name: "test", N: 10}, Rows: rows}}}); err != nil {
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

// TestEachRowRunsItsFlags: every program is run with the workload, -json, a
// -deadline long enough for one request after another, and its model's own
// flags.
func TestEachRowRunsItsFlags(t *testing.T) {
	script := `echo '{"stage":"x","requests":3,"ok":3,"failed":0,"results":[],"server":"'"$*"'"}'`
	dir := fakePrograms(t, script, "", "")
	rows := runWorkload(context.Background(), dir, server{addr: "127.0.0.1:1"}, workload{Name: "test", N: 3, Delay: 20 * time.Millisecond}, 1000, 1, io.Discard).Rows
	got := map[string]string{}
	for _, r := range rows {
		if r.Summary != nil {
			got[r.Model] = r.Summary.Server // where the script put its arguments
		}
	}
	common := "-addr 127.0.0.1:1 -n 3 -delay 20ms -json -deadline 1m0.06s"
	want := map[string]string{
		"01 blocking, one at a time":    common,
		"02 nonblocking, busy-polling":  common,
		"03 select":                     common,
		"04 select, callbacks":          common,
		"05 epoll, level-triggered":     common,
		"05 epoll, edge-triggered":      common + " -edge",
		"06 goroutines (net)":           common,
		"06 goroutines, own epoll loop": common + " -model epoll-goroutines",
		"06 io_uring, completions":      common + " -model io_uring",
		"06 thread per request":         common + " -model threads",
		"06 process per request":        common + " -model processes",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the programs' arguments (-want +got):\n%s", diff)
	}
}

// TestComparisonRunsEveryStage builds the stages and runs a tiny workload
// for real, through the command line: every row must run, succeed and
// report from -json, with the server's peak in flight. A client that is not
// installed here (python3, ab, curl) is skipped, saying so, and not checked.
func TestComparisonRunsEveryStage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every stage")
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"-json", "-workloads", "3x20ms"}, &out, &errOut); code != 0 {
		t.Fatalf("exit code %d: %s", code, errOut.String())
	}
	if errOut.Len() > 0 {
		t.Errorf("-json printed on stderr too: %s", errOut.String())
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
	want["ab (ApacheBench) -c n"] = "3 ok, peak 2" // its first request alone, then the other two
	for _, r := range c.Workloads[0].Rows {
		if strings.HasPrefix(r.Skipped, "no python3") || strings.HasSuffix(r.Skipped, "is not installed") {
			t.Logf("%s: %s", r.Model, r.Skipped)
			delete(want, r.Model)
			delete(got, r.Model)
		}
	}
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

// TestThreadLimitIsStage06s: measure keeps its own copy of stage 06's
// thread cap (it imports no stage); the copy must say what the stage does.
func TestThreadLimitIsStage06s(t *testing.T) {
	source, err := os.ReadFile(filepath.Join("..", "06-goroutines-compare", "models.go"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^(?:var|const) threadLimit\b[^=\n]*= *(\d+)`).FindSubmatch(source)
	if m == nil {
		t.Fatal("06-goroutines-compare/models.go no longer defines threadLimit as a number: see threadLimit in compare.go")
	}
	if stage06, _ := strconv.Atoi(string(m[1])); stage06 != threadLimit {
		t.Errorf("stage 06's threadLimit is %d, measure's %d: change compare.go's", stage06, threadLimit)
	}
}

// TestWorkloads: the named workloads, NxDELAY, and what is neither.
func TestWorkloads(t *testing.T) {
	got, err := parseWorkloads("few,20x100ms")
	if err != nil {
		t.Fatal(err)
	}
	want := []workload{{"few", 10, 200 * time.Millisecond}, {"20x100ms", 20, 100 * time.Millisecond}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("workloads (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"lots", "0x1s", "20x", "x1s", "20x-1s", "few,"} {
		if _, err := parseWorkloads(bad); err == nil {
			t.Errorf("-workloads %q: no error", bad)
		}
	}
}

// TestCommandLine: the flags of -pictures are refused without it, -json
// with it, and the default workloads follow the mode.
func TestCommandLine(t *testing.T) {
	for _, c := range []struct {
		args []string
		fail string // "" when the line is good
		want string // the workloads, when it is
	}{
		{nil, "", "few,hundred,many,scale,scale10k"},
		{[]string{"-pictures"}, "", "hundred,many,scale"},
		{[]string{"-pictures", "-workloads", "few"}, "", "few"},
		{[]string{"-runs", "3", "-workloads", "scale10k"}, "", "scale10k"},
		{[]string{"-comparison", "saved.json"}, "", "few,hundred,many,scale,scale10k"},
		{[]string{"-only", "curve"}, "-only: only with -pictures", ""},
		{[]string{"-out", "x", "-only", "y"}, "-only, -out: only with -pictures", ""},
		{[]string{"-pictures", "-json"}, "-json: for the comparison's tables", ""},
		{[]string{"-pictures", "-runs", "3"}, "-runs: for the comparison's tables", ""},
		{[]string{"-runs", "0"}, "-runs 0: want 1 or more", ""},
		{[]string{"-json", "-write", "x.md"}, "-json prints no tables", ""},
		{[]string{"-clients=false", "-workloads", "few"}, "", "few"},
		{[]string{"-pictures", "-clients=false"}, "-clients: for the comparison's tables", ""},
		{[]string{"-workloads", "lots"}, `"lots" is not few`, ""},
		{[]string{"pictures"}, `unexpected "pictures"`, ""},
	} {
		var stderr bytes.Buffer
		o, err := parseOptions(c.args, &stderr)
		switch {
		case c.fail != "" && (err == nil || !strings.Contains(err.Error(), c.fail)):
			t.Errorf("%q: error %v; want one saying %q", c.args, err, c.fail)
		case c.fail == "" && err != nil:
			t.Errorf("%q: %v", c.args, err)
		case c.fail == "":
			var names []string
			for _, w := range o.workloads {
				names = append(names, w.Name)
			}
			if got := strings.Join(names, ","); got != c.want {
				t.Errorf("%q: workloads %s; want %s", c.args, got, c.want)
			}
		}
	}
}

// TestStartServer: the test server program starts on a port of its own
// choosing, says where, answers there, and stops.
func TestStartServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the test server")
	}
	program := filepath.Join(t.TempDir(), "testserver")
	if out, err := exec.Command("go", "build", "-o", program, "../internal/testserver/cmd/testserver").CombinedOutput(); err != nil {
		t.Fatalf("building the test server: %v\n%s", err, out)
	}
	srv, stop, err := startServer(context.Background(), program)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + srv.addr + "/")
	if err != nil {
		t.Fatalf("the test server at %s does not answer: %v", srv.addr, err)
	}
	resp.Body.Close()
	if runtime.GOOS == "linux" {
		if _, ok := processCPU(srv.pid); !ok {
			t.Errorf("the CPU time of the test server (pid %d) cannot be read", srv.pid)
		}
	}
}

// TestServerThatCannotStart: a test server program that exits at once is
// an error that gives the reason it printed.
func TestServerThatCannotStart(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "testserver")
	script := "#!/bin/sh\necho 'testserver: listen tcp: address already in use' >&2\nexit 1\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	_, _, err := startServer(context.Background(), fake)
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("error %v; want the server's own reason", err)
	}
}

// TestSummaryPassesThroughWhole: the comparison's JSON holds each stage's
// summary as the stage printed it, fields measure does not know included.
func TestSummaryPassesThroughWhole(t *testing.T) {
	printed := `{"stage":"x","embedded":false,"requests":2,"ok":2,"failed":0,"peak_note":"a field measure does not read","results":[{"id":1,"status":200,"start_ms":1,"end_ms":2}]}`
	var s summary
	if err := json.Unmarshal([]byte(printed), &s); err != nil {
		t.Fatal(err)
	}
	if s.OK != 2 || len(s.Results) != 1 || s.Results[0].EndMS != 2 {
		t.Errorf("read %+v from %s", s, printed)
	}
	out, err := json.Marshal(row{Model: "m", Summary: &s})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"summary":`+printed) {
		t.Errorf("the row's JSON does not hold the summary as printed:\n%s", out)
	}
	made, err := json.Marshal(summary{OK: 3})
	if err != nil || !strings.Contains(string(made), `"ok":3`) {
		t.Errorf("a summary made here encodes as %s, %v", made, err)
	}
}
