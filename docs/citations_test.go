package docs

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// TestCitations checks what the Markdown pages cite, outside their fenced
// blocks (commands in fenced blocks are TestDocCommandsExist's, outputs
// TestDocOutputs'):
//
//   - a relative link must name a file or folder of the repository, and its
//     #anchor a heading of the page it names;
//   - a path in backticks (`05-epoll/main.go`, `internal/testserver/`,
//     `runtime/netpoll_epoll.go`) must exist in the repository, beside the
//     page, or under $(go env GOROOT)/src; a bare file name (`main.go`) beside
//     the page or anywhere in the repository or in Go's sources;
//   - `file.go:123` must name a line the file has, and when the backticks go
//     on with ": text", that line must still contain the text;
//   - every TestXxx, BenchmarkXxx and FuzzXxx named must be defined by a
//     _test.go file of the repository;
//   - a document named in running text (NAME.md, NAME.txt, with or without
//     its folder) must exist as the backticked paths must: a page may not
//     send its reader to notes that only the project's authors have;
//   - nothing may point outside what a reader has: absolute paths other than
//     the system's own (/proc, /sys, /dev, /usr, /etc, /tmp), links that
//     climb out of the repository.
//
// The exercises' README is checked too. The solution patches are not
// Markdown and are left to check-solutions.sh.
func TestCitations(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	c := newCiter(t, root)
	checked := 0
	for _, file := range markdownFiles(t, root) {
		rel, _ := filepath.Rel(root, file)
		for _, p := range c.checkPage(t, file) {
			t.Errorf("%s:%d: %s", rel, p.line, p.problem)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("found no Markdown pages")
	}
	if c.citations == 0 {
		t.Fatal("found no citations at all: the patterns are broken")
	}
}

type citer struct {
	root, goroot string
	tests        map[string]bool // TestXxx, BenchmarkXxx, FuzzXxx defined in the repository
	repoNames    map[string]bool // base names of the repository's files
	goNames      map[string]bool // base names of Go's and x/sys's source files
	xsys         string          // x/sys's unix folder in the module cache, or ""
	citations    int
}

type problem struct {
	line    int
	problem string
}

var testFunc = regexp.MustCompile(`(?m)^func ((?:Test|Benchmark|Fuzz)[A-Z0-9_]\w*)\(`)

func newCiter(t *testing.T, root string) *citer {
	t.Helper()
	c := &citer{root: root, tests: map[string]bool{}, repoNames: map[string]bool{}, goNames: map[string]bool{}}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() {
			return nil
		}
		c.repoNames[d.Name()] = true
		if strings.HasSuffix(path, "_test.go") {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range testFunc.FindAllSubmatch(data, -1) {
				c.tests[string(m[1])] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c.goroot = goEnv(t, "GOROOT")
	if mods := goEnv(t, "GOMODCACHE"); mods != "" {
		if dirs, _ := filepath.Glob(filepath.Join(mods, "golang.org", "x", "sys@*", "unix")); len(dirs) > 0 {
			c.xsys = dirs[len(dirs)-1]
		}
	}
	for _, dir := range []string{filepath.Join(c.goroot, "src"), c.xsys} {
		if dir == "" {
			continue
		}
		filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				c.goNames[d.Name()] = true
			}
			return nil
		})
	}
	return c
}

func goEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", name, err)
	}
	return strings.TrimSpace(string(out))
}

var (
	mdLink    = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)\)`)
	codeSpan  = regexp.MustCompile("`([^`]+)`")
	testName  = regexp.MustCompile(`\b((?:Test|Benchmark|Fuzz)[A-Z][A-Za-z0-9_]*)`)
	lineCite  = regexp.MustCompile(`([\w./-]+\.go):(\d+)(?::\s*(.*))?`)
	fileToken = regexp.MustCompile(`^(?:\.{0,2}/)?[\w.@+-]+(?:/[\w.@+-]+)*/?$`)
	fileExt   = regexp.MustCompile(`\.(go|md|sh|c|h|svg|txt|mod|sum|json|patch|yml|yaml)$`)
	// A document named in running text, with or without its folder.
	docName = regexp.MustCompile(`(?:\b[\w.-]+/)*\b[\w.-]+\.(?:md|txt)\b`)
)

// Kernel source folders: cited for readers to look up, not checkable here.
var kernelDirs = []string{"fs/", "kernel/", "mm/", "net/ipv4/", "net/ipv6/", "net/core/", "include/"}

// System paths a reader has on any Linux machine.
var systemDirs = []string{"/proc/", "/sys/", "/dev/", "/usr/", "/etc/", "/tmp/"}

// checkPage returns the problems of one page.
func (c *citer) checkPage(t *testing.T, file string) []problem {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := filepath.Dir(file)
	var problems []problem
	add := func(line int, format string, args ...any) {
		problems = append(problems, problem{line, fmt.Sprintf(format, args...)})
	}
	inBlock := false
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; scanner.Scan(); n++ {
		line := scanner.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inBlock = !inBlock
			continue
		}
		if inBlock || strings.HasPrefix(strings.TrimSpace(line), "<!--") {
			continue
		}
		prose := codeSpan.ReplaceAllString(mdLink.ReplaceAllString(line, ""), "")
		for _, name := range docName.FindAllString(prose, -1) {
			c.citations++
			if msg := c.checkPath(dir, name); msg != "" {
				add(n, "names %s, which readers do not have (%s): cite a test, a run or a source file instead", name, msg)
			}
		}
		for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
			c.citations++
			if msg := c.checkLink(file, m[1]); msg != "" {
				add(n, "the link (%s) %s", m[1], msg)
			}
		}
		for _, m := range testName.FindAllStringSubmatch(line, -1) {
			c.citations++
			if !c.tests[m[1]] {
				add(n, "names %s, which no _test.go file in the repository defines", m[1])
			}
		}
		for _, m := range codeSpan.FindAllStringSubmatch(line, -1) {
			span := m[1]
			if lc := lineCite.FindStringSubmatch(span); lc != nil && strings.HasPrefix(span, lc[0][:len(lc[1])]) {
				c.citations++
				if msg := c.checkLine(dir, lc[1], lc[2], lc[3]); msg != "" {
					add(n, "`%s` %s", span, msg)
				}
				continue
			}
			if msg := c.checkPath(dir, span); msg != "" {
				c.citations++
				add(n, "`%s` %s", span, msg)
			}
		}
		// file.go:123 outside backticks, in running text.
		for _, lc := range lineCite.FindAllStringSubmatch(prose, -1) {
			c.citations++
			if msg := c.checkLine(dir, lc[1], lc[2], ""); msg != "" {
				add(n, "%s:%s %s", lc[1], lc[2], msg)
			}
		}
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	return problems
}

// checkLink checks a link's target and anchor; web links are not followed.
func (c *citer) checkLink(file, target string) string {
	dir := filepath.Dir(file)
	if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
		return ""
	}
	path, anchor, _ := strings.Cut(target, "#")
	full := file // an anchor alone names a heading of this page
	if path != "" {
		full = filepath.Join(dir, path)
		if rel, err := filepath.Rel(c.root, full); err != nil || strings.HasPrefix(rel, "..") {
			return "points outside the repository"
		}
		if _, err := os.Stat(full); err != nil {
			return "names a file that does not exist"
		}
	}
	if anchor == "" {
		return ""
	}
	page := full
	if info, err := os.Stat(page); err == nil && info.IsDir() {
		page = filepath.Join(page, "README.md")
	}
	if !strings.HasSuffix(page, ".md") {
		return ""
	}
	if !headingAnchors(page)[anchor] {
		return "names #" + anchor + ", which is no heading of " + filepath.Base(page)
	}
	return ""
}

// headingAnchors returns the anchors GitHub makes for a page's headings.
func headingAnchors(page string) map[string]bool {
	data, err := os.ReadFile(page)
	if err != nil {
		return nil
	}
	anchors := map[string]bool{}
	inBlock := false
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inBlock = !inBlock
		}
		if inBlock || !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		anchors[b.String()] = true
	}
	return anchors
}

// checkPath checks a backticked span that looks like a path. It returns ""
// for spans that are not paths (code, flags, commands, placeholders).
func (c *citer) checkPath(dir, span string) string {
	if strings.Contains(span, "://") || strings.ContainsAny(span, " *$…<>{}%|=,()'\"") || strings.Contains(span, "NN") || strings.Contains(span, "PID") {
		return ""
	}
	if !fileToken.MatchString(span) {
		return ""
	}
	if strings.HasPrefix(span, "/") {
		if strings.Count(trimSlash(span), "/") < 2 {
			return "" // a URL path such as /stats, not a file
		}
		for _, d := range systemDirs {
			if strings.HasPrefix(span, d) {
				return ""
			}
		}
		return "is a path outside the repository that readers do not have"
	}
	hasExt := fileExt.MatchString(span)
	trimmed := strings.TrimSuffix(strings.TrimPrefix(span, "./"), "/")
	if !strings.Contains(trimmed, "/") {
		if !hasExt || strings.HasPrefix(span, ".") {
			return "" // a word, a flag, a dotted name
		}
		if c.exists(filepath.Join(dir, trimmed)) || c.repoNames[trimmed] || c.goNames[trimmed] {
			return ""
		}
		return "names a file that is not in the repository (nor in Go's sources)"
	}
	first, _, _ := strings.Cut(trimmed, "/")
	if !hasExt && !strings.HasSuffix(span, "/") && !c.exists(filepath.Join(c.root, first)) {
		return "" // not a path of ours: a package path such as runtime/debug
	}
	for _, d := range kernelDirs {
		if strings.HasPrefix(trimmed, d) && (strings.HasSuffix(trimmed, ".c") || strings.HasSuffix(trimmed, ".h")) {
			return "" // the kernel's sources
		}
	}
	for _, base := range []string{c.root, dir, filepath.Join(c.goroot, "src")} {
		if c.exists(filepath.Join(base, trimmed)) {
			return ""
		}
	}
	if c.xsys != "" && c.exists(filepath.Join(c.xsys, strings.TrimPrefix(trimmed, "unix/"))) {
		return ""
	}
	if strings.HasPrefix(span, "../") {
		if rel, err := filepath.Rel(c.root, filepath.Join(dir, trimmed)); err != nil || strings.HasPrefix(rel, "..") {
			return "is a path outside the repository that readers do not have"
		}
	}
	return "names a path that does not exist (in the repository, beside the page, or in Go's sources)"
}

// checkLine checks that file (resolved as checkPath does) has line n, and,
// when quote is not empty, that the line still contains it.
func (c *citer) checkLine(dir, file, number, quote string) string {
	var path string
	for _, base := range []string{dir, c.root, filepath.Join(c.goroot, "src"), c.xsys} {
		if base != "" && c.exists(filepath.Join(base, file)) {
			path = filepath.Join(base, file)
			break
		}
	}
	if path == "" {
		return "cites a line of a file that does not exist beside the page, in the repository or in Go's sources"
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(string(data), "\n")
	n, _ := strconv.Atoi(number)
	if n < 1 || n > len(lines) {
		return fmt.Sprintf("cites line %d, but the file has %d lines", n, len(lines))
	}
	if quote = strings.TrimSpace(quote); quote != "" && !strings.Contains(lines[n-1], quote) {
		return fmt.Sprintf("quotes %q, but line %d now says %q", quote, n, strings.TrimSpace(lines[n-1]))
	}
	return ""
}

func (c *citer) exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func trimSlash(s string) string { return strings.TrimSuffix(s, "/") }
