package docs

// Stage 05 has a twin of main.go for macOS and FreeBSD, main_kqueue.go, and a
// stand-in for other systems, main_other.go. CI runs on Linux and only builds
// them, so these tests keep them from drifting from the lesson. They live here,
// with the other checks that the repository agrees with itself, and not in the
// stage: a student who changes main.go for an exercise need not change the
// twin.

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestKqueueTwinKeepsTheSharedCode: main_kqueue.go, built on macOS and
// FreeBSD instead of main.go, repeats main.go on purpose, so that each reads
// top to bottom on its own system. Every function of the same name in both
// must stay the same, statement for statement (comments aside), except the
// ones that talk to epoll or kqueue; the same goes for the two test files.
// So the twin, which CI builds but cannot run, cannot drift from the lesson.
func TestKqueueTwinKeepsTheSharedCode(t *testing.T) {
	talksToTheKernelsQueue := map[string]bool{
		"addStageFlags": true, "newEventLoop": true, "*eventLoop.Close": true,
		"*eventLoop.waitUntilReady": true, "*eventLoop.watch": true, "*eventLoop.forget": true,
		"TestNoSelectLimit": true, "TestFarFewerCallsThanSpinning": true, "TestWaitTimeoutCostsWakeUps": true,
		"TestEdgeTriggeredDeliversEverything": true, "TestEdgeTriggeredWithoutDrainingLosesTheRest": true,
	}
	for _, files := range [][2]string{{"main.go", "main_kqueue.go"}, {"main_test.go", "main_kqueue_test.go"}} {
		epoll, kqueue := functions(t, stage05(files[0])), functions(t, stage05(files[1]))
		same := 0
		for name, code := range epoll {
			twin, inBoth := kqueue[name]
			if !inBoth || talksToTheKernelsQueue[name] {
				continue
			}
			if code != twin {
				t.Errorf("%s differs between %s and %s: make them the same again, or explain why not", name, files[0], files[1])
			}
			same++
		}
		if same < 3 {
			t.Errorf("%s and %s share only %d functions: is this test still looking at the right files?", files[0], files[1], same)
		}
	}
}

// TestEveryBuildHasTheSameFlags: main.go, main_kqueue.go and main_other.go
// each have their own addStageFlags, and a flag added to one must be added to
// the others, so that scripts run the same everywhere.
func TestEveryBuildHasTheSameFlags(t *testing.T) {
	want := flagNames(t, stage05("main.go"))
	if len(want) == 0 {
		t.Fatal("found no flags in main.go's addStageFlags")
	}
	for _, other := range []string{"main_kqueue.go", "main_other.go"} {
		if diff := cmp.Diff(want, flagNames(t, stage05(other))); diff != "" {
			t.Errorf("the flags of %s differ from main.go's (-main.go +%s):\n%s", other, other, diff)
		}
	}
}

// flagNames lists the flags that addStageFlags defines in a Go file: the
// first string in each call it makes, such as fs.Bool("edge", …) or
// fs.DurationVar(&waitTimeout, "timeout", …).
func flagNames(t *testing.T, path string) []string {
	t.Helper()
	file, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, decl := range file.Decls {
		if fn, ok := decl.(*ast.FuncDecl); ok && fn.Name.Name == "addStageFlags" {
			ast.Inspect(fn.Body, func(node ast.Node) bool {
				if call, ok := node.(*ast.CallExpr); ok {
					for _, arg := range call.Args {
						if text, ok := arg.(*ast.BasicLit); ok && text.Kind == token.STRING {
							names = append(names, text.Value)
							break
						}
					}
				}
				return true
			})
		}
	}
	return names
}

// functions parses a Go file, without its comments, and returns the code of
// each function by name ("start", "*conn.step").
func functions(t *testing.T, path string) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, path, nil, 0) // mode 0: comments are dropped
	if err != nil {
		t.Fatal(err)
	}
	source := func(node any) string {
		var out bytes.Buffer
		if err := printer.Fprint(&out, fset, node); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	code := map[string]string{}
	for _, decl := range file.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok {
			continue
		}
		name := fn.Name.Name
		if fn.Recv != nil {
			name = source(fn.Recv.List[0].Type) + "." + name
		}
		code[name] = source(fn)
	}
	return code
}

// stage05 is the path of one of stage 05's files, seen from docs/.
func stage05(name string) string {
	return filepath.Join("..", "05-epoll", name)
}
