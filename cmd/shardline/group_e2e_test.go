package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	goredis "github.com/redis/go-redis/v9"

	"github.com/shardline/kinesis/checkpoint"
	redisstore "github.com/shardline/kinesis/checkpoint/redis"
	"github.com/shardline/kinesis/consumer"
	"github.com/shardline/kinesis/health"
	"github.com/shardline/kinesis/localstack"
	// The Prometheus collector's package is being renamed: the alias keeps that a one-line change.
	shardprom "github.com/shardline/kinesis/metrics/prometheus"
)

// delivery is one record a test worker handled.
type delivery struct {
	worker, shard, data string
}

// fleet runs test workers of one group in this process, each with its own Redis and Kinesis
// clients as separate processes would have, and records what they deliver.
type fleet struct {
	t        *testing.T
	stream   string
	group    string
	prefix   string
	redisURL string
	kin      *kinesis.Client

	mu        sync.Mutex
	delivered []delivery
}

func (f *fleet) handler(worker string) consumer.Handler {
	return func(_ context.Context, b *consumer.Batch) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, r := range b.Records {
			f.delivered = append(f.delivered, delivery{worker, r.ShardID, string(r.Data)})
		}
		return nil
	}
}

func (f *fleet) reset() {
	f.mu.Lock()
	f.delivered = nil
	f.mu.Unlock()
}

func (f *fleet) snapshot() []delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.delivered)
}

// run starts workers with the given IDs; the returned stop shuts them down gracefully (final
// checkpoints, leases released, worker rows removed) and fails the test if a Run failed.
// Worker a's metrics and health are served on the returned server.
func (f *fleet) run(ids ...string) (stop func(), server *httptest.Server) {
	f.t.Helper()
	opts, err := goredis.ParseURL(f.redisURL)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, len(ids))
	mux := http.NewServeMux()
	var reporters []health.Reporter
	for i, id := range ids {
		rdb := goredis.NewClient(opts)
		st, err := redisstore.New(rdb, redisstore.WithPrefix(f.prefix))
		if err != nil {
			f.t.Fatal(err)
		}
		copts := []consumer.Option{consumer.WithGroup(f.group), consumer.WithWorkerID(id),
			consumer.WithLeaseDuration(2 * time.Second), consumer.WithIdleInterval(300 * time.Millisecond)}
		if i == 0 {
			reg := prom.NewRegistry()
			col, err := shardprom.New(reg, shardprom.WithNamespace("shop"))
			if err != nil {
				f.t.Fatal(err)
			}
			copts = append(copts, consumer.WithMetrics(col))
			mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		}
		c, err := consumer.New(f.kin, f.stream, st, copts...)
		if err != nil {
			f.t.Fatal(err)
		}
		if i == 0 {
			reporters = append(reporters, c)
		}
		wg.Go(func() {
			defer rdb.Close()
			errs <- c.Run(ctx, f.handler(id))
		})
	}
	mux.Handle("/healthz", health.LivenessHandler(reporters...))
	mux.Handle("/readyz", health.ReadinessHandler(reporters...))
	server = httptest.NewServer(mux) // on 127.0.0.1
	return func() {
		f.t.Helper()
		cancel()
		wg.Wait()
		server.Close()
		close(errs)
		for err := range errs {
			if err != nil {
				f.t.Fatalf("worker: %v", err)
			}
		}
	}, server
}

// eventually polls cond every 200ms for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func statusJSON(t *testing.T, args ...string) groupStatus {
	t.Helper()
	var gs groupStatus
	out := cli(t, "", append(args, "--json")...).ok(t)
	if err := json.Unmarshal([]byte(out), &gs); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	return gs
}

func recordsBehind(gs groupStatus) (n int64) {
	for _, s := range gs.Shards {
		if s.Lag != nil {
			n += s.Lag.Records
		}
	}
	return n
}

// jsonLines returns n JSON lines {"user":"k<i%keys>","batch":batch,"n":i}: fixed keys put the
// records on the same shards every run.
func jsonLines(batch string, n, keys int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf(`{"user":"k%d","batch":"%s","n":%d}`, i%keys, batch, i))
	}
	return out
}

// TestGroup runs a two-worker group and checks every group command against it: status
// (owners, fair share, lag falling to 0), seek refused while leases are held, tail from the
// group's checkpoints (read-only), seek to a timestamp and the group re-delivering exactly
// from the first record at or after it, seek to latest, metrics and health of a worker,
// and group delete.
func TestGroup(t *testing.T) {
	s := needStack(t)
	kin := localstack.Kinesis(t)
	stream := localstack.NewStream(t, kin, 2)
	rdb := localstack.Redis(t)
	prefix := localstack.RedisPrefix(t, rdb)
	f := &fleet{t: t, stream: stream, group: "billing", prefix: prefix, redisURL: s.RedisURL, kin: kin}
	storeURL := s.RedisURL + "?prefix=" + url.QueryEscape(prefix)
	g := []string{"--local", "group", "status", stream, "--group", "billing", "--store", storeURL, "--observe", "5s"}

	batchA := jsonLines("A", 200, 10)
	cli(t, strings.Join(batchA, "\n"), "--local", "put", stream, "--key-field", "user").ok(t)

	// Before any worker: no rows, everything behind, measured from TRIM_HORIZON.
	golden(t, "group-status-new", cli(t, "", g...).ok(t))
	gs := statusJSON(t, g...)
	if gs.CaughtUp || recordsBehind(gs) != 200 || len(gs.Workers) != 0 || gs.ReadyShards != 2 {
		t.Fatalf("new group: caught up %v, %d records behind, %d workers, %d ready; want false, 200, 0, 2", gs.CaughtUp, recordsBehind(gs), len(gs.Workers), gs.ReadyShards)
	}

	stop, server := f.run("worker-a", "worker-b")
	eventually(t, 60*time.Second, "batch A delivered", func() bool { return len(f.snapshot()) >= 200 })
	eventually(t, 30*time.Second, "status: two owners, caught up", func() bool {
		gs = statusJSON(t, g...)
		owners := map[string]int{}
		for _, s := range gs.Shards {
			owners[s.Owner]++
		}
		return gs.CaughtUp && owners["worker-a"] == 1 && owners["worker-b"] == 1 && gs.LiveWorkers == 2
	})
	for _, s := range gs.Shards {
		if s.Lag == nil || s.Lag.MillisBehind != 0 || s.Lag.Records != 0 || s.RenewedAgoMs == nil || s.Checkpoint.IsZero() {
			t.Fatalf("caught-up shard %+v: want lag 0, a renewal seen and a checkpoint", s)
		}
	}
	for _, w := range gs.Workers {
		if !w.Live || w.Leases != 1 || w.FairShare != 1 || w.HeartbeatAgoMs == nil {
			t.Fatalf("worker %+v: want live with 1 lease, fair share 1 and a heartbeat seen", w)
		}
	}

	// Seek refuses while the leases are held; the dry run shows the plan all the same.
	seek := []string{"--local", "group", "seek", stream, "--group", "billing", "--store", storeURL}
	r := cli(t, "", append(seek, "--to", "trim_horizon")...)
	if r.code != exitFailure || !strings.Contains(r.stderr, "refusing: 2 leases are held") {
		t.Fatalf("seek with live workers: exit %d, stderr %q; want 1 and a refusal", r.code, r.stderr)
	}
	cli(t, "", append(seek, "--to", "trim_horizon", "--dry-run")...).ok(t)

	// A running worker's metrics and health.
	checkMetricsAndHealth(t, server.URL, stream, f)

	stop()
	gs = statusJSON(t, g...)
	if len(gs.Workers) != 0 || gs.Shards[0].Owner != "" || gs.Shards[1].Owner != "" {
		t.Fatalf("after a graceful stop: %+v; want no workers and free leases", gs)
	}

	// Batch B after a point in time: the group is 100 records behind, then catches up.
	time.Sleep(1100 * time.Millisecond)
	at := time.Now().UTC()
	time.Sleep(1100 * time.Millisecond)
	batchB := jsonLines("B", 100, 10)
	cli(t, strings.Join(batchB, "\n"), "--local", "put", stream, "--key-field", "user").ok(t)
	gs = statusJSON(t, g...)
	if gs.CaughtUp || recordsBehind(gs) != 100 {
		t.Fatalf("after batch B: caught up %v, %d records behind; want false, 100", gs.CaughtUp, recordsBehind(gs))
	}
	for _, s := range gs.Shards {
		if s.Lag == nil || s.Lag.MillisBehind <= 0 {
			t.Fatalf("shard %+v: want time behind the tip > 0", s)
		}
	}
	f.reset()
	stop, _ = f.run("worker-a", "worker-b")
	eventually(t, 60*time.Second, "batch B delivered", func() bool { return len(f.snapshot()) >= 100 })
	eventually(t, 30*time.Second, "status caught up again", func() bool { return statusJSON(t, g...).CaughtUp })
	stop()

	// tail --group is read-only: it prints what the group has not processed and changes no row.
	before := leaseRows(t, rdb, prefix, stream)
	if out := cli(t, "", "--local", "tail", stream, "--group", "billing", "--store", storeURL).ok(t); out != "" {
		t.Fatalf("tail --group of a caught-up group printed %q", out)
	}

	// Seek to the time between the batches: plan first (dry run writes nothing), then apply.
	dry := cli(t, "", append(seek, "--to", at.Format(time.RFC3339Nano), "--dry-run")...).ok(t)
	golden(t, "group-seek-dry-run", dry)
	if after := leaseRows(t, rdb, prefix, stream); !equalRows(before, after) {
		t.Fatalf("dry run or tail changed the rows:\n%v\n%v", before, after)
	}
	var rep seekReport
	if err := json.Unmarshal([]byte(cli(t, "", append(seek, "--to", at.Format(time.RFC3339Nano), "--json")...).ok(t)), &rep); err != nil {
		t.Fatal(err)
	}
	firstB := map[string]string{} // shard → sequence of its first B record
	for _, s := range rep.Shards {
		if s.Action != "rewind" || s.First == nil || s.To.IsZero() {
			t.Fatalf("seek step %+v: want a rewind to the record before the first B record", s)
		}
		firstB[s.Shard] = s.First.Sequence
	}
	if !rep.Applied {
		t.Fatalf("seek report %+v: not applied", rep)
	}

	// tail --group now prints batch B: the group's position is just before it.
	envs := tailEnvelopes(t, cli(t, "", "--local", "tail", stream, "--group", "billing", "--store", storeURL, "--json").ok(t))
	checkExactly(t, "tail --group after the seek", envData(t, envs), batchB)

	// The group re-delivers exactly from the first record at or after the time.
	f.reset()
	stop, _ = f.run("worker-a", "worker-b")
	eventually(t, 60*time.Second, "batch B re-delivered", func() bool { return len(f.snapshot()) >= 100 })
	eventually(t, 30*time.Second, "status caught up after the seek", func() bool { return statusJSON(t, g...).CaughtUp })
	stop()
	got := f.snapshot()
	var data []string
	firstSeen := map[string]bool{}
	for _, d := range got {
		data = append(data, d.data)
		if !firstSeen[d.shard] {
			firstSeen[d.shard] = true
			var v struct{ Batch string }
			_ = json.Unmarshal([]byte(d.data), &v)
			if v.Batch != "B" {
				t.Fatalf("shard %s re-delivered %s first, want the first B record", d.shard, d.data)
			}
		}
	}
	checkExactly(t, "re-delivered after the seek", data, batchB)

	// Seek to latest: nothing left; the status says caught up with every checkpoint set.
	cli(t, "", append(seek, "--to", "latest")...).ok(t)
	gs = statusJSON(t, g...)
	if !gs.CaughtUp || recordsBehind(gs) != 0 {
		t.Fatalf("after seek to latest: %+v", gs)
	}
	// Seek to trim_horizon clears the checkpoints; tail --group then prints everything.
	cli(t, "", append(seek, "--to", "trim_horizon")...).ok(t)
	if n := len(tailEnvelopes(t, cli(t, "", "--local", "tail", stream, "--group", "billing", "--store", storeURL, "--json").ok(t))); n != 300 {
		t.Fatalf("tail --group after seek to trim_horizon printed %d records, want 300", n)
	}

	// group delete removes every row.
	cli(t, "", append(seek, "--to", "latest")...).ok(t)
	out := cli(t, "", "--local", "group", "delete", stream, "--group", "billing", "--store", storeURL).ok(t)
	if !strings.Contains(out, "2 lease rows") {
		t.Fatalf("group delete said %q", out)
	}
	if rows := leaseRows(t, rdb, prefix, stream); len(rows) != 0 {
		t.Fatalf("rows left after group delete: %v", rows)
	}
}

// checkMetricsAndHealth reads a running worker's endpoints with the binary.
func checkMetricsAndHealth(t *testing.T, base, stream string, f *fleet) {
	t.Helper()
	var sum metricsSummary
	if err := json.Unmarshal([]byte(cli(t, "", "metrics", base+"/metrics", "--json").ok(t)), &sum); err != nil {
		t.Fatal(err)
	}
	if len(sum.Streams) != 1 || sum.Streams[0].Stream != stream || sum.Streams[0].Namespace != "shop" {
		t.Fatalf("metrics: streams %+v, want %s in namespace shop", sum.Streams, stream)
	}
	var delivered float64
	for _, sh := range sum.Streams[0].Shards {
		if v, ok := sh.Metrics["consumer_user_records_total"]; ok {
			delivered += *v.Value
		}
	}
	want := 0
	for _, d := range f.snapshot() {
		if d.worker == "worker-a" {
			want++
		}
	}
	if int(delivered) != want {
		t.Fatalf("metrics: consumer_user_records_total %v, want worker-a's %d deliveries", delivered, want)
	}
	if v := sum.Streams[0].Metrics["consumer_leases_held"]; v.Value == nil || *v.Value != 1 {
		t.Fatalf("metrics: consumer_leases_held %+v, want 1", v)
	}
	// With --interval, counters have rates.
	if err := json.Unmarshal([]byte(cli(t, "", "metrics", base, "--interval", "500ms", "--json").ok(t)), &sum); err != nil {
		t.Fatal(err)
	}
	counters := 0
	for _, sh := range append([]shardMetrics{{Metrics: sum.Streams[0].Metrics}}, sum.Streams[0].Shards...) {
		for name, v := range sh.Metrics {
			if v.Kind == "counter" {
				counters++
				if v.Rate == nil {
					t.Fatalf("metrics --interval: counter %s of shard %q has no rate", name, sh.Shard)
				}
			}
		}
	}
	if sum.Interval <= 0 || counters == 0 {
		t.Fatalf("metrics --interval: interval %v, %d counters", sum.Interval, counters)
	}
	text := cli(t, "", "metrics", base+"/metrics").ok(t)
	if !strings.Contains(text, "stream "+stream+" (namespace shop)") || !strings.Contains(text, "consumer_leases_held") {
		t.Fatalf("metrics text:\n%s", text)
	}

	var probes []probeResult
	if err := json.Unmarshal([]byte(cli(t, "", "health", base, "--json").ok(t)), &probes); err != nil {
		t.Fatal(err)
	}
	if len(probes) != 2 || !probes[0].Pass || !probes[1].Pass || len(probes[1].Reports) != 1 || probes[1].Reports[0].Component != "consumer" {
		t.Fatalf("health: %+v; want /healthz and /readyz passing with the consumer's report", probes)
	}
	if text := cli(t, "", "health", base+"/readyz").ok(t); !strings.Contains(text, "HTTP 200, ok (pass)") {
		t.Fatalf("health text:\n%s", text)
	}
}

// leaseRows reads the group's lease rows straight from the store.
func leaseRows(t *testing.T, rdb *goredis.Client, prefix, stream string) []checkpoint.Lease {
	t.Helper()
	st, err := redisstore.New(rdb, redisstore.WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := st.ListLeases(context.Background(), "billing", stream)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(rows, func(a, b checkpoint.Lease) int { return strings.Compare(a.Shard, b.Shard) })
	return rows
}

func equalRows(a, b []checkpoint.Lease) bool {
	return slices.EqualFunc(a, b, func(x, y checkpoint.Lease) bool {
		return x.Counter == y.Counter && x.Checkpoint == y.Checkpoint && x.Owner == y.Owner
	})
}

func envData(t *testing.T, envs []envelope) []string {
	var out []string
	for _, e := range envs {
		out = append(out, dataOf(t, e))
	}
	return out
}

// checkExactly fails unless got holds each of want exactly once (in any order across shards).
func checkExactly(t *testing.T, what string, got, want []string) {
	t.Helper()
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Fatalf("%s: %d records, want exactly the %d expected; got %v", what, len(got), len(want), got)
	}
}
