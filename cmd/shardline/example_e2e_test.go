package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shardline/kinesis/localstack"
)

// TestMetricsHealthOfExample runs the consumer example (examples/consumer) as a process and
// reads its /metrics and health endpoints with the binary, as an operator would.
func TestMetricsHealthOfExample(t *testing.T) {
	s := needStack(t)
	kin := localstack.Kinesis(t)
	stream := localstack.NewStream(t, kin, 1)
	rdb := localstack.Redis(t)
	prefix := localstack.RedisPrefix(t, rdb)
	example := filepath.Join(t.TempDir(), "consumer")
	build := exec.Command("go", "build", "-o", example, "../../examples/consumer")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build examples/consumer: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()

	cli(t, strings.Repeat("hello\n", 50), "--local", "put", stream).ok(t)
	cmd := exec.Command(example, "-stream", stream, "-group", "ops", "-store", "redis", "-redis-url", s.RedisURL,
		"-redis-prefix", strings.TrimSuffix(prefix, ":"), "-lease", "2s", "-metrics-addr", addr)
	cmd.Env = stackEnv(t)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	base := "http://" + addr
	var sum metricsSummary
	eventually(t, 30*time.Second, "the example's metrics to count 50 records", func() bool {
		r := cli(t, "", "metrics", base, "--json")
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &sum) != nil || len(sum.Streams) != 1 || len(sum.Streams[0].Shards) != 1 {
			return false
		}
		v, ok := sum.Streams[0].Shards[0].Metrics["consumer_user_records_total"]
		return ok && *v.Value == 50
	})
	if sum.Streams[0].Stream != stream {
		t.Fatalf("metrics stream %q, want %s", sum.Streams[0].Stream, stream)
	}
	eventually(t, 15*time.Second, "the example to be ready", func() bool { return cli(t, "", "health", base).code == 0 })
	out := cli(t, "", "health", base).ok(t)
	if !strings.Contains(out, "/healthz: HTTP 200") || !strings.Contains(out, "/readyz: HTTP 200") || !strings.Contains(out, "consumer "+stream) {
		t.Fatalf("health of the example:\n%s\nexample logs:\n%s", out, logs.String())
	}
}
