package docs

// The course has two editions, English and Simplified Chinese (中文版), and
// they must not drift apart: every English page has a Chinese twin of the
// same shape. TestChineseEditionKeepsStep checks what can be checked without
// reading the words: the twin exists, each page links to the other, and
// both have the same headings (by level, in order), the same output blocks
// (the same commands, in order) and the same commands shown to the reader.

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestChineseEditionKeepsStep(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, page := range markdownFiles(t, root) {
		rel, _ := filepath.Rel(root, page)
		if isChinese(rel) {
			if english := englishOf(rel); !exists(filepath.Join(root, english)) {
				t.Errorf("%s is the twin of %s, which does not exist: remove it, or write the English page", rel, english)
			}
			continue
		}
		twin := twinOf(rel)
		if !exists(filepath.Join(root, twin)) {
			t.Errorf("%s has no Chinese twin: write %s (the same headings, output blocks and commands, in Chinese)", rel, twin)
			continue
		}
		en, zh := readPage(t, filepath.Join(root, rel)), readPage(t, filepath.Join(root, twin))
		if want := "[中文](" + relLink(rel, twin) + ") · English"; firstLine(en) != want {
			t.Errorf("%s: its first line must link to its twin: %s", rel, want)
		}
		if want := "[English](" + relLink(twin, rel) + ") · 中文"; firstLine(zh) != want {
			t.Errorf("%s: its first line must link back: %s", twin, want)
		}
		for _, part := range []struct {
			what string
			get  func(string) []string
		}{
			{"headings (their levels, in order)", headingLevels},
			{"output blocks (their commands, in order)", outputCommands},
		} {
			if diff := cmp.Diff(part.get(en), part.get(zh)); diff != "" {
				t.Errorf("%s and %s differ in their %s: update %s to match (-English +中文):\n%s", rel, twin, part.what, twin, diff)
			}
		}
		// The commands the reader is shown (commands_test.go finds them).
		if diff := cmp.Diff(shownCommands(t, filepath.Join(root, rel)), shownCommands(t, filepath.Join(root, twin))); diff != "" {
			t.Errorf("%s and %s differ in the commands they show: update %s to match (-English +中文):\n%s", rel, twin, twin, diff)
		}
	}
}

// twinOf names the Chinese twin of an English page: README.zh-CN.md beside
// every README.md, docs/zh-CN/NAME.md for a chapter docs/NAME.md.
func twinOf(rel string) string {
	dir, name := filepath.Split(rel)
	if name == "README.md" {
		return filepath.Join(dir, "README.zh-CN.md")
	}
	return filepath.Join(dir, "zh-CN", name)
}

// englishOf is twinOf the other way round.
func englishOf(rel string) string {
	if strings.HasSuffix(rel, "README.zh-CN.md") {
		return strings.TrimSuffix(rel, "README.zh-CN.md") + "README.md"
	}
	return filepath.Join(filepath.Dir(filepath.Dir(rel)), filepath.Base(rel))
}

func isChinese(rel string) bool {
	return strings.HasSuffix(rel, ".zh-CN.md") || strings.Contains(filepath.ToSlash(rel), "/zh-CN/")
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// relLink is the relative link from page from to page to.
func relLink(from, to string) string {
	link, _ := filepath.Rel(filepath.Dir(from), to)
	return filepath.ToSlash(link)
}

func readPage(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func firstLine(page string) string {
	line, _, _ := strings.Cut(page, "\n")
	return strings.TrimSpace(line)
}

// walkPage calls outside for every line of a page that is not inside a
// fenced code block, and inside for every fenced block's lines, with the
// line before the fence (an output marker, or not).
func walkPage(page string, outside func(line string), block func(before string, lines []string)) {
	lines := strings.Split(page, "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "```") {
			outside(lines[i])
			continue
		}
		before := ""
		if i > 0 {
			before = strings.TrimSpace(lines[i-1])
		}
		j := i + 1
		for j < len(lines) && !strings.HasPrefix(lines[j], "```") {
			j++
		}
		block(before, lines[i+1:min(j, len(lines))])
		i = j
	}
}

var heading = regexp.MustCompile(`^(#{1,6}) `)

// headingLevels lists the page's headings by level: "##", "###", …
func headingLevels(page string) []string {
	var levels []string
	walkPage(page, func(line string) {
		if m := heading.FindStringSubmatch(line); m != nil {
			levels = append(levels, m[1])
		}
	}, func(string, []string) {})
	return levels
}

// outputCommands lists the commands of the page's output blocks.
func outputCommands(page string) []string {
	var commands []string
	walkPage(page, func(line string) {
		if m := markerLine.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			commands = append(commands, m[2])
		}
	}, func(string, []string) {})
	return commands
}
