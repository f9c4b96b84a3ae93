package docs

// The checks that the stages keep the shape the course promises: each
// stage's scaffold is a library that its lesson calls, never the other way.

import (
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestTheScaffoldNamesNothingOfTheLesson: the scaffold files of a stage
// (scaffold*.go, not the tests) use no name that the stage's own files
// declare. The lesson calls the scaffold; the scaffold never calls the
// lesson, so that it reads, and changes, on its own.
func TestTheScaffoldNamesNothingOfTheLesson(t *testing.T) {
	stages, err := filepath.Glob("../[0-9][0-9]-*")
	if err != nil || len(stages) == 0 {
		t.Fatalf("no stages found: %v", err)
	}
	for _, stage := range stages {
		lesson, scaffold := map[string]bool{}, map[string][]string{}
		files, _ := filepath.Glob(filepath.Join(stage, "*.go"))
		fset := token.NewFileSet()
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, file, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(filepath.Base(file), "scaffold") {
				for _, id := range namesFromElsewhere(f) {
					scaffold[id.Name] = append(scaffold[id.Name], fset.Position(id.Pos()).String())
				}
				continue
			}
			for _, decl := range f.Decls {
				for _, name := range declared(decl) {
					lesson[name] = true
				}
			}
		}
		var named []string
		for name, where := range scaffold {
			if lesson[name] {
				named = append(named, name+" (at "+where[0]+")")
			}
		}
		sort.Strings(named)
		if len(named) > 0 {
			t.Errorf("%s: the scaffold names what the lesson declares: %s", filepath.Base(stage), strings.Join(named, ", "))
		}
	}
}

// namesFromElsewhere lists the identifiers of f that name something f does
// not declare: the parser resolves the names declared in the file itself
// (Obj is set), so what is left is declared in another file of the package,
// built in, or imported. Field and method names after a dot, and the keys of
// composite literals, are not names of the package.
func namesFromElsewhere(f *ast.File) []*ast.Ident {
	var ids []*ast.Ident
	var visit func(n ast.Node) bool
	visit = func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			ast.Inspect(n.X, visit)
			return false
		case *ast.KeyValueExpr:
			if _, isName := n.Key.(*ast.Ident); !isName {
				ast.Inspect(n.Key, visit)
			}
			ast.Inspect(n.Value, visit)
			return false
		case *ast.Ident:
			if n.Obj == nil {
				ids = append(ids, n)
			}
		}
		return true
	}
	for _, decl := range f.Decls {
		ast.Inspect(decl, visit)
	}
	return ids
}

// declared lists the top-level names a declaration makes. Methods are left
// out: a method's name is only reached through its type, which is checked.
func declared(decl ast.Decl) []string {
	var names []string
	switch d := decl.(type) {
	case *ast.FuncDecl:
		if d.Recv == nil && d.Name.Name != "main" {
			names = append(names, d.Name.Name)
		}
	case *ast.GenDecl:
		for _, spec := range d.Specs {
			switch s := spec.(type) {
			case *ast.TypeSpec:
				names = append(names, s.Name.Name)
			case *ast.ValueSpec:
				for _, n := range s.Names {
					names = append(names, n.Name)
				}
			}
		}
	}
	return names
}

// TestThreadsAndProcessesRunStage01sCode: stage 06's thread and process
// models make stage 01's blocking calls, with a copy of stage 01's functions
// under names of their own (models.go). The copies must stay what stage 01
// does: the same statements, once the names are mapped (comments aside).
func TestThreadsAndProcessesRunStage01sCode(t *testing.T) {
	renamed := map[string]string{ // stage 01's name → models.go's
		"fetch":           "fetchBlocking",
		"connect":         "connectBlocking",
		"waitConnected":   "waitConnected",
		"setTimeout":      "setTimeout",
		"sendRequest":     "sendBlocking",
		"receiveResponse": "receiveBlocking",
		"closeSocket":     "closeSocket",
	}
	original, copies := functions(t, "../01-blocking/main.go"), functions(t, "../06-goroutines-compare/models.go")
	for name01, name06 := range renamed {
		f01, f06 := original[name01], copies[name06]
		if f01 == nil || f06 == nil {
			t.Errorf("%s (01-blocking/main.go) or %s (06-goroutines-compare/models.go) is missing", name01, name06)
			continue
		}
		ast.Inspect(f01, func(n ast.Node) bool { // stage 01's names, as models.go calls them
			if id, ok := n.(*ast.Ident); ok && renamed[id.Name] != "" {
				id.Name = renamed[id.Name]
			}
			return true
		})
		if got, want := source(t, f06.Body), source(t, f01.Body); got != want {
			t.Errorf("models.go's %s is not stage 01's %s any more: make them the same again\n--- 01-blocking:\n%s\n--- 06-goroutines-compare:\n%s", name06, name01, want, got)
		}
	}
}

// functions parses a file, comments left out, and returns its functions by name.
func functions(t *testing.T, file string) map[string]*ast.FuncDecl {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	funcs := map[string]*ast.FuncDecl{}
	for _, decl := range f.Decls {
		if fn, ok := decl.(*ast.FuncDecl); ok && fn.Recv == nil {
			funcs[fn.Name.Name] = fn
		}
	}
	return funcs
}

// source prints a node as gofmt would, without comments.
func source(t *testing.T, node ast.Node) string {
	t.Helper()
	var b strings.Builder
	if err := printer.Fprint(&b, token.NewFileSet(), node); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
