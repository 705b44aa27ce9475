package emailconn

import (
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
// is the public test server).
func TestIssue13_5_ExamplesImportNothingInternal(t *testing.T) {
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		if f.Name.Name != "emailconn_test" {
			continue // internal tests, not on the documentation page
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
		t.Fatal("no external test files found")
	}
}
