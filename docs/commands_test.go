package docs

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDocCommandsExist reads every command shown in a fenced block of the
// Markdown files and checks that it can run as written: a `go run ./STAGE`
// names a stage and only flags that stage accepts, a `make TARGET` names a
// target of the Makefile, and a `go test -run NAME ./DIR` names a test that
// exists there. (The commands whose output is shown are also run, by
// TestDocOutputs; running all the others would take minutes.) The exercises
// are left out: their commands use flags the students are asked to add.
func TestDocCommandsExist(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	flags := map[string]map[string]bool{} // stage folder → flags it accepts
	checked := 0
	for _, file := range markdownFiles(t, root) {
		rel, _ := filepath.Rel(root, file)
		if strings.HasPrefix(rel, filepath.Join("docs", "exercises")) {
			continue // its commands use the flags the exercises ask students to add
		}
		for _, cmd := range shownCommands(t, file) {
			var problem string
			switch {
			case strings.HasPrefix(cmd, "go run ./0"):
				problem = checkGoRun(t, root, cmd, flags)
			case strings.HasPrefix(cmd, "make "):
				problem = checkMake(cmd, string(makefile))
			case strings.HasPrefix(cmd, "go test ") && strings.Contains(cmd, "-run "):
				problem = checkGoTest(root, cmd)
			default:
				continue
			}
			checked++
			if problem != "" {
				t.Errorf("%s: `%s`: %s", rel, cmd, problem)
			}
		}
	}
	if checked == 0 {
		t.Fatal("found no commands to check")
	}
}

var commandStart = regexp.MustCompile(`^(\$ )?((GOMAXPROCS=\d+ )?(go run|go test|make) .*)`)

// shownCommands returns the commands in the fenced blocks of a file: lines
// that start with go run, go test or make (after an optional "$ "), cut at
// the first pipe, redirection or comment.
func shownCommands(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var commands []string
	inBlock := false
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inBlock = !inBlock
			continue
		}
		m := commandStart.FindStringSubmatch(strings.TrimSpace(line))
		if !inBlock || m == nil {
			continue
		}
		cmd := m[2]
		for _, cut := range []string{" |", " #", " 2>", " >", " &&", ";"} {
			cmd, _, _ = strings.Cut(cmd, cut)
		}
		commands = append(commands, strings.TrimSpace(strings.TrimPrefix(cmd, m[3])))
	}
	return commands
}

// checkGoRun checks the stage folder and each flag of a `go run ./STAGE …`.
func checkGoRun(t *testing.T, root, cmd string, flags map[string]map[string]bool) string {
	fields := strings.Fields(cmd)
	stage := strings.TrimSuffix(strings.TrimPrefix(fields[2], "./"), "/")
	if _, err := os.Stat(filepath.Join(root, stage, "main.go")); err != nil {
		return "no stage " + stage
	}
	if flags[stage] == nil {
		flags[stage] = stageFlags(t, root, stage)
	}
	for _, field := range fields[3:] {
		if !strings.HasPrefix(field, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(field, "-"), "=")
		if !flags[stage][name] {
			return stage + " has no flag -" + name
		}
	}
	return ""
}

// stageFlags asks a stage for its flags (-h lists them).
func stageFlags(t *testing.T, root, stage string) map[string]bool {
	t.Helper()
	cmd := exec.Command("go", "run", "./"+stage, "-h")
	cmd.Dir = root
	out, _ := cmd.CombinedOutput() // -h exits 0 here, but go run may say otherwise
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -(\S+)`).FindAllStringSubmatch(string(out), -1) {
		names[m[1]] = true
	}
	if len(names) == 0 {
		t.Fatalf("go run ./%s -h listed no flags:\n%s", stage, out)
	}
	return names
}

// checkMake checks that the target exists.
func checkMake(cmd, makefile string) string {
	fields := strings.Fields(cmd)
	if len(fields) < 2 || strings.Contains(fields[1], "=") {
		return ""
	}
	target := fields[1]
	if strings.HasPrefix(target, "run-") {
		target = "run-%"
	}
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(target) + `:`).MatchString(makefile) {
		return "the Makefile has no target " + fields[1]
	}
	return ""
}

// checkGoTest checks that the test named by -run exists in the package.
func checkGoTest(root, cmd string) string {
	fields := strings.Fields(cmd)
	var name, dir string
	for i, field := range fields {
		if field == "-run" && i+1 < len(fields) {
			name = strings.Trim(fields[i+1], `'"^$`)
		}
		if strings.HasPrefix(field, "./") {
			dir = strings.TrimSuffix(strings.TrimPrefix(field, "./"), "/...")
		}
	}
	if name == "" || dir == "" || strings.ContainsAny(name, "|()*.") {
		return "" // a pattern, not one name: nothing simple to check
	}
	name, _, _ = strings.Cut(name, "/")
	files, _ := filepath.Glob(filepath.Join(root, dir, "*_test.go"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		if strings.Contains(string(data), "func "+name+"(") {
			return ""
		}
	}
	return "no test " + name + " in ./" + dir
}

// TestReadmeListsEveryMakeTarget: the README's "All the commands" lists
// every target that make help lists (the targets with a "## " comment), and
// nothing else; run-% appears as run-01.
func TestReadmeListsEveryMakeTarget(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	var help []string
	for _, m := range regexp.MustCompile(`(?m)^([a-z0-9%-]+):.*## `).FindAllStringSubmatch(string(makefile), -1) {
		help = append(help, m[1])
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, found := strings.Cut(string(readme), "\n## All the commands\n")
	_, list, fenced := strings.Cut(section, "```\n")
	list, _, closed := strings.Cut(list, "```")
	if !found || !fenced || !closed {
		t.Fatal(`README.md has no "## All the commands" section with a fenced block`)
	}
	var listed []string
	for _, m := range regexp.MustCompile(`(?m)^make (\S+)`).FindAllStringSubmatch(list, -1) {
		target := m[1]
		if regexp.MustCompile(`^run-\d\d$`).MatchString(target) {
			target = "run-%"
		}
		listed = append(listed, target)
	}
	slices.Sort(help)
	slices.Sort(listed)
	if diff := cmp.Diff(help, slices.Compact(listed)); diff != "" {
		t.Errorf("make help's targets (-) and README.md's \"All the commands\" (+) differ:\n%s", diff)
	}
}
