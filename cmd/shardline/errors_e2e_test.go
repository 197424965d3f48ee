package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shardline/kinesis/localstack"
)

// TestUsageErrors: every malformed call exits 2 with a one-line message that says what is
// wrong, before any call to AWS or a store (none of these needs the stack).
func TestUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"tail", "s", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"describe"}, "missing STREAM"},
		{[]string{"describe", "a", "b"}, `unexpected argument "b"`},
		{[]string{"tail", "s", "--at", "yesterday-ish"}, `bad timestamp "yesterday-ish"`},
		{[]string{"tail", "s", "--at", "-5m", "--from", "latest"}, "give one of --from, --at, --after and --group"},
		{[]string{"tail", "s", "--from", "middle"}, "--from must be trim_horizon or latest"},
		{[]string{"tail", "s", "--after", "123"}, "--after SEQUENCE needs --shard"},
		{[]string{"tail", "s", "--group", "g"}, "--group needs --store"},
		{[]string{"tail", "s", "-n", "-1"}, "-n must not be negative"},
		{[]string{"group", "status", "s", "--store", "redis://127.0.0.1:6379/0"}, "--group is required"},
		{[]string{"group", "status", "s", "--group", "g"}, "--store is required"},
		{[]string{"group", "status", "s", "--group", "g", "--store", "memory://"}, "a memory store lives inside one process"},
		{[]string{"group", "status", "s", "--group", "g", "--store", "postgres://x"}, `unknown scheme "postgres"`},
		{[]string{"group", "status", "s", "--group", "g", "--store", "dynamodb://"}, "want dynamodb://TABLE"},
		{[]string{"group", "status", "s", "--group", "g", "--store", "redis://h:1/0?prefix=a{b}"}, "prefix must be non-empty"},
		{[]string{"group", "seek", "s", "--group", "g", "--store", "redis://127.0.0.1:6379/0"}, "--to is required"},
		{[]string{"group", "seek", "s", "--group", "g", "--store", "redis://127.0.0.1:6379/0", "--to", "soon"}, `bad timestamp "soon"`},
		{[]string{"group", "frob"}, `unknown command "frob"`},
		{[]string{"reshard", "s"}, "exactly one of --split SHARD, --merge SHARD SHARD or --shards N"},
		{[]string{"reshard", "s", "--split", "a", "--shards", "2"}, "exactly one of"},
		{[]string{"create", "s", "--shards", "0"}, "--shards must be at least 1"},
		{[]string{"put"}, "missing STREAM"},
		{[]string{"put", "s", "-k", "a", "--key-field", "b"}, "give -k or --key-field, not both"},
		{[]string{"put", "s", "/no/such/file"}, "no such file"},
		{[]string{"metrics", "not a url"}, "is not a URL"},
		{[]string{"health", "ftp://x/"}, "is not an http(s) URL"},
		// Destructive commands against a remote endpoint ask for --yes and call nothing.
		{[]string{"delete", "s", "--endpoint", "https://kinesis.eu-west-1.amazonaws.com", "--region", "eu-west-1"}, "refusing to delete stream s on https://kinesis.eu-west-1.amazonaws.com without --yes"},
		{[]string{"reshard", "s", "--shards", "2", "--endpoint", "https://kinesis.eu-west-1.amazonaws.com", "--region", "eu-west-1"}, "refusing to reshard stream s"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := cli(t, "", c.args...)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want 2; stderr %q", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, c.want) || !strings.HasPrefix(r.stderr, "shardline: ") || strings.Count(r.stderr, "\n") != 1 {
				t.Fatalf("stderr %q: want one line \"shardline: ...%s...\"", r.stderr, c.want)
			}
		})
	}
}

// TestFailures: calls that are well formed but cannot succeed exit 1 with the cause.
func TestFailures(t *testing.T) {
	s := needStack(t)
	client := localstack.Kinesis(t)
	stream := localstack.NewStream(t, client, 1)
	big := filepath.Join(t.TempDir(), "big.txt")
	if err := os.WriteFile(big, []byte("small\n"+strings.Repeat("x", 1<<20+1)+"\nsmall too\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		stdin string
		args  []string
		want  []string // substrings of stderr
	}{
		{"missing stream", "", []string{"--local", "describe", "no-such-stream-x"}, []string{"describe no-such-stream-x: not found"}},
		{"put to a missing stream", "a\n", []string{"--local", "put", "no-such-stream-x"}, []string{"not found"}},
		{"tail a missing stream", "", []string{"--local", "tail", "no-such-stream-x"}, []string{"not found"}},
		{"tail a missing shard", "", []string{"--local", "tail", stream, "--shard", "shardId-000000000009"}, []string{"no shard shardId-000000000009"}},
		{"unreachable Kinesis", "", []string{"--endpoint", "http://127.0.0.1:1", "streams"}, []string{"connection refused"}},
		{"unreachable store", "", []string{"--local", "group", "status", stream, "--group", "g", "--store", "redis://127.0.0.1:1/0"}, []string{"store redis://127.0.0.1:1/0 is unreachable", "connection refused"}},
		{"missing DynamoDB table", "", []string{"--local", "group", "status", stream, "--group", "g", "--store", "dynamodb://no-such-table-x"}, []string{"dynamodb://no-such-table-x", "table not found"}},
		{"record too large", "", []string{"--local", "put", stream, big}, []string{big + ":2: producer: record too large", "put: 1 of 3 records failed"}},
		{"not JSON under jsonl", "{\"a\":1}\nnope\n", []string{"--local", "put", stream, "--format", "jsonl"}, []string{"stdin:2: not a JSON value"}},
		{"missing key field", "{\"a\":1}\n{\"user\":\"x\"}\n", []string{"--local", "put", stream, "--key-field", "user"}, []string{"stdin:1: --key-field user: no such field"}},
		{"nothing listening for health", "", []string{"health", "http://127.0.0.1:1"}, []string{"FAIL"}},
		{"nothing listening for metrics", "", []string{"metrics", "http://127.0.0.1:1/metrics"}, []string{"connection refused"}},
	}
	_ = s
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := cli(t, c.stdin, c.args...)
			if r.code != exitFailure {
				t.Fatalf("exit %d, want 1; stdout %q stderr %q", r.code, r.stdout, r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr+r.stdout, w) {
					t.Fatalf("output lacks %q:\nstdout %q\nstderr %q", w, r.stdout, r.stderr)
				}
			}
		})
	}
	// The records around the failed ones were delivered.
	if got := cli(t, "", "--local", "tail", stream, "-n", "2").ok(t); !strings.Contains(got, "small\n") || !strings.Contains(got, "small too\n") {
		t.Fatalf("tail after a put with a failed record printed %q", got)
	}
}
