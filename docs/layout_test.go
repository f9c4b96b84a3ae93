package docs

// The checks that the stages keep the shape the course promises: each
// stage's scaffold is a library that its lesson calls, never the other way.

import (
	"go/ast"
	"go/parser"
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
