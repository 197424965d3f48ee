package examples_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Guards against the examples teaching a test helper as production code (issue 15): a
// program copied from examples/ must not link package testing, testcontainers-go or
// Shardline's localstack test helpers (which bring both, and the Docker client with them).
// Programs load their AWS configuration with config.LoadDefaultConfig and create streams
// with package streams.
func TestExamplesImportNoTestHelpers(t *testing.T) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	cmd := exec.Command("go", "list", "-f", `{{if eq .Name "main"}}{{.ImportPath}} {{join .Deps " "}}{{end}}`, "./examples/...")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(out)))
	list, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./examples/...: %v", err)
	}
	programs := 0
	for line := range strings.Lines(string(list)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		programs++
		prog, deps := fields[0], fields[1:]
		for _, d := range deps {
			if forbiddenInPrograms(d) {
				t.Errorf("%s depends on %s: examples must copy cleanly into production code", prog, d)
			}
		}
		t.Logf("%s: %d packages", prog, len(deps))
	}
	if programs < 4 {
		t.Errorf("found %d example programs, want at least 4 (consumer, demo, orders, producer): the listing is wrong", programs)
	}
}

func forbiddenInPrograms(pkg string) bool {
	return pkg == "testing" || strings.HasPrefix(pkg, "testing/") ||
		pkg == "github.com/shardline/kinesis/localstack" || strings.HasPrefix(pkg, "github.com/shardline/kinesis/localstack/") ||
		strings.HasPrefix(pkg, "github.com/testcontainers/")
}

// Guards against the check above passing because it cannot see anything: the test helper
// itself must count as forbidden, and the production packages must not.
func TestForbiddenInPrograms(t *testing.T) {
	for pkg, want := range map[string]bool{
		"testing":          true,
		"testing/synctest": true,
		"github.com/shardline/kinesis/localstack":              true,
		"github.com/shardline/kinesis/localstack/kinesisproxy": true,
		"github.com/testcontainers/testcontainers-go":          true,
		"github.com/shardline/kinesis/streams":                 false,
		"github.com/shardline/kinesis/producer":                false,
		"github.com/aws/aws-sdk-go-v2/config":                  false,
		"github.com/shardline/kinesis/localstackish":           false,
	} {
		if got := forbiddenInPrograms(pkg); got != want {
			t.Errorf("forbiddenInPrograms(%q) = %v, want %v", pkg, got, want)
		}
	}
}
