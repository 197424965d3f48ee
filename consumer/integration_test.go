package consumer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/kinesis/checkpoint"
	ddbstore "github.com/shardline/kinesis/checkpoint/dynamodb"
	redisstore "github.com/shardline/kinesis/checkpoint/redis"
	"github.com/shardline/kinesis/internal/shardmap"
	"github.com/shardline/kinesis/localstack"
	"github.com/shardline/kinesis/metrics"
)

// Integration tests: real kinesis-mock, real Redis, real dynalite, on loopback.

// putPlain puts records "key:counter" over keys with PutRecords, retrying failed entries, and
// counts them in counter.
func putPlain(t *testing.T, client *kinesis.Client, stream string, counter map[string]int, n, keys int) {
	t.Helper()
	if err := tryPutPlain(client, stream, counter, n, keys); err != nil {
		t.Fatal(err)
	}
}

// tryPutPlain is putPlain for goroutines other than the test's: it returns the error.
func tryPutPlain(client *kinesis.Client, stream string, counter map[string]int, n, keys int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var entries []types.PutRecordsRequestEntry
	for i := 0; i < n; i++ {
		key := "key-" + strconv.Itoa(i%keys)
		counter[key]++
		entries = append(entries, types.PutRecordsRequestEntry{
			PartitionKey: aws.String(key), Data: []byte(key + ":" + strconv.Itoa(counter[key])),
		})
	}
	// One key's records must stay in order: send in chunks, each entry only after the ones
	// before it succeeded.
	for len(entries) > 0 {
		chunk := entries[:min(len(entries), 500)]
		out, err := client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: chunk})
		if err != nil {
			return fmt.Errorf("PutRecords: %w", err)
		}
		ok := 0
		for ok < len(out.Records) && out.Records[ok].ErrorCode == nil {
			ok++
		}
		entries = entries[ok:]
	}
	return nil
}

func redisStore(t *testing.T, prefix string) checkpoint.Store {
	t.Helper()
	s, err := redisstore.New(localstack.Redis(t), redisstore.WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func dynamoStore(t *testing.T) (checkpoint.Store, func() checkpoint.Store) {
	t.Helper()
	client := localstack.DynamoDB(t)
	table := localstack.NewTable(t, client, func(ctx context.Context, name string) error {
		return ddbstore.CreateTable(ctx, client, name)
	})
	open := func() checkpoint.Store {
		s, err := ddbstore.New(localstack.DynamoDB(t), table)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return open(), open
}

// realWait polls cond in real time.
func realWait(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start)
}

const itLease = 2 * time.Second

func itOptions(id string, extra ...Option) []Option {
	return append([]Option{WithGroup("shardline"), WithWorkerID(id), WithLeaseDuration(itLease), WithIdleInterval(300 * time.Millisecond),
		WithShutdownTimeout(5 * time.Second)}, extra...)
}

// Guards against the fleet failure modes on real engines and separate clients per worker
// (as separate processes would have): three workers on six shards balance to 2/2/2, a crashed
// worker's shards move, a late joiner gets its share, and no record is lost meanwhile.
func TestIntegrationFleetRedis(t *testing.T) {
	// A longer lease than the other tests: the bound asserted is two lease durations, and the
	// real engines on a busy two-core machine need headroom in absolute time.
	const fleetLease, fleetBatch = 3 * time.Second, 100
	stream := localstack.NewStream(t, localstack.Kinesis(t), 6)
	prefix := localstack.RedisPrefix(t, localstack.Redis(t))
	observer := redisStore(t, prefix)
	s := newSink()
	counter := map[string]int{}
	var pmu sync.Mutex
	ctx, stopProducing := context.WithCancel(context.Background())
	var prodWG sync.WaitGroup
	prodClient := localstack.Kinesis(t)
	prodWG.Go(func() {
		for ctx.Err() == nil {
			pmu.Lock()
			err := tryPutPlain(prodClient, stream, counter, 60, 120)
			pmu.Unlock()
			if err != nil {
				t.Error(err)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	defer func() { stopProducing(); prodWG.Wait() }()

	stops := map[string]func() error{}
	cuts := map[string]*cuttableStore{}
	frozen := make(chan struct{})
	var frozenIDs sync.Map
	start := func(id string) {
		cuts[id] = &cuttableStore{Store: redisStore(t, prefix)}
		c, err := New(localstack.Kinesis(t), stream, cuts[id], itOptions(id, WithLeaseDuration(fleetLease), WithMaxRecords(fleetBatch))...)
		if err != nil {
			t.Fatal(err)
		}
		stops[id] = run(t, track(c), func(ctx context.Context, b *Batch) error {
			if _, ok := frozenIDs.Load(id); ok {
				<-frozen
				return errors.New("frozen")
			}
			s.accept(id, b)
			return nil
		})
	}
	counts := func() map[string]int { return held(t, observer, "shardline", stream) }

	start("w1")
	realWait(t, 30*time.Second, "w1 holds 6", func() bool { return counts()["w1"] == 6 })
	start("w2")
	start("w3")
	within := func(what string, took time.Duration) {
		t.Logf("%s after %v (lease %v)", what, took.Round(time.Millisecond), fleetLease)
		if took > 2*fleetLease {
			t.Errorf("%s after %v, want within 2 lease durations (%v)", what, took, 2*fleetLease)
		}
	}
	within("2/2/2 when two workers joined", realWait(t, time.Minute, "2/2/2", func() bool { return balancedAs(counts(), 2, 2, 2) }))

	frozenIDs.Store("w3", true)
	cuts["w3"].setCut(true)
	within("3/3 after a crash", realWait(t, time.Minute, "3/3 after a crash", func() bool {
		c := counts()
		return c["w1"] == 3 && c["w2"] == 3
	}))

	start("w4")
	within("2/2/2 after a late join", realWait(t, time.Minute, "2/2/2 after a late join", func() bool {
		c := counts()
		return c["w1"] == 2 && c["w2"] == 2 && c["w4"] == 2
	}))

	stopProducing()
	prodWG.Wait()
	total := 0
	for _, n := range counter {
		total += n
	}
	realWait(t, time.Minute, "every record", func() bool { return s.unique() == total })
	for _, id := range []string{"w1", "w2", "w4"} {
		if err := stops[id](); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
	close(frozen)
	_ = stops["w3"]()
	dups := s.check(t, counter)
	t.Logf("%d records, %d delivered twice", total, dups)
	// Only w3 crashed, holding 2 shards, each with at most one batch handled and not
	// checkpointed; graceful handoffs and shutdowns re-deliver nothing.
	if dups > 2*fleetBatch {
		t.Errorf("%d duplicates, want at most one batch per shard of the crashed worker (%d)", dups, 2*fleetBatch)
	}
}

// Guards against resharding bugs on the real engine: SplitShard and MergeShards while the
// consumer runs; parents drained before children, per-key order kept, nothing lost, finished
// shards marked SHARD_END in DynamoDB.
func TestIntegrationReshardDynamoDB(t *testing.T) {
	client := localstack.Kinesis(t)
	stream := localstack.NewStream(t, client, 2)
	store, _ := dynamoStore(t)
	m := metrics.NewMemory()
	s := newSink()
	c, err := New(localstack.Kinesis(t), stream, store, itOptions("w", WithMetrics(m), WithMaxRecords(100))...)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, track(c), s.handler("w"))
	counter := map[string]int{}
	putPlain(t, client, stream, counter, 600, 50)
	ctx := context.Background()
	shards, err := shardmap.List(ctx, client, stream, nil)
	if err != nil {
		t.Fatal(err)
	}
	parent := aws.ToString(shards[0].ShardId)
	r, _ := shardmap.ShardRange(shards[0])
	mid := shardmap.Hash{Hi: r.Start.Hi/2 + r.End.Hi/2}
	if _, err := client.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream),
		ShardToSplit: aws.String(parent), NewStartingHashKey: aws.String(mid.String())}); err != nil {
		t.Fatalf("SplitShard: %v", err)
	}
	waitActive(t, client, stream)
	putPlain(t, client, stream, counter, 600, 50)
	shards, _ = shardmap.List(ctx, client, stream, nil)
	var children []string
	for _, sh := range shards {
		if aws.ToString(sh.ParentShardId) == parent {
			children = append(children, aws.ToString(sh.ShardId))
		}
	}
	if len(children) != 2 {
		t.Fatalf("split produced %d children", len(children))
	}
	if _, err := client.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(stream),
		ShardToMerge: aws.String(children[0]), AdjacentShardToMerge: aws.String(children[1])}); err != nil {
		t.Fatalf("MergeShards: %v", err)
	}
	waitActive(t, client, stream)
	putPlain(t, client, stream, counter, 600, 50)
	realWait(t, 2*time.Minute, "every record", func() bool { return s.unique() == 1800 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if dups := s.check(t, counter); dups != 0 {
		t.Errorf("%d duplicates with a single worker", dups)
	}
	rows, _ := store.ListLeases(ctx, "shardline", stream)
	ended := map[string]bool{}
	for _, l := range rows {
		ended[l.Shard] = l.Checkpoint.ShardEnd
	}
	for _, id := range append([]string{parent}, children...) {
		if !ended[id] {
			t.Errorf("closed shard %s not marked SHARD_END", id)
		}
	}
	if got := m.Counter(metrics.StreamReshardingEvents, metrics.Labels{Stream: stream}); got != 2 {
		t.Errorf("stream_resharding_events_total = %v, want 2", got)
	}
}

func waitActive(t *testing.T, client *kinesis.Client, stream string) {
	t.Helper()
	w := kinesis.NewStreamExistsWaiter(client, func(o *kinesis.StreamExistsWaiterOptions) { o.MinDelay, o.MaxDelay = 50*time.Millisecond, time.Second })
	if err := w.Wait(context.Background(), &kinesis.DescribeStreamInput{StreamName: aws.String(stream)}, time.Minute); err != nil {
		t.Fatal(err)
	}
}

// Guards against the unconditional-write bug end to end on DynamoDB: a worker whose lease is
// taken while a batch is in its handler cannot write its checkpoint over the new owner's.
func TestIntegrationFencingDynamoDB(t *testing.T) {
	client := localstack.Kinesis(t)
	stream := localstack.NewStream(t, client, 1)
	store, open := dynamoStore(t)
	putPlain(t, client, stream, map[string]int{}, 50, 5)
	m := metrics.NewMemory()
	inHandler, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	c, err := New(localstack.Kinesis(t), stream, store, itOptions("victim", WithMetrics(m),
		WithLeaseDuration(time.Minute), WithRenewInterval(50*time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, track(c), func(ctx context.Context, b *Batch) error {
		once.Do(func() { close(inHandler) })
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})
	<-inHandler
	thiefStore := open()
	shard := c.Status().Shards[0].ShardID
	key := checkpoint.ShardKey{Group: "shardline", Stream: stream, Shard: shard}
	cur, err := thiefStore.GetLease(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	thief, err := thiefStore.TakeLease(context.Background(), key, "thief", cur.Counter)
	if err != nil {
		t.Fatal(err)
	}
	close(release)
	labels := metrics.Labels{Stream: stream, Shard: shard}
	realWait(t, 30*time.Second, "the refused checkpoint", func() bool { return m.Counter(metrics.ConsumerCheckpointFailure, labels) >= 1 })
	got, _ := thiefStore.GetLease(context.Background(), key)
	if got.Owner != "thief" || got.Token != thief.Token || !got.Checkpoint.IsZero() {
		t.Errorf("row after the stolen worker's checkpoint = %+v, want the thief's row untouched", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// faultTransport rewrites a share of Kinesis responses: GetRecords answered with HTTP 400
// ProvisionedThroughputExceededException (no engine throttles), and a share of calls failed
// as broken connections.
type faultTransport struct {
	next      http.RoundTripper
	throttle  float64
	drop      float64
	throttled atomic.Int64
	dropped   atomic.Int64
}

func (f *faultTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	target := req.Header.Get("X-Amz-Target")
	if strings.HasSuffix(target, ".GetRecords") {
		switch x := rand.Float64(); {
		case x < f.throttle:
			f.throttled.Add(1)
			body := `{"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded for shard"}`
			return &http.Response{StatusCode: 400, Status: "400 Bad Request", Request: req, ContentLength: int64(len(body)),
				Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}}, Body: io.NopCloser(bytes.NewReader([]byte(body)))}, nil
		case x < f.throttle+f.drop:
			f.dropped.Add(1)
			return nil, fmt.Errorf("injected: connection reset by peer")
		}
	}
	return f.next.RoundTrip(req)
}

// Guards against throttling and transport faults killing readers on the real wire format:
// with 30% of GetRecords throttled and 10% dropped, everything arrives, in order, and the
// throttles are counted by AWS error code.
func TestIntegrationThrottlingTransport(t *testing.T) {
	ft := &faultTransport{next: http.DefaultTransport, throttle: 0.3, drop: 0.1}
	client := localstack.Kinesis(t, func(o *kinesis.Options) {
		o.HTTPClient = &http.Client{Transport: ft}
		o.RetryMaxAttempts = 1 // let the consumer, not the SDK, handle every fault
	})
	plain := localstack.Kinesis(t)
	stream := localstack.NewStream(t, plain, 2)
	counter := map[string]int{}
	putPlain(t, plain, stream, counter, 1000, 40)
	m := metrics.NewMemory()
	s := newSink()
	c, err := New(client, stream, checkpoint.NewMemory(), itOptions("w", WithMetrics(m), WithMaxRecords(50),
		WithBackoff(50*time.Millisecond, 500*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, track(c), s.handler("w"))
	realWait(t, time.Minute, "every record", func() bool { return s.unique() == 1000 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if dups := s.check(t, counter); dups != 0 {
		t.Errorf("%d duplicates", dups)
	}
	var throttles float64
	for _, sh := range []string{"shardId-000000000000", "shardId-000000000001"} {
		throttles += m.Counter(metrics.ConsumerErrors, metrics.Labels{Stream: stream, Shard: sh, ErrorType: "ProvisionedThroughputExceededException"})
	}
	if throttles == 0 || throttles != float64(ft.throttled.Load()) {
		t.Errorf("throttles counted %v, injected %d", throttles, ft.throttled.Load())
	}
	t.Logf("injected %d throttles and %d dropped connections", ft.throttled.Load(), ft.dropped.Load())
}

// Guards against ExpiredIteratorException on the real engine: a handler that outlives the
// 5-minute iterator makes the next GetRecords fail; the reader resumes after the last record
// read. It waits over five minutes, so it runs in parallel with the package's other tests,
// always in CI (SHARDLINE_REQUIRE_INTEGRATION=1) and elsewhere with SHARDLINE_LONG_TESTS=1.
func TestIntegrationExpiredIterator(t *testing.T) {
	if os.Getenv("SHARDLINE_LONG_TESTS") != "1" && os.Getenv(localstack.EnvRequire) != "1" {
		t.Skip("takes over 5 minutes; set SHARDLINE_LONG_TESTS=1 to run it")
	}
	t.Parallel()
	client := localstack.Kinesis(t)
	stream := localstack.NewStream(t, client, 1)
	counter := map[string]int{}
	putPlain(t, client, stream, counter, 200, 10)
	m := metrics.NewMemory()
	s := newSink()
	var slow sync.Once
	c, err := New(localstack.Kinesis(t), stream, checkpoint.NewMemory(), itOptions("w", WithMetrics(m),
		WithMaxRecords(50), WithLeaseDuration(time.Minute), WithCallTimeout(time.Minute))...)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, c, func(_ context.Context, b *Batch) error {
		s.accept("w", b)
		slow.Do(func() { time.Sleep(5*time.Minute + 15*time.Second) })
		return nil
	})
	realWait(t, 8*time.Minute, "every record", func() bool { return s.unique() == 200 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if dups := s.check(t, counter); dups != 0 {
		t.Errorf("%d duplicates after an expired iterator", dups)
	}
	if n := m.Counter(metrics.ConsumerErrors, metrics.Labels{Stream: stream, Shard: "shardId-000000000000", ErrorType: "ExpiredIteratorException"}); n < 1 {
		t.Errorf("ExpiredIteratorException counted %v times, want ≥ 1", n)
	}
}
