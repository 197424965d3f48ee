package conventions_test

import (
	"encoding/json"
	"go/ast"
	"go/doc"
	"go/doc/comment"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// listed is what go list says of one package.
type listed struct {
	ImportPath, Dir, Name, Doc string
	GoFiles, TestGoFiles       []string
	XTestGoFiles               []string
}

// publicPackages lists the module's importable packages: not internal, not commands, not the
// examples.
func publicPackages(t *testing.T) []listed {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "github.com/shardline/kinesis/...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listed
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p listed
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.Name == "main" || strings.Contains(p.ImportPath, "/internal/") ||
			strings.Contains(p.ImportPath+"/", "/examples/") || len(p.GoFiles) == 0 {
			continue
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 14 {
		t.Fatalf("found %d public packages; the listing is wrong", len(pkgs))
	}
	return pkgs
}

// testSupport are the packages for tests rather than programs: their documentation opens with
// a snippet too, but a runnable Example would need a *testing.T or a running stack.
var testSupport = map[string]bool{
	"github.com/shardline/kinesis/localstack":                true,
	"github.com/shardline/kinesis/localstack/kinesisproxy":   true,
	"github.com/shardline/kinesis/checkpoint/checkpointtest": true,
	"github.com/shardline/kinesis/observability":             true, // dashboards and rules: no Go API
}

// Guards against package documentation that renders badly on pkg.go.dev (issue 15): `go doc`
// of every public package starts with a sentence naming the package and, before any section
// heading and within its first few blocks, a code snippet; every package that applications
// import has a runnable Example (which the compiler keeps in step with the API).
func TestPackageDocs(t *testing.T) {
	for _, p := range publicPackages(t) {
		fset := token.NewFileSet()
		var files []*ast.File
		examples := 0
		for _, name := range append(append(append([]string(nil), p.GoFiles...), p.TestGoFiles...), p.XTestGoFiles...) {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(name, "_test.go") {
				for _, d := range f.Decls {
					if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Example") {
						examples++
					}
				}
				continue
			}
			files = append(files, f)
		}
		dp, err := doc.NewFromFiles(fset, files, p.ImportPath)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(dp.Doc, "Package "+p.Name+" ") {
			t.Errorf("%s: documentation does not start with %q", p.ImportPath, "Package "+p.Name)
		}
		if !opensWithSnippet(dp.Parser().Parse(dp.Doc)) {
			t.Errorf("%s: documentation does not open with a code snippet", p.ImportPath)
		}
		if examples == 0 && !testSupport[p.ImportPath] {
			t.Errorf("%s: no Example function", p.ImportPath)
		}
	}
}

// opensWithSnippet reports whether a code block comes among the first four blocks, before
// any heading.
func opensWithSnippet(d *comment.Doc) bool {
	for i, b := range d.Content {
		switch b.(type) {
		case *comment.Code:
			return true
		case *comment.Heading:
			return false
		}
		if i == 3 {
			break
		}
	}
	return false
}

// Guards against the check above passing for anything: a snippet after a heading, or after
// a long preamble, does not count.
func TestOpensWithSnippet(t *testing.T) {
	var p comment.Parser
	for text, want := range map[string]bool{
		"Package x does y.\n\n\tx.New()\n":                         true,
		"Package x does y.\n\nMore.\n\n\tx.New()\n":                true,
		"Package x does y.\n\n# Usage\n\n\tx.New()\n":              false,
		"Package x does y.\n\nA.\n\nB.\n\nC.\n\nD.\n\n\tx.New()\n": false,
		"Package x does y.\n":                                      false,
	} {
		if got := opensWithSnippet(p.Parse(text)); got != want {
			t.Errorf("opensWithSnippet(%q) = %v, want %v", text, got, want)
		}
	}
}
