//go:build unix

package main

// Tests of what the comparison adds to the stages' rows: the clients that
// are not stages, the kernel's counters, the medians of -runs, and -write.

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"blocking-to-epoll/internal/testserver"
)

// TestClientCommandLines: each client is asked for the workload, at the
// server, with the row's tag in its query so the server can count the
// row's requests apart.
func TestClientCommandLines(t *testing.T) {
	w := workload{N: 7, Delay: time.Second}
	got := map[string]string{}
	for name, c := range map[string]*client{"nethttp": netHTTP, "asyncio": asyncio, "ab": apacheBench, "curl": curl} {
		argv, stdin := c.command("BIN", "127.0.0.1:1", "TAG", w)
		got[name] = strings.Join(argv, " ")
		if name == "asyncio" && !bytes.Equal(stdin, asyncioClient) {
			t.Errorf("python3 is not given the script on standard input")
		}
	}
	want := map[string]string{
		"nethttp": "BIN/nethttp -addr 127.0.0.1:1 -n 7 -delay 1s -run TAG",
		"asyncio": "python3 - -addr 127.0.0.1:1 -n 7 -delay 1s -run TAG",
		"ab":      "ab -q -r -n 7 -c 7 http://127.0.0.1:1/page?run=TAG&delay=1s",
		"curl":    `curl --silent --http1.0 --parallel --parallel-max 300 --output /dev/null --write-out %{http_code}\n http://127.0.0.1:1/page?run=TAG&delay=1s&req=[1-7]`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("command lines (-want +got):\n%s", diff)
	}
}

// TestReadingTheTools: ab's report and curl's status codes become ok and
// failed counts; output that is neither is an error, not a row of zeros.
func TestReadingTheTools(t *testing.T) {
	w := workload{N: 10}
	ab := "Concurrency Level:      10\nComplete requests:      10\nFailed requests:        1\n   (Connect: 0, Receive: 1, Length: 0, Exceptions: 0)\nNon-2xx responses:      2\n"
	s, err := readAB([]byte(ab), w)
	if err != nil || s.OK != 7 || s.Failed != 3 {
		t.Errorf("ab's report read as %+v, %v; want 7 ok, 3 failed", s, err)
	}
	s, err = readCurl([]byte("200\n200\n000\n404\n200\n200\n200\n200\n200\n200\n"), w)
	if err != nil || s.OK != 8 || s.Failed != 2 {
		t.Errorf("curl's codes read as %+v, %v; want 8 ok, 2 failed", s, err)
	}
	if _, err := readAB([]byte("apr_socket_connect(): Connection refused (111)\n"), w); err == nil {
		t.Error("ab output without a report: no error")
	}
	if _, err := readCurl(nil, w); err == nil {
		t.Error("curl printing nothing: no error")
	}
	if _, err := readJSON([]byte(`{"requests":3,"ok":3,"failed":0}`), w); err == nil {
		t.Error("a summary of 3 requests for a workload of 10: no error")
	}
}

// TestClientsAgainstTheTestServer runs each client for real against the
// test server: every request ok, all of them at once in the server's
// record (ab sends its first alone), and the rusage figures filled in.
// A client that is not installed skips.
func TestClientsAgainstTheTestServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the net/http client and waits a second per client")
	}
	srv := startTestServer(t)
	bin := buildProgram(t, "./clients/nethttp")
	w := workload{N: 5, Delay: time.Second}
	for name, c := range map[string]*client{"nethttp": netHTTP, "asyncio": asyncio, "ab": apacheBench, "curl": curl} {
		t.Run(name, func(t *testing.T) {
			if why := noTool(c)(w, 0); why != "" {
				t.Skip(why)
			}
			s, err := runClient(context.Background(), c, bin, srv.Addr(), w)
			if err != nil {
				t.Fatal(err)
			}
			wantPeak := w.N
			if c == apacheBench {
				wantPeak = w.N - 1 // its first request alone, then the rest at once
			}
			if s.OK != w.N || s.Failed != 0 || s.PeakInFlight == nil || *s.PeakInFlight != wantPeak {
				t.Errorf("%d ok, %d failed, peak %v; want %d ok and a peak of %d", s.OK, s.Failed, s.PeakInFlight, w.N, wantPeak)
			}
			if s.WallMS <= 0 || s.CPUMS <= 0 || s.MaxRSSKB <= 0 {
				t.Errorf("wall %v ms, CPU %v ms, RSS %d KB: want each filled in", s.WallMS, s.CPUMS, s.MaxRSSKB)
			}
		})
	}
}

// TestSkipsWhatDoesNotFit: a row that holds every connection at once is
// skipped, saying why, when ulimit -n cannot hold them; ab past its -c cap.
func TestSkipsWhatDoesNotFit(t *testing.T) {
	tenK := workloads["scale10k"]
	if why := fitsDescriptors(tenK, 1024); !strings.Contains(why, "ulimit -n is 1024") {
		t.Errorf("10,000 connections with ulimit -n 1024: %q", why)
	}
	if why := fitsDescriptors(tenK, 20000); why != "" {
		t.Errorf("10,000 connections with ulimit -n 20000: skipped: %s", why)
	}
	if why := abConcurrency(workload{N: 30000}, 0); why == "" {
		t.Error("ab -c 30000: not skipped")
	}
	if why := firstOf(notLinux, fitsDescriptors)(tenK, 1024); why == "" {
		t.Error("firstOf: the descriptors' reason was lost")
	}
}

// TestKernelCounts: /proc/net/netstat's pairs of lines are read by name,
// and a system without the file has no counts (the table says n/a).
func TestKernelCounts(t *testing.T) {
	text := "TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPSynRetrans\nTcpExt: 0 5 7 11\nIpExt: InNoRoutes\nIpExt: 3\n"
	values, err := parseNetstat(text)
	if err != nil {
		t.Fatal(err)
	}
	if values["TcpExt:ListenDrops"] != 7 || values["IpExt:InNoRoutes"] != 3 {
		t.Errorf("read %v", values)
	}
	if _, err := parseNetstat("TcpExt: A B\nTcpExt: 1\n"); err == nil {
		t.Error("names and values that do not pair up: no error")
	}

	saved := netstatFile
	t.Cleanup(func() { netstatFile = saved })
	netstatFile = filepath.Join(t.TempDir(), "netstat")
	if c := readKernelCounts(); c != nil {
		t.Errorf("no file, counts %+v", c)
	}
	if err := os.WriteFile(netstatFile, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	before := readKernelCounts()
	after := &kernelCounts{ListenOverflows: 8, ListenDrops: 10, SynRetrans: 20}
	if diff := cmp.Diff(&kernelCounts{3, 3, 9}, after.since(before)); diff != "" {
		t.Errorf("the difference (-want +got):\n%s", diff)
	}
	if after.since(nil) != nil {
		t.Error("a difference from unknown counts is not unknown")
	}
}

// TestMedians: with -runs, each figure is the median of the runs'; a run
// that failed fails the row; one run is the row as the program printed it.
func TestMedians(t *testing.T) {
	peak := func(n int) *int { return &n }
	runs := []runRecord{
		{Summary: &summary{Requests: 10, OK: 10, WallMS: 1300, CPUMS: 50, MaxRSSKB: 9000, PeakInFlight: peak(10), Syscalls: map[string]int{"read": 30}}, Kernel: &kernelCounts{0, 0, 4}},
		{Summary: &summary{Requests: 10, OK: 9, Failed: 1, WallMS: 1100, CPUMS: 70, MaxRSSKB: 8000, PeakInFlight: peak(9), Syscalls: map[string]int{"read": 20}}, Kernel: &kernelCounts{1, 1, 0}},
		{Summary: &summary{Requests: 10, OK: 10, WallMS: 1200, CPUMS: 60, MaxRSSKB: 8500, PeakInFlight: peak(10), Syscalls: map[string]int{"read": 40}}, Kernel: &kernelCounts{2, 2, 2}},
	}
	s, k, errText := medianOf(runs)
	if errText != "" {
		t.Fatal(errText)
	}
	got := []float64{s.WallMS, s.CPUMS, float64(s.MaxRSSKB), float64(s.OK), float64(s.Failed), float64(*s.PeakInFlight), float64(s.Syscalls["read"])}
	if diff := cmp.Diff([]float64{1200, 60, 8500, 10, 0, 10, 30}, got); diff != "" {
		t.Errorf("medians: wall, cpu, rss, ok, failed, peak, reads (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&kernelCounts{1, 1, 2}, k); diff != "" {
		t.Errorf("kernel counts' medians (-want +got):\n%s", diff)
	}
	runs[1].Error = "05-epoll: exit status 2"
	if _, _, errText := medianOf(runs); errText != "run 2 of 3: 05-epoll: exit status 2" {
		t.Errorf("a failed run: %q", errText)
	}
	if one, _, _ := medianOf(runs[:1]); one != runs[0].Summary {
		t.Error("one run: not the run itself")
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median of 1..4: %v", m)
	}
}

// TestTableColumns: the server's CPU time, drops and retransmits show, or
// n/a where unknown; a client that counts no calls shows "-", and one that
// does not time each request "?" for overlap.
func TestTableColumns(t *testing.T) {
	var out bytes.Buffer
	peak, serverCPU := 300, 1234.0
	writeRow(&out, row{Model: "stage", Summary: &summary{Requests: 2, OK: 2, WallMS: 1000, Syscalls: map[string]int{"read": 5}, AchievedConcurrency: 2, ServerCPUMS: &serverCPU}, Kernel: &kernelCounts{ListenDrops: 17, SynRetrans: 23}})
	writeRow(&out, row{Model: "tool", Summary: &summary{Requests: 2, OK: 2, WallMS: 1000, PeakInFlight: &peak}})
	lines := strings.Split(out.String(), "\n")
	// model, wall, cpu, cpu%, srv cpu, peak RSS (two fields), calls, wasted,
	// overlap, at once, ok/failed, drops, SYN rtx
	if f := strings.Fields(lines[0]); len(f) < 14 || f[4] != "1.23s" || f[7] != "5" || f[12] != "17" || f[13] != "23" {
		t.Errorf("a stage's row: %q", lines[0])
	}
	if f := strings.Fields(lines[1]); len(f) < 14 || f[4] != "n/a" || f[7] != "-" || f[8] != "-" || f[9] != "?" || f[10] != "300" || f[13] != "n/a" {
		t.Errorf("a tool's row: %q", lines[1])
	}
}

// TestWriteGenerated: -write fills every marked block, the whole output or
// one workload's table, leaves a block whose workload did not run, and
// touches nothing else in the file.
func TestWriteGenerated(t *testing.T) {
	onlyStages(t)
	c := comparison{Machine: fakeMachine, Server: "127.0.0.1:1", Runs: 3, Workloads: []workloadRun{
		{workload: workload{Name: "few", N: 10, Delay: 200 * time.Millisecond}, Rows: []row{{Model: "01 blocking, one at a time", Skipped: "why not"}}},
	}}
	doc := "# Title\n\n<!-- generated by: make performance -->\n```\nold\n```\n\ntext\n\n<!-- generated by: make performance, few -->\n```\nold few\n```\n\n<!-- generated by: make performance, scale -->\n```\nold scale\n```\nend\n"
	file := filepath.Join(t.TempDir(), "doc.md")
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if err := writeGenerated(file, c, &log); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(file)
	var whole, few bytes.Buffer
	writeComparison(&whole, c)
	writeMachine(&few, c)
	few.WriteString("\n")
	writeTable(&few, c.Workloads[0], c.Runs)
	want := "# Title\n\n<!-- generated by: make performance -->\n```\n" + whole.String() + "```\n\ntext\n\n<!-- generated by: make performance, few -->\n```\n" + few.String() + "```\n\n<!-- generated by: make performance, scale -->\n```\nold scale\n```\nend\n"
	if diff := cmp.Diff(want, string(data)); diff != "" {
		t.Errorf("the file (-want +got):\n%s", diff)
	}
	if !strings.Contains(few.String(), "(few), median of 3 runs") {
		t.Errorf("the table does not say it gives medians:\n%s", few.String())
	}
	if err := writeGenerated(filepath.Join(t.TempDir(), "none.md"), c, &log); err == nil {
		t.Error("a file that does not exist: no error")
	}
}

// startTestServer starts the test server in this process until the test ends.
func startTestServer(t *testing.T) *testserver.Server {
	t.Helper()
	srv, err := testserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// buildProgram builds the program of package pkg (./clients/nethttp) into a
// folder of the test's, and returns the folder.
func buildProgram(t *testing.T, pkg string) string {
	t.Helper()
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, out)
	}
	return bin
}
