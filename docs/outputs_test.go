// Package docs holds one test: the program output shown in the repository's
// Markdown files must be what the programs print now.
//
// Every fenced block whose line just above is a marker
//
//	<!-- output: COMMAND -->
//
// shows what COMMAND prints (run with bash from the repository root). A
// marker that says "output with server" needs the test server running on
// 127.0.0.1:8000, which the test starts. A block may start with lines
// "$ …" that show the commands to the reader; they are kept as they are.
//
// go test ./docs compares each block with a fresh run. Times, counts and
// ports differ from run to run, so both sides are normalised first: numbers
// and durations masked, timeline bars masked, and the calls whose count
// depends on timing (EAGAIN, EINTR, empty waits) left out; then the sets of
// distinct lines must match. A renamed call, a new column, a changed message
// fails the test until the docs are regenerated with
//
//	go test ./docs -args -update      (make docs)
package docs

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the output blocks with what the commands print now")

// serverAddr is where "output with server" commands expect the test server.
const serverAddr = "127.0.0.1:8000"

var markerLine = regexp.MustCompile(`^<!-- output( with server)?: (.+) -->$`)

// A block is one marked output block in a Markdown file.
type block struct {
	file       string
	line       int    // of the marker, 1-based
	command    string // what to run
	needServer bool
	shown      string // the "$ …" lines, if the block has some
	output     string // the rest of the block
	start, end int    // byte offsets of the block's content in the file
}

func TestDocOutputs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every command shown in the docs")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	files := markdownFiles(t, root)
	var all []block
	for _, f := range files {
		all = append(all, findBlocks(t, f)...)
	}
	if len(all) == 0 {
		t.Fatal("no marked output blocks found: the docs should have some")
	}
	if slices.ContainsFunc(all, func(b block) bool { return b.needServer }) {
		stop := startServer(t, root)
		defer stop()
	}
	fresh := map[*block]string{}
	for i := range all {
		b := &all[i]
		out := run(t, root, b.command)
		fresh[b] = out
		if *update {
			continue
		}
		want, got := normalise(b.output), normalise(out)
		if diff := cmp.Diff(want, got); diff != "" {
			rel, _ := filepath.Rel(root, b.file)
			t.Errorf("%s:%d: the output of `%s` has changed (-docs +now, normalised):\n%s\nRegenerate with: make docs", rel, b.line, b.command, diff)
		}
	}
	if *update {
		rewrite(t, all, fresh)
	}
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
		b := block{file: file, line: i + 1, command: m[2], needServer: m[1] != "", output: content, start: start, end: start + end}
		for strings.HasPrefix(b.output, "$ ") { // the commands, as the reader sees them
			first, rest, _ := strings.Cut(b.output, "\n")
			b.shown, b.output = b.shown+first+"\n", rest
		}
		blocks = append(blocks, b)
	}
	return blocks
}

// run runs one command with bash from the repository root and returns what
// it printed on standard output. Its exit status does not matter: several
// commands show a failing run on purpose.
func run(t *testing.T, root, command string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", command)
	cmd.Dir = root
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

// startServer builds and starts the test server on serverAddr.
func startServer(t *testing.T, root string) (stop func()) {
	t.Helper()
	if conn, err := net.Dial("tcp", serverAddr); err == nil {
		conn.Close()
		t.Fatalf("something already listens on %s: stop it (make server?) and run again", serverAddr)
	}
	program := filepath.Join(t.TempDir(), "testserver")
	build := exec.Command("go", "build", "-o", program, "./internal/testserver/cmd/testserver")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the test server: %v\n%s", err, out)
	}
	server := exec.Command(program, "-addr", serverAddr)
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	stop = func() {
		server.Process.Signal(os.Interrupt)
		server.Wait()
	}
	for try := 0; try < 100; try++ {
		if conn, err := net.Dial("tcp", serverAddr); err == nil {
			conn.Close()
			return stop
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	t.Fatalf("the test server did not start on %s", serverAddr)
	return nil
}

var (
	duration = regexp.MustCompile(`\d+(\.\d+)?(ns|µs|us|ms|s|m|h)\b`)
	number   = regexp.MustCompile(`\d+([.,]\d+)*`)
	bar      = regexp.MustCompile(`│[^│]*│`)
	// Calls whose count depends on timing: an EAGAIN, an EINTR or an empty
	// wait happens in one run and not in the next.
	timingCall = regexp.MustCompile(`(, )?[a-z_/ ]+ (EAGAIN|EINTR|EALREADY|timeout) N`)
	spaces     = regexp.MustCompile(`\s+`)
)

// normalise turns an output into the set of its distinct lines, with what
// differs from run to run masked.
func normalise(output string) []string {
	set := map[string]bool{}
	for _, line := range strings.Split(output, "\n") {
		if strings.Contains(line, "= -1 EAGAIN") || strings.Contains(line, "= -1 EINTR") || strings.Contains(line, "= -1 EALREADY") {
			continue // a trace line of a call whose result depends on timing
		}
		line = bar.ReplaceAllString(line, "│BAR│")
		line = duration.ReplaceAllString(line, "T")
		line = number.ReplaceAllString(line, "N")
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
func rewrite(t *testing.T, blocks []block, fresh map[*block]string) {
	t.Helper()
	byFile := map[string][]*block{}
	for i := range blocks {
		byFile[blocks[i].file] = append(byFile[blocks[i].file], &blocks[i])
	}
	for file, list := range byFile {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		for i := len(list) - 1; i >= 0; i-- { // from the end, so earlier offsets stay valid
			b := list[i]
			out := fresh[b]
			if out != "" && !strings.HasSuffix(out, "\n") {
				out += "\n"
			}
			text = text[:b.start] + b.shown + out + text[b.end:]
		}
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("updated %s (%d blocks)\n", file, len(list))
	}
}
