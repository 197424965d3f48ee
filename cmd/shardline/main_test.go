package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shardline/kinesis/localstack"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// binary is the shardline binary the end-to-end tests run, built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "shardline-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "shardline")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build shardline:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

// cli runs the binary as a user would, with stdin and the stack's endpoints in its
// environment, bounded by a minute.
func cli(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return cliEnv(t, nil, stdin, args...)
}

func cliEnv(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(stackEnv(t), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run shardline %s: %v", strings.Join(args, " "), err)
	}
	return result{out.String(), errb.String(), code}
}

// stackEnv is the environment with the local stack's endpoints, as localstack/up exports
// them; tests that need no stack get the plain environment.
var stackEnvVars []string

func stackEnv(t *testing.T) []string {
	if stackEnvVars != nil {
		return stackEnvVars
	}
	return os.Environ()
}

// needStack ends the test unless the local stack is up, and makes cli pass its endpoints.
func needStack(t *testing.T) *localstack.Stack {
	t.Helper()
	s := localstack.Require(t)
	env := os.Environ()
	if s.Kinesis != "" {
		env = append(env, "AWS_ENDPOINT_URL_KINESIS="+s.Kinesis)
	}
	if s.DynamoDB != "" {
		env = append(env, "AWS_ENDPOINT_URL_DYNAMODB="+s.DynamoDB)
	}
	if os.Getenv("AWS_REGION") == "" {
		env = append(env, "AWS_REGION=us-east-1")
	}
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		env = append(env, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test")
	}
	stackEnvVars = env
	return s
}

// ok fails the test unless r exited 0, and returns its stdout.
func (r result) ok(t *testing.T) string {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d, stderr:\n%s\nstdout:\n%s", r.code, r.stderr, r.stdout)
	}
	return r.stdout
}

// normalisers make human output comparable across runs: sequence numbers, times, durations,
// generated names.
var normalisers = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\d{40,}/\d+`), "<seq>/<sub>"},
	{regexp.MustCompile(`\d{40,}`), "<seq>"},
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`), "<time>"},
	{regexp.MustCompile(`\b\d+(\.\d+)?(ms|s)\b|\b\d+m\d\ds\b`), "<dur>"},
	{regexp.MustCompile(`shardline-Test[A-Za-z0-9_.-]*-[0-9a-f]{8}`), "<stream>"},
	{regexp.MustCompile(`shardline-test:[^ \n]*:`), "<prefix>"},
	{regexp.MustCompile(`prefix=[^) \n]*`), "prefix=<prefix>"},
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "127.0.0.1:<port>"},
	{regexp.MustCompile(`arn:aws:kinesis:[^ \n]*`), "<arn>"},
	{regexp.MustCompile(`[0-9]+ records/s`), "<n> records/s"},
}

func normalise(s string) string {
	for _, n := range normalisers {
		s = n.re.ReplaceAllString(s, n.with)
	}
	// Column widths follow the lengths of what was replaced: squeeze runs of spaces.
	return regexp.MustCompile(` {2,}`).ReplaceAllString(s, "  ")
}

// golden compares got (normalised) with testdata/name.golden, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	got = normalise(got)
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}
