package conventions_test

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// root is the module's root directory, two levels above this package.
var root = filepath.Join("..", "..")

func readRoot(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// section returns the text of the markdown section headed heading, up to the next heading of
// the same or a higher level.
func section(text, heading string) string {
	i := strings.Index(text, "\n"+heading+"\n")
	if i < 0 {
		return ""
	}
	rest := text[i+len(heading)+2:]
	level := strings.Count(strings.Fields(heading)[0], "#")
	for _, h := range regexp.MustCompile(`(?m)^#+ `).FindAllStringIndex(rest, -1) {
		if h[1]-h[0]-1 <= level {
			return rest[:h[0]]
		}
	}
	return rest
}

// Guards against shipping without a license pkg.go.dev recognises (it shows no documentation
// for a module without one): the unmodified Apache-2.0 text.
func TestLicense(t *testing.T) {
	text := strings.Join(strings.Fields(readRoot(t, "LICENSE")), " ")
	for _, want := range []string{
		"Apache License Version 2.0, January 2004 http://www.apache.org/licenses/",
		"TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
		"END OF TERMS AND CONDITIONS",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("LICENSE lacks %q", want)
		}
	}
}

// Guards against a deprecation the changelog does not announce: every exported function
// whose documentation says "Deprecated:" is named in the changelog's Deprecated section,
// with its replacement.
func TestDeprecationsInChangelog(t *testing.T) {
	deprecated := section(readRoot(t, "CHANGELOG.md"), "### Deprecated")
	if deprecated == "" {
		t.Fatal("CHANGELOG.md has no Deprecated section")
	}
	found := 0
	for _, p := range publicPackages(t) {
		fset := token.NewFileSet()
		var files []*ast.File
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		dp, err := doc.NewFromFiles(fset, files, p.ImportPath)
		if err != nil {
			t.Fatal(err)
		}
		funcs := dp.Funcs
		for _, typ := range dp.Types {
			funcs = append(funcs, typ.Funcs...)
		}
		for _, fn := range funcs {
			if !strings.Contains(fn.Doc, "Deprecated:") {
				continue
			}
			found++
			if !strings.Contains(deprecated, "."+fn.Name+"`") {
				t.Errorf("%s.%s is deprecated but not listed in CHANGELOG.md's Deprecated section", p.ImportPath, fn.Name)
			}
		}
	}
	if found == 0 {
		t.Error("no deprecated function found: the scan is broken (WithRequestTimeout is one)")
	}
}

// Guards against the README's versioning section and go.mod disagreeing on the Go release:
// the section names go.mod's go line.
func TestGoVersionDocumented(t *testing.T) {
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(readRoot(t, "go.mod"))
	if m == nil {
		t.Fatal("no go line in go.mod")
	}
	versions := strings.Join(strings.Fields(section(readRoot(t, "README.md"), "## Versions and API conventions")), " ")
	if !strings.Contains(versions, "says "+m[1]) {
		t.Errorf("README's versioning section does not name go.mod's go line %s", m[1])
	}
	if !strings.Contains(readRoot(t, "CHANGELOG.md"), "## [Unreleased]") {
		t.Error("CHANGELOG.md has no Unreleased section")
	}
}

// Guards against section reading more or less than its section.
func TestSection(t *testing.T) {
	text := "# T\n\n## A\n\na\n\n### A1\n\na1\n\n## B\n\nb\n"
	if got := section(text, "## A"); !strings.Contains(got, "a1") || strings.Contains(got, "b\n") {
		t.Errorf("section ## A = %q", got)
	}
	if got := section(text, "### A1"); strings.TrimSpace(got) != "a1" {
		t.Errorf("section ### A1 = %q", got)
	}
	if got := section(text, "## C"); got != "" {
		t.Errorf("missing section = %q", got)
	}
}
