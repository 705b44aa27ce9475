package emailconn_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestIssue13_5_ExamplesImportNothingInternal: every Example on the
// package's documentation page can be copied into an engine's code as it
// is, so none may import a package under internal/ (package emailconntest
// is the public test server). Black-box tests in package emailconn_test
// may use internal/smtptest; the files with Examples may not.
func TestIssue13_5_ExamplesImportNothingInternal(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		if !hasExample(f) {
			continue // tests, not on the documentation page
		}
		if f.Name.Name != "emailconn_test" {
			t.Errorf("%s holds Examples in package %s: an Example must use only the public API", name, f.Name.Name)
		}
		checked++
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.Contains(path, "/internal/") || strings.HasSuffix(path, "/internal") {
				t.Errorf("%s imports %s: an Example must only use what an engine can import", name, path)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no files with Examples found")
	}
}

// hasExample reports whether f declares an Example function.
func hasExample(f *ast.File) bool {
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && strings.HasPrefix(fd.Name.Name, "Example") {
			return true
		}
	}
	return false
}
