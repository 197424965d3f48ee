package localstack

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// Kinesalite starts a kinesalite of the test's own on a free loopback port and returns its
// endpoint URL; the process is stopped when the test ends. kinesalite takes 10-16k records/s,
// an order of magnitude more than kinesis-mock, so throughput measurements use it (it has no
// UpdateShardCount and no ChildShards). It runs from localstack/node_modules, which
// localstack/up installs; without it the test is skipped, or failed under
// SHARDLINE_REQUIRE_INTEGRATION=1.
func Kinesalite(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	here := filepath.Dir(file)
	cli := filepath.Join(here, "node_modules", "kinesalite", "cli.js")
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(cli)
	}
	if err != nil {
		msg := fmt.Sprintf("kinesalite is not installed (%v); start the stack with %s", err, startCommand)
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%s (%s=1 forbids skipping)", msg, EnvRequire)
		}
		t.Skip(msg)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	cmd := exec.Command(node, "--require", filepath.Join(here, "loopback.cjs"), cli,
		"--port", fmt.Sprint(port), "--createStreamMs", "0", "--deleteStreamMs", "0", "--updateStreamMs", "0")
	if err := cmd.Start(); err != nil {
		t.Fatalf("localstack: start kinesalite: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return "http://" + addr
		}
		select {
		case <-done:
			t.Fatalf("localstack: kinesalite exited at start")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("localstack: kinesalite on %s did not answer: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
