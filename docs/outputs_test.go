// Package docs holds one test: the program output shown in the repository's
// Markdown files must be what the programs print now.
//
// Every fenced block whose line just above is a marker
//
//	<!-- output: COMMAND -->
//
// shows what COMMAND prints (run with bash from the repository root). A
// marker that says "output with server" needs a standalone test server: the
// docs show it at 127.0.0.1:8000, where `make server` puts it, but the test
// starts its own on a free port (testserver -addr 127.0.0.1:0, which prints
// the address it got) and runs the command with that address in place of
// 127.0.0.1:8000, so a server already running there does not matter. A block
// may start with lines "$ …" that show the commands to the reader; they are
// kept as they are.
//
// go test ./docs compares each block with a fresh run, one subtest per block
// (TestDocOutputs/FILE:LINE, so -run picks one and a block can skip alone).
// Each command runs with a folder of its own: a path under /tmp/ in it
// becomes a path in a new t.TempDir(), and TMPDIR points there too, so two
// runs at once, or a user who is not root, do not collide; the output shows
// /tmp again. A block skips, saying why, when this machine cannot run it: a
// command with -n N needs about 2 descriptors per request with the server in
// the same process (1 with the standalone server), plus 20, and skips when
// the hard limit (ulimit -Hn) is lower; off Linux, the blocks that show epoll,
// strace, /proc or the Linux-only benchmark skip.
//
// Times, counts, ports and the machine differ from run to run, so both sides
// are normalised first: numbers and durations masked (ports included), a
// line that starts with "machine:" (CPU model, kernel, arch, cores) masked
// whole, the GOMAXPROCS suffix of benchmark names (-2) dropped, timeline bars
// masked, and the calls whose count depends on timing (EAGAIN, EINTR, empty
// waits) left out; then the sets of distinct lines must match. A renamed
// call, a new column, a changed message fails the test until the docs are
// regenerated with
//
//	go test ./docs -args -update      (make docs)
//
// which rewrites the blocks that ran (with -run, only those) and the files
// they are in, and no other.
package docs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the output blocks with what the commands print now")

// shownServerAddr is where the docs show the standalone test server (make
// server). The test's own server listens on a free port instead.
const shownServerAddr = "127.0.0.1:8000"

var markerLine = regexp.MustCompile(`^<!-- output( with server)?: (.+) -->$`)

// A block is one marked output block in a Markdown file.
type block struct {
	file       string
	line       int    // of the marker, 1-based
	nth        int    // how many blocks before it in the file have the same command
	command    string // what to run
	needServer bool
	shown      string // the "$ …" lines, if the block has some
	output     string // the rest of the block
	start, end int    // byte offsets of the block's content in the file
}

// key names a block by what it runs, not by where it is, so that a file
// edited while the commands run is still rewritten in the right places.
func (b *block) key() string { return b.file + "\x00" + b.command + "\x00" + strconv.Itoa(b.nth) }

func TestDocOutputs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every command shown in the docs")
	}
	if runtime.GOOS == "windows" {
		t.Skip("the stages run on Unix only: on Windows each says to use WSL 2 or a Linux VM")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	var all []block
	for _, f := range markdownFiles(t, root) {
		all = append(all, findBlocks(t, f)...)
	}
	if len(all) == 0 {
		t.Fatal("no marked output blocks found: the docs should have some")
	}
	limit := descriptorLimit(t)
	server := &standaloneServer{root: root, dir: t.TempDir()}
	t.Cleanup(server.stop)

	fresh := map[string]string{} // block key → what its command printed now
	for i := range all {
		b := &all[i]
		rel, _ := filepath.Rel(root, b.file)
		t.Run(fmt.Sprintf("%s:%d", rel, b.line), func(t *testing.T) {
			if why := cannotRun(b, limit); why != "" {
				t.Skip(why)
			}
			dir := t.TempDir()
			command := tmpPath.ReplaceAllString(b.command, "${1}"+dir+"/")
			addr := ""
			if b.needServer {
				if addr, err = server.addr(); err != nil {
					t.Fatal(err)
				}
				command = strings.ReplaceAll(command, shownServerAddr, addr)
			}
			out := run(t, root, command, dir)
			out = strings.ReplaceAll(out, dir, "/tmp") // as the reader sees it
			if addr != "" {
				out = strings.ReplaceAll(out, addr, shownServerAddr)
			}
			if *update {
				if out != "" {
					fresh[b.key()] = out
				}
				return
			}
			want, got := normalise(b.output), normalise(out)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s:%d: the output of `%s` has changed (-docs +now, normalised):\n%s\nRegenerate with: make docs", rel, b.line, b.command, diff)
			}
		})
	}
	if *update {
		rewrite(t, root, fresh)
	}
}

// tmpPath finds the paths under /tmp/ in a command.
var tmpPath = regexp.MustCompile(`(^|[\s='"(])/tmp/`)

var (
	requestCount = regexp.MustCompile(`(?:^|\s)-n[ =](\d+)`)
	// Linux only: stage 05 runs kqueue elsewhere, the benchmark is epoll's,
	// and strace and /proc are Linux's.
	linuxOnlyCommand = regexp.MustCompile(`05-epoll|WaitCost|strace|/proc/|reliability\.sh`)
	linuxOnlyOutput  = regexp.MustCompile(`epoll_|EPOLL|strace|/proc/`)
)

// cannotRun says why this machine cannot run a block's command ("" when
// it can).
func cannotRun(b *block, limit int) string {
	if runtime.GOOS != "linux" && (linuxOnlyCommand.MatchString(b.command) || linuxOnlyOutput.MatchString(b.output)) {
		return "Linux only (epoll, strace, /proc or the epoll benchmark); this is " + runtime.GOOS
	}
	n := 0
	for _, m := range requestCount.FindAllStringSubmatch(b.command, -1) {
		if v, err := strconv.Atoi(m[1]); err == nil {
			n = max(n, v)
		}
	}
	perRequest, where := 2, "the server in the same process"
	if strings.Contains(b.command, "-addr "+shownServerAddr) {
		perRequest, where = 1, "a standalone server"
	}
	if need := n*perRequest + 20; limit > 0 && need > limit {
		return fmt.Sprintf("needs about %d file descriptors (-n %d, %d per request with %s, plus 20) and the limit here is %d (ulimit -Hn)", need, n, perRequest, where, limit)
	}
	return ""
}

// descriptorLimit is the most descriptors a stage can open here: the hard
// limit, since a Go program raises its soft limit to it. 0 means no limit.
func descriptorLimit(t *testing.T) int {
	t.Helper()
	out, err := exec.Command("bash", "-c", "ulimit -Hn").Output()
	if err != nil {
		t.Fatalf("ulimit -Hn: %v", err)
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return 0 // "unlimited"
	}
	return limit
}

// markdownFiles lists the .md files under root, skipping hidden folders.
func markdownFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != root {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// findBlocks reads the marked blocks of one file.
func findBlocks(t *testing.T, file string) []block {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	var blocks []block
	seen := map[string]int{} // command → blocks so far that run it
	offset := 0
	lines := strings.SplitAfter(text, "\n")
	for i := 0; i < len(lines); i++ {
		m := markerLine.FindStringSubmatch(strings.TrimSpace(lines[i]))
		offset += len(lines[i])
		if m == nil {
			continue
		}
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```") {
			t.Fatalf("%s:%d: an output marker must be followed by a fenced block", file, i+1)
		}
		start := offset + len(lines[i+1])
		end := strings.Index(text[start:], "```")
		if end < 0 {
			t.Fatalf("%s:%d: the fenced block never ends", file, i+2)
		}
		content := text[start : start+end]
		b := block{file: file, line: i + 1, nth: seen[m[2]], command: m[2], needServer: m[1] != "", output: content, start: start, end: start + end}
		seen[m[2]]++
		for strings.HasPrefix(b.output, "$ ") { // the commands, as the reader sees them
			first, rest, _ := strings.Cut(b.output, "\n")
			b.shown, b.output = b.shown+first+"\n", rest
		}
		blocks = append(blocks, b)
	}
	return blocks
}

// run runs one command with bash from the repository root, with TMPDIR set
// to dir, and returns what it printed on standard output. Its exit status
// does not matter: several commands show a failing run on purpose.
func run(t *testing.T, root, command, dir string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", command)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "TMPDIR="+dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil && ctx.Err() != nil {
		t.Fatalf("`%s` did not finish in 3 minutes: %s", command, stderr.String())
	}
	if stdout.Len() == 0 {
		t.Errorf("`%s` printed nothing (stderr: %s)", command, stderr.String())
	}
	return stdout.String()
}

// A standaloneServer is the test server in a process of its own, started
// the first time a block needs it, on a port the system picks.
type standaloneServer struct {
	root, dir string
	once      sync.Once
	address   string
	err       error
	cmd       *exec.Cmd
	drained   chan struct{} // closed when its standard output is at EOF
}

var listening = regexp.MustCompile(`listening on http://(\S+)`)

// addr starts the server if it is not running yet and says where it listens.
func (s *standaloneServer) addr() (string, error) {
	s.once.Do(func() { s.address, s.err = s.start() })
	return s.address, s.err
}

func (s *standaloneServer) start() (string, error) {
	program := filepath.Join(s.dir, "testserver")
	build := exec.Command("go", "build", "-o", program, "./internal/testserver/cmd/testserver")
	build.Dir = s.root
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the test server: %v\n%s", err, out)
	}
	s.cmd = exec.Command(program, "-addr", "127.0.0.1:0")
	var stderr bytes.Buffer
	s.cmd.Stderr = &stderr
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := s.cmd.Start(); err != nil {
		return "", fmt.Errorf("starting the test server: %w", err)
	}
	found := make(chan string, 1)
	s.drained = make(chan struct{})
	go func() {
		defer close(s.drained)
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			if m := listening.FindStringSubmatch(lines.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case addr := <-found:
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return "", fmt.Errorf("the test server said it listens on %s, but: %w", addr, err)
		}
		conn.Close()
		return addr, nil
	case <-s.drained:
		s.cmd.Wait()
		return "", fmt.Errorf("the test server exited without saying where it listens: %s", stderr.String())
	case <-time.After(30 * time.Second):
		return "", errors.New("the test server did not say where it listens within 30 s")
	}
}

// stop ends the server, if it was started.
func (s *standaloneServer) stop() {
	if s.cmd == nil || s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.drained:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.drained
	}
	s.cmd.Wait()
}

var (
	duration = regexp.MustCompile(`\d+(\.\d+)?(ns|µs|us|ms|s|m|h)\b`)
	number   = regexp.MustCompile(`\d+([.,]\d+)*`)
	bar      = regexp.MustCompile(`│[^│]*│`)
	// A benchmark's name ends in -GOMAXPROCS, except when that is 1.
	benchmarkProcs = regexp.MustCompile(`^(Benchmark\S*?)-\d+(\s|$)`)
	// Calls whose count depends on timing: an EAGAIN, an EINTR or an empty
	// wait happens in one run and not in the next.
	timingCall = regexp.MustCompile(`(, )?[a-z_/ ]+ (EAGAIN|EINTR|EALREADY|timeout) N`)
	spaces     = regexp.MustCompile(`\s+`)
)

// normalise turns an output into the set of its distinct lines, with what
// differs from run to run, and from machine to machine, masked.
func normalise(output string) []string {
	set := map[string]bool{}
	for _, line := range strings.Split(output, "\n") {
		if strings.Contains(line, "= -1 EAGAIN") || strings.Contains(line, "= -1 EINTR") || strings.Contains(line, "= -1 EALREADY") {
			continue // a trace line of a call whose result depends on timing
		}
		if strings.HasPrefix(strings.TrimSpace(line), "machine:") {
			line = "machine: …" // CPU model, cores, kernel, arch: this machine's, not the docs'
		}
		line = benchmarkProcs.ReplaceAllString(strings.TrimSpace(line), "$1$2")
		line = bar.ReplaceAllString(line, "│BAR│")
		line = duration.ReplaceAllString(line, "T")
		line = number.ReplaceAllString(line, "N") // ports too: 127.0.0.1:N
		line = timingCall.ReplaceAllString(line, "")
		line = strings.TrimSpace(spaces.ReplaceAllString(line, " "))
		if line != "" {
			set[line] = true
		}
	}
	lines := make([]string, 0, len(set))
	for line := range set {
		lines = append(lines, line)
	}
	slices.Sort(lines)
	return lines
}

// rewrite puts the fresh outputs into the files, keeping the "$ …" lines.
// Each file is read again first and its blocks found anew, so that an edit
// made while the commands ran is kept; a file is written only if it changes.
func rewrite(t *testing.T, root string, fresh map[string]string) {
	t.Helper()
	for _, file := range markdownFiles(t, root) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		text, changed := string(data), 0
		blocks := findBlocks(t, file)
		for i := len(blocks) - 1; i >= 0; i-- { // from the end, so earlier offsets stay valid
			b := blocks[i]
			out, ok := fresh[b.key()]
			if !ok {
				continue // not run this time (skipped, or left out by -run)
			}
			if !strings.HasSuffix(out, "\n") {
				out += "\n"
			}
			if out != b.output {
				text = text[:b.start] + b.shown + out + text[b.end:]
				changed++
			}
		}
		if changed == 0 {
			continue
		}
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, file)
		t.Logf("rewrote %s (%d blocks)", rel, changed)
	}
}
