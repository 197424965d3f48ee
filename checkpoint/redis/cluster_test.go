package redis

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/checkpoint/checkpointtest"
	"github.com/shardline/kinesis/localstack"
)

// Guards against the hash-tag layout being assumed rather than proven: on a real three-master
// Redis Cluster every script touches keys of one (group, stream) only, which must share a
// slot, or Redis refuses them with CROSSSLOT. The whole conformance suite runs there, and the
// rows of different groups and streams must spread over the masters.
func TestConformanceCluster(t *testing.T) {
	client := localstack.RedisCluster(t)
	checkpointtest.Run(t, func(t *testing.T) checkpoint.Store {
		s, err := New(client, WithPrefix(localstack.RedisPrefix(t, client)))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return s
	})

	// Many (group, stream) pairs land on every master, each pair whole on one of them.
	ctx := testCtx(t)
	prefix := localstack.RedisPrefix(t, client)
	s, err := New(client, WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		key := checkpoint.ShardKey{Group: fmt.Sprint("g", i), Stream: "s", Shard: "shardId-000000000000"}
		if _, err := s.TakeLease(ctx, key, "w", 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Heartbeat(ctx, checkpoint.Worker{Group: key.Group, Stream: key.Stream, ID: "w", Instance: "i"}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	perMaster := map[string]int{}
	err = client.ForEachMaster(ctx, func(ctx context.Context, node *goredis.Client) error {
		keys, err := node.Keys(ctx, escapeTestGlob(prefix)+"*").Result()
		mu.Lock()
		perMaster[node.Options().Addr] = len(keys)
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	used := 0
	for _, n := range perMaster {
		if n > 0 {
			used++
		}
	}
	if used < 2 {
		t.Errorf("rows of 30 groups on %d master(s) %v: the layout does not spread over the cluster", used, perMaster)
	}
}

func escapeTestGlob(s string) string {
	return strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`).Replace(s)
}

// restartingServer is a redis-server of the test's own, with every write fsynced to its
// append-only file, that the test restarts at will.
type restartingServer struct {
	t    *testing.T
	dir  string
	port int
	cmd  *exec.Cmd
}

func startRestartingServer(t *testing.T) *restartingServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv(localstack.EnvRequire) == "1" {
			t.Fatalf("redis-server not found: %v", err)
		}
		t.Skip("redis-server not found; localstack/up installs it")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	s := &restartingServer{t: t, dir: t.TempDir(), port: port}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *restartingServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

func (s *restartingServer) start() {
	s.cmd = exec.Command("redis-server", "--bind", "127.0.0.1", "--port", fmt.Sprint(s.port),
		"--dir", s.dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no")
	s.cmd.Stdout, s.cmd.Stderr = nil, nil
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	c := goredis.NewClient(&goredis.Options{Addr: s.addr()})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s did not answer", s.addr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop shuts the server down (SIGTERM: it fsyncs its append-only file) and waits for it.
func (s *restartingServer) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

func (s *restartingServer) restart() {
	s.stop()
	s.start()
}

// restartingStore restarts its server before the third call of the store it wraps, so the
// rows the first two calls wrote must survive the restart, and the client must reconnect.
type restartingStore struct {
	checkpoint.Store
	server *restartingServer
	mu     sync.Mutex
	calls  int
}

func (s *restartingStore) call() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls++; s.calls == 3 {
		s.server.restart()
	}
}

func (s *restartingStore) GetLease(ctx context.Context, k checkpoint.ShardKey) (checkpoint.Lease, error) {
	s.call()
	return s.Store.GetLease(ctx, k)
}
func (s *restartingStore) ListLeases(ctx context.Context, g, st string) ([]checkpoint.Lease, error) {
	s.call()
	return s.Store.ListLeases(ctx, g, st)
}
func (s *restartingStore) TakeLease(ctx context.Context, k checkpoint.ShardKey, w string, n int64) (checkpoint.Lease, error) {
	s.call()
	return s.Store.TakeLease(ctx, k, w, n)
}
func (s *restartingStore) RenewLease(ctx context.Context, l checkpoint.Lease) (checkpoint.Lease, error) {
	s.call()
	return s.Store.RenewLease(ctx, l)
}
func (s *restartingStore) Checkpoint(ctx context.Context, l checkpoint.Lease, p checkpoint.Position) error {
	s.call()
	return s.Store.Checkpoint(ctx, l, p)
}
func (s *restartingStore) ReleaseLease(ctx context.Context, l checkpoint.Lease, p checkpoint.Position) error {
	s.call()
	return s.Store.ReleaseLease(ctx, l, p)
}
func (s *restartingStore) RequestHandoff(ctx context.Context, k checkpoint.ShardKey, o, c string, n int64) error {
	s.call()
	return s.Store.RequestHandoff(ctx, k, o, c, n)
}
func (s *restartingStore) DeleteLease(ctx context.Context, k checkpoint.ShardKey, n int64) error {
	s.call()
	return s.Store.DeleteLease(ctx, k, n)
}
func (s *restartingStore) Heartbeat(ctx context.Context, w checkpoint.Worker) (checkpoint.Worker, error) {
	s.call()
	return s.Store.Heartbeat(ctx, w)
}
func (s *restartingStore) ListWorkers(ctx context.Context, g, st string) ([]checkpoint.Worker, error) {
	s.call()
	return s.Store.ListWorkers(ctx, g, st)
}
func (s *restartingStore) RemoveWorker(ctx context.Context, w checkpoint.Worker) error {
	s.call()
	return s.Store.RemoveWorker(ctx, w)
}

// Guards against a store that only works on a server that never restarts: every subtest of
// the conformance suite (but the concurrent races, which a restart would turn into expected
// ErrUnavailable answers) runs across a restart of its server, which keeps its rows in an
// append-only file. Rows written before the restart must read back the same, and the client
// must reconnect by itself.
func TestConformanceServerRestarts(t *testing.T) {
	server := startRestartingServer(t)
	client := goredis.NewClient(&goredis.Options{Addr: server.addr(), MaxRetries: 3})
	t.Cleanup(func() { _ = client.Close() })
	restarts := 0
	checkpointtest.Run(t, func(t *testing.T) checkpoint.Store {
		s, err := New(client, WithPrefix("restart:"+localstack.UniqueName(t, "")+":"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(t.Name(), "/Races/") || strings.Contains(t.Name(), "Unavailable") {
			return s
		}
		restarts++
		return &restartingStore{Store: s, server: server}
	})
	if restarts < 20 {
		t.Errorf("only %d subtests ran across a restart", restarts)
	}
}
