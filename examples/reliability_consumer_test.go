package examples_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	redisstore "github.com/shardline/kinesis/checkpoint/redis"
	"github.com/shardline/kinesis/consumer"
	"github.com/shardline/kinesis/localstack"
	"github.com/shardline/kinesis/localstack/kinesisproxy"
)

// Consumer rows of the fault matrix (see reliability_test.go): examples/consumer processes on
// kinesis-mock, 4 shards unless said, 3 s leases, a checkpoint after every batch of at most
// 10 plain records, so "one batch per shard" is 40 records.

const batchRecords = 10

// consumerRate is the records/s the producer offers in the consumer rows: kinesis-mock takes
// about 1,000.
func consumerRate() float64 { return float64(size(300, 450)) }

func consumerArgs(s *scenario, extra ...string) []string {
	return slices.Concat([]string{"-lease", s.lease.String(), "-max-records", fmt.Sprint(batchRecords)}, extra)
}

// row turns what finish found into a matrix row.
func (f finished) row(n int) matrixRow {
	return matrixRow{
		Expected: n, Unique: f.v.unique, Lost: len(f.v.missing), Duplicates: f.v.duplicates,
		Order: len(f.v.fileOrder) + len(f.v.firstOrder), Wall: f.wait.after.Seconds(), Recover: -1,
	}
}

// firstDeliveryAfter returns how long after at the consumers first delivered a record, or -1.
func (s *scenario) firstDeliveryAfter(at time.Time) float64 {
	first := int64(-1)
	for _, c := range s.consumers {
		for _, d := range c.out.lines {
			if d.Delivered > at.UnixNano() && (first < 0 || d.Delivered < first) {
				first = d.Delivered
			}
		}
	}
	if first < 0 {
		return -1
	}
	return time.Duration(first - at.UnixNano()).Seconds()
}

// withEnv returns env with name set to value (replacing any earlier setting).
func withEnv(env []string, name, value string) []string {
	out := slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, name+"=") })
	return append(out, name+"="+value)
}

func c1(t *testing.T) matrixRow {
	s := newScenario(t, "redis", 4, 3*time.Second)
	n := size(3000, 9000)
	for i := 1; i <= 3; i++ {
		s.startConsumer(fmt.Sprintf("consumer-%d", i), consumerArgs(s)...)
	}
	prod := s.startProducer(n, 200, consumerRate(), "-aggregate=false")
	s.sleepUntil(3 * time.Second)
	if victim := s.mostLoaded(5 * time.Second); victim != nil {
		s.kill(victim)
	}
	s.startConsumer("consumer-4", consumerArgs(s)...)
	f := s.finish(prod, n, 200, 90*time.Second)
	r := f.row(n)
	r.Bound, r.BoundIs = f.v.dupBound, "records of the killed process's last batches"
	if s.failover != nil {
		s.failover.mu.Lock()
		for _, d := range s.failover.moved {
			r.Recover = max(r.Recover, d.Seconds())
		}
		s.failover.mu.Unlock()
	}
	return r
}

func c2(t *testing.T) matrixRow {
	const blackoutAt, blackout = 3 * time.Second, 5 * time.Second
	stack := localstack.Require(t)
	s := newScenario(t, "redis", 4, 3*time.Second)
	n := size(3000, 9000)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	proxy, err := kinesisproxy.Start(ctx, kinesisproxy.Config{Upstream: stack.Kinesis, Limits: kinesisproxy.DefaultLimits(), Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close(context.Background()) })
	s.consumerEnv = withEnv(s.env, "AWS_ENDPOINT_URL_KINESIS", proxy.URL())
	s.dupLimit = 0 // no crash, no lost lease: nothing may come twice
	for i := 1; i <= 3; i++ {
		s.startConsumer(fmt.Sprintf("consumer-%d", i), consumerArgs(s)...)
	}
	err = proxy.SetFaults([]kinesisproxy.Fault{
		{Op: "GetRecords", Kind: kinesisproxy.HTTP503, Rate: 0.05},
		{Op: "GetRecords", Kind: kinesisproxy.Reset, Rate: 0.03},
		{Kind: kinesisproxy.Blackout, Start: blackoutAt, Duration: blackout},
	})
	if err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(blackoutAt + blackout)
	prod := s.startProducer(n, 200, consumerRate(), "-aggregate=false")
	f := s.finish(prod, n, 200, 90*time.Second)
	r := f.row(n)
	r.BoundIs = "no crash: none"
	r.Recover = s.firstDeliveryAfter(end)
	t.Logf("proxy GetRecords counters: %+v", proxy.Counters().Operations["GetRecords"])
	return r
}

// redisServer is a redis-server of the test's own that it kills with SIGKILL and restarts.
type redisServer struct {
	t         *testing.T
	port      int
	dir       string
	persisted bool
	cmd       *exec.Cmd
	exited    chan struct{}
}

func startRedisServer(t *testing.T, persisted bool) *redisServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &redisServer{t: t, port: l.Addr().(*net.TCPAddr).Port, dir: t.TempDir(), persisted: persisted}
	_ = l.Close()
	r.start()
	t.Cleanup(r.kill9)
	return r
}

func (r *redisServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }

func (r *redisServer) start() {
	args := []string{"--bind", "127.0.0.1", "--port", fmt.Sprint(r.port), "--dir", r.dir, "--save", "", "--daemonize", "no"}
	if r.persisted {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	r.cmd = exec.Command("redis-server", args...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	r.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { _ = cmd.Wait(); close(exited) }(r.cmd, r.exited)
	c := goredis.NewClient(&goredis.Options{Addr: r.addr()})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); c.Ping(context.Background()).Err() != nil; {
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s did not answer", r.addr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *redisServer) kill9() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.exited
	r.cmd = nil
}

func c3(persisted bool) func(t *testing.T) matrixRow {
	return func(t *testing.T) matrixRow {
		const killAt, down = 3 * time.Second, 2 * time.Second
		s := newScenario(t, "redis", 4, 3*time.Second)
		n := size(3000, 9000)
		server := startRedisServer(t, persisted)
		client := goredis.NewClient(&goredis.Options{Addr: server.addr()})
		t.Cleanup(func() { _ = client.Close() })
		st, err := redisstore.New(client, redisstore.WithPrefix("reliability"))
		if err != nil {
			t.Fatal(err)
		}
		s.store = st
		s.storeArgs = []string{"-store", "redis", "-redis-url", "redis://" + server.addr() + "/0", "-redis-prefix", "reliability"}
		bound, boundIs := 4*batchRecords, "one batch per shard whose lease moved"
		if !persisted {
			// Every lease and checkpoint is gone with the restart: the group starts over from
			// TRIM_HORIZON, so each record delivered before it may come once more.
			bound, boundIs = n, "every record delivered before the restart, once"
		}
		s.dupLimit = bound
		for i := 1; i <= 3; i++ {
			s.startConsumer(fmt.Sprintf("consumer-%d", i), consumerArgs(s)...)
		}
		prod := s.startProducer(n, 200, consumerRate(), "-aggregate=false")
		s.sleepUntil(killAt)
		server.kill9()
		t.Logf("%5.1fs: killed redis-server with SIGKILL", s.since())
		s.sleepUntil(killAt + down)
		if !persisted {
			// From here the store holds nothing: the group reads every shard from its start.
			s.rewound = time.Now()
		}
		server.start()
		back := time.Now()
		t.Logf("%5.1fs: restarted redis-server (persistence %v)", s.since(), persisted)
		f := s.finish(prod, n, 200, 90*time.Second)
		r := f.row(n)
		r.Bound, r.BoundIs = bound, boundIs
		r.Recover = s.firstDeliveryAfter(back)
		return r
	}
}

// tcpGate forwards loopback connections to an upstream address until cut: then it closes
// every connection and refuses new ones for a while, as an unreachable server does.
type tcpGate struct {
	l        net.Listener
	upstream string
	mu       sync.Mutex
	conns    map[net.Conn]bool
	shutTill time.Time
	wg       sync.WaitGroup
}

func startGate(t *testing.T, upstream string) *tcpGate {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &tcpGate{l: l, upstream: upstream, conns: map[net.Conn]bool{}}
	g.wg.Go(g.serve)
	t.Cleanup(func() {
		_ = l.Close()
		g.closeAll()
		g.wg.Wait()
	})
	return g
}

func (g *tcpGate) addr() string { return g.l.Addr().String() }

func (g *tcpGate) serve() {
	for {
		c, err := g.l.Accept()
		if err != nil {
			return
		}
		g.mu.Lock()
		shut := time.Now().Before(g.shutTill)
		if !shut {
			g.conns[c] = true
		}
		g.mu.Unlock()
		if shut {
			_ = c.Close()
			continue
		}
		g.wg.Go(func() { g.pipe(c) })
	}
}

func (g *tcpGate) pipe(c net.Conn) {
	defer func() {
		g.mu.Lock()
		delete(g.conns, c)
		g.mu.Unlock()
		_ = c.Close()
	}()
	up, err := net.DialTimeout("tcp", g.upstream, 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}

// cut closes every connection and refuses new ones for d.
func (g *tcpGate) cut(d time.Duration) {
	g.mu.Lock()
	g.shutTill = time.Now().Add(d)
	g.mu.Unlock()
	g.closeAll()
}

func (g *tcpGate) closeAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for c := range g.conns {
		_ = c.Close()
	}
}

func c4(t *testing.T) matrixRow {
	const cutAt, outage = 3 * time.Second, 10 * time.Second
	stack := localstack.Require(t)
	s := newScenario(t, "dynamodb", 4, 3*time.Second)
	n := size(3000, 9000)
	gate := startGate(t, strings.TrimPrefix(stack.DynamoDB, "http://"))
	s.consumerEnv = withEnv(s.env, "AWS_ENDPOINT_URL_DYNAMODB", "http://"+gate.addr())
	s.dupLimit = 4 * batchRecords
	for i := 1; i <= 3; i++ {
		s.startConsumer(fmt.Sprintf("consumer-%d", i), consumerArgs(s)...)
	}
	prod := s.startProducer(n, 200, consumerRate(), "-aggregate=false")
	s.sleepUntil(cutAt)
	gate.cut(outage)
	back := time.Now().Add(outage)
	t.Logf("%5.1fs: DynamoDB unreachable for %v", s.since(), outage)
	f := s.finish(prod, n, 200, 90*time.Second)
	r := f.row(n)
	r.Bound, r.BoundIs = s.dupLimit, "one batch per shard whose lease moved"
	r.Recover = s.firstDeliveryAfter(back)
	return r
}

func c5(t *testing.T) matrixRow {
	s := newScenario(t, "redis", 2, 3*time.Second)
	n := size(4000, 8000)
	s.dupLimit = 0 // handoffs and shard ends are graceful: nothing twice
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("w%d", i)
		s.startConsumer(id, consumerArgs(s, "-id", id)...)
	}
	prod := s.startProducer(n, 200, 400)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s.sleepUntil(3 * time.Second)
	_, upper, err := split(ctx, s.kinesis, s.stream, shardID(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%5.1fs: split %s", s.since(), shardID(0))
	s.sleepUntil(7 * time.Second)
	child, err := merge(ctx, s.kinesis, s.stream, upper, shardID(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%5.1fs: merged %s and %s into %s", s.since(), upper, shardID(1), child)
	f := s.finish(prod, n, 200, 90*time.Second)
	r := f.row(n)
	r.BoundIs = "no crash: none"
	return r
}

// c6 runs one consumer in this process (a poison record is about the handler, not about
// crashes) over records of examples/producer, one of which its handler refuses.
func c6(policy string) func(t *testing.T) matrixRow {
	return func(t *testing.T) matrixRow {
		s := newScenario(t, "redis", 4, 3*time.Second)
		n := size(2000, 6000)
		const poison = "key-7:000003"
		prod := s.startProducer(n, 200, 0, "-aggregate=false")
		<-prod.exited
		if prod.exitCode() != 0 {
			t.Fatalf("producer: %s", prod.status())
		}
		var mu sync.Mutex
		got := map[string]int{}
		lastByKey := map[string]int{}
		order := 0
		var fixed time.Time
		var firstFailure, poisonDone time.Time
		accept := func(b *consumer.Batch) {
			mu.Lock()
			defer mu.Unlock()
			for _, rec := range b.Records {
				k, c, _ := recordID(rec.Data, rec.PartitionKey)
				id := idString(k, c)
				if got[id]++; got[id] == 1 {
					if prev, ok := lastByKey[k]; ok && c != prev+1 {
						order++
					}
					lastByKey[k] = c
				}
				if id == poison && poisonDone.IsZero() {
					poisonDone = time.Now()
				}
			}
		}
		holdsPoison := func(b *consumer.Batch) bool {
			for _, rec := range b.Records {
				if k, c, _ := recordID(rec.Data, rec.PartitionKey); idString(k, c) == poison {
					return true
				}
			}
			return false
		}
		handler := func(ctx context.Context, b *consumer.Batch) error {
			if holdsPoison(b) {
				mu.Lock()
				if firstFailure.IsZero() {
					firstFailure = time.Now()
				}
				broken := policy != "retry" || time.Since(firstFailure) < 5*time.Second
				if !broken && fixed.IsZero() {
					fixed = time.Now()
				}
				mu.Unlock()
				if broken {
					return errors.New("poison record")
				}
			}
			accept(b)
			return nil
		}
		opts := []consumer.Option{consumer.WithGroup(s.group), consumer.WithLeaseDuration(s.lease),
			consumer.WithMaxRecords(batchRecords), consumer.WithHandlerRetries(2), consumer.WithBackoff(100*time.Millisecond, time.Second)}
		switch policy {
		case "dead-letter":
			opts = append(opts, consumer.WithDeadLetter(func(_ context.Context, b *consumer.Batch, err error) error {
				accept(b) // the dead-letter queue has them: delivered, elsewhere
				return nil
			}))
		case "stop":
			opts = append(opts, consumer.WithFailurePolicy(consumer.StopOnFailure))
		}
		began := time.Now()
		runOnce := func(h consumer.Handler, opts ...consumer.Option) error {
			c, err := consumer.New(s.kinesis, s.stream, s.store, opts...)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx, h) }()
			for {
				select {
				case err := <-done:
					return err
				case <-time.After(200 * time.Millisecond):
				}
				mu.Lock()
				all := len(got) == n
				mu.Unlock()
				if all {
					cancel()
					return <-done
				}
			}
		}
		err := runOnce(handler, opts...)
		r := matrixRow{Expected: n, Recover: -1, BoundIs: "no crash: none"}
		if policy == "stop" {
			var he *consumer.HandlerError
			if !errors.As(err, &he) {
				t.Fatalf("Run = %v, want a *HandlerError", err)
			}
			mu.Lock()
			fixed = time.Now()
			mu.Unlock()
			// The fix deployed: a new run delivers the rest.
			err = runOnce(func(ctx context.Context, b *consumer.Batch) error { accept(b); return nil },
				consumer.WithGroup(s.group), consumer.WithLeaseDuration(s.lease), consumer.WithMaxRecords(batchRecords))
		}
		if err != nil {
			t.Errorf("Run = %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		r.Unique = len(got)
		for _, c := range got {
			r.Duplicates += c - 1
		}
		for id := range expected(n, 200) {
			if got[id] == 0 {
				r.Lost++
			}
		}
		r.Order = order
		r.Wall = time.Since(began).Seconds()
		if !fixed.IsZero() && !poisonDone.IsZero() {
			r.Recover = poisonDone.Sub(fixed).Seconds()
		}
		return r
	}
}
