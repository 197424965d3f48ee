package shardotel_test

import (
	"os/exec"
	"strings"
	"testing"
)

// deps lists the packages pkgs depend on, themselves included, as the go command sees them
// when building (test files excluded).
func deps(t *testing.T, pkgs ...string) []string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("the go command is not on PATH: %v", err)
	}
	args := append([]string{"list", "-deps", "-f", "{{.ImportPath}}"}, pkgs...)
	out, err := exec.Command(goCmd, args...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
		}
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	return strings.Fields(string(out))
}

// TestCoreDoesNotImportOpenTelemetry guards the layout rule that only this package brings
// OpenTelemetry in: a user of the producer or consumer alone must not link it. (The
// localstack test helper may, through testcontainers; it is not core.)
func TestCoreDoesNotImportOpenTelemetry(t *testing.T) {
	const mod = "github.com/shardline/kinesis/"
	core := []string{mod + "producer", mod + "consumer", mod + "checkpoint", mod + "aggregation", mod + "metrics"}
	all := deps(t, core...)
	if len(all) < len(core) {
		t.Fatalf("go list found %d packages for the %d core ones", len(all), len(core))
	}
	for _, p := range all {
		if strings.HasPrefix(p, "go.opentelemetry.io/") {
			t.Errorf("a core package depends on %s", p)
		}
	}
}

// TestOnlyTheAPI guards against this package linking the OpenTelemetry SDK into user
// programs, or the otel package that holds the global MeterProvider: it gets its provider
// from the caller and cannot reach the global one.
func TestOnlyTheAPI(t *testing.T) {
	var sawAPI bool
	for _, p := range deps(t, "github.com/shardline/kinesis/metrics/otel") {
		switch {
		case p == "go.opentelemetry.io/otel/metric":
			sawAPI = true
		case p == "go.opentelemetry.io/otel",
			strings.HasPrefix(p, "go.opentelemetry.io/otel/sdk"),
			strings.HasPrefix(p, "go.opentelemetry.io/otel/internal/global"):
			t.Errorf("depends on %s", p)
		}
	}
	if !sawAPI {
		t.Error("go.opentelemetry.io/otel/metric missing from the dependencies: is the list right?")
	}
}
