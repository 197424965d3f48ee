package producer

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/shardline/kinesis/events"
	"github.com/shardline/kinesis/internal/shardmap"
)

// benchAPI is a Kinesis without a network: PutRecords routes each entry to its shard (explicit
// hash key, else MD5 of the key, as Kinesis does) and answers success at once with a sequence
// number from a precomputed pool, so that the benchmark measures the producer, not the fake.
type benchAPI struct {
	list   *fakeKinesis // ListShards
	shards []fakeShard
	ids    []*string
	seqs   []string
	n      atomic.Uint64
}

func newBenchAPI(shards int) *benchAPI {
	b := &benchAPI{list: newFake(shards), shards: evenShards(shards, 0), seqs: make([]string, 4096)}
	for _, s := range b.shards {
		b.ids = append(b.ids, aws.String(s.id))
	}
	for i := range b.seqs {
		b.seqs[i] = fmt.Sprintf("49650000000000000000000000000000000000000000%012d", i)
	}
	return b
}

func (b *benchAPI) PutRecords(_ context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	out := &kinesis.PutRecordsOutput{Records: make([]types.PutRecordsResultEntry, len(in.Records))}
	n := b.n.Add(uint64(len(in.Records)))
	for i, e := range in.Records {
		var h shardmap.Hash
		if e.ExplicitHashKey != nil {
			h, _ = shardmap.ParseHash(*e.ExplicitHashKey)
		} else {
			h = shardmap.HashKey(*e.PartitionKey)
		}
		for j := range b.shards {
			if b.shards[j].rng.Contains(h) {
				out.Records[i] = types.PutRecordsResultEntry{ShardId: b.ids[j], SequenceNumber: &b.seqs[(n+uint64(i))%uint64(len(b.seqs))]}
				break
			}
		}
	}
	return out, nil
}

func (b *benchAPI) ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	return b.list.ListShards(ctx, in, optFns...)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkProducer measures the hot path per user record, from Put to a confirmed outcome,
// against a Kinesis that answers at once: 1,000 keys over 4 shards, no rate limits. ns/op is
// wall time per record; cpu-ns/op is process CPU time (every goroutine) per record; allocs/op
// and B/op are per record (allocs/record is the same count unrounded).
func BenchmarkProducer(b *testing.B) {
	for _, mode := range []struct {
		name string
		opts []Option
	}{
		{"aggregated", nil},
		{"plain", []Option{WithAggregation(false)}},
		{"plain-unordered", []Option{WithAggregation(false), WithOrdering(false)}},
		// With a listener attached (issue 10: at most 5% more per record than without).
		{"aggregated-listener", []Option{WithListener(events.NewSummary(100))}},
		{"plain-listener", []Option{WithAggregation(false), WithListener(events.NewSummary(100))}},
	} {
		for _, size := range []int{100, 1024} {
			b.Run(fmt.Sprintf("%s/%dB", mode.name, size), func(b *testing.B) {
				benchmarkProducer(b, size, mode.opts)
			})
		}
	}
}

func benchmarkProducer(b *testing.B, size int, opts []Option) {
	api := newBenchAPI(4)
	p, err := New(api, "bench", append([]Option{WithShardRateLimit(0, 0)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("partition-key-%d", i)
	}
	data := make([]byte, size)
	// Every outcome is checked: a ring of results, each waited for before its slot is reused.
	ring := make([]*Result, 1<<17)
	check := func(r *Result) {
		if o, err := r.Wait(ctx); err != nil || o.SequenceNumber == "" {
			b.Fatalf("outcome %+v, %v", o, err)
		}
	}
	if _, err := p.PutSync(ctx, "warm-up", data); err != nil { // the shard map is listed
		b.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mallocs0 := ms.Mallocs
	cpu0 := cpuTime()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		slot := i & (len(ring) - 1)
		if r := ring[slot]; r != nil {
			check(r)
		}
		r, err := p.Put(ctx, keys[i%len(keys)], data)
		if err != nil {
			b.Fatal(err)
		}
		ring[slot] = r
	}
	if err := p.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	for _, r := range ring {
		if r != nil {
			check(r)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.Mallocs-mallocs0)/float64(b.N), "allocs/record")
	if err := p.Close(ctx); err != nil {
		b.Fatal(err)
	}
}

// stalledAPI never answers PutRecords until released, so every record Put stays buffered.
type stalledAPI struct {
	*benchAPI
	release chan struct{}
}

func (s *stalledAPI) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.benchAPI.PutRecords(ctx, in, opts...)
}

// BenchmarkBufferedMemory reports the heap a record costs while it waits in the producer
// (its Result, its place in a shard's queue, its copy in an aggregate), for 100,000 records
// of 100 B over 1,000 keys that Kinesis does not answer yet. The caller's data slice is
// shared, so the figure is the producer's own memory: B/buffered-record.
func BenchmarkBufferedMemory(b *testing.B) {
	for _, mode := range []struct {
		name string
		opts []Option
	}{{"aggregated", nil}, {"plain", []Option{WithAggregation(false)}}} {
		b.Run(mode.name, func(b *testing.B) {
			const n = 100_000
			keys := make([]string, 1000)
			for i := range keys {
				keys[i] = fmt.Sprintf("partition-key-%d", i)
			}
			data := make([]byte, 100)
			var perRecord float64
			for b.Loop() {
				api := &stalledAPI{benchAPI: newBenchAPI(4), release: make(chan struct{})}
				p, err := New(api, "bench", append([]Option{WithShardRateLimit(0, 0), WithBufferLimits(2*n, 1<<30),
					WithCallTimeout(time.Hour)}, mode.opts...)...)
				if err != nil {
					b.Fatal(err)
				}
				results := make([]*Result, 0, n)
				var ms runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&ms)
				before := ms.HeapAlloc
				for i := range n {
					r, err := p.TryPut(keys[i%len(keys)], data)
					if err != nil {
						b.Fatal(err)
					}
					results = append(results, r)
				}
				time.Sleep(50 * time.Millisecond) // let the dispatcher take in the last records
				runtime.GC()
				runtime.ReadMemStats(&ms)
				perRecord = float64(int64(ms.HeapAlloc)-int64(before)) / n
				close(api.release)
				if err := p.Close(context.Background()); err != nil {
					b.Fatal(err)
				}
				if o, err := results[n-1].Wait(context.Background()); err != nil || o.SequenceNumber == "" {
					b.Fatalf("last outcome %+v, %v", o, err)
				}
			}
			b.ReportMetric(perRecord, "B/buffered-record")
		})
	}
}
