package consumer

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/kinesis/aggregation"
	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/events"
	"github.com/shardline/kinesis/internal/shardmap"
)

// benchReader returns a reader of a one-shard stream holding its lease in a memory store, as
// Run would set it up.
func benchReader(b *testing.B, opts ...Option) *shardReader {
	b.Helper()
	c, err := New(newFakeKinesis("bench", 1), "bench", checkpoint.NewMemory(), append([]Option{WithGroup("shardline")}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	c.startEvents()
	b.Cleanup(func() { _ = c.bus.Close(context.Background()) })
	key := checkpoint.ShardKey{Group: "shardline", Stream: "bench", Shard: "shardId-000000000000"}
	lease, err := c.store.TakeLease(context.Background(), key, c.cfg.workerID, 0)
	if err != nil {
		b.Fatal(err)
	}
	info := shardInfo{id: key.Shard, rng: shardmap.Range{End: shardmap.MaxHash}, open: true}
	return newShardReader(c, info, lease, TrimHorizon)
}

// benchRecords returns GetRecords output for n user records of size bytes over 1,000 keys,
// plain or packed in aggregates of per user records.
func benchRecords(n, size, per int) []types.Record {
	var out []types.Record
	seq := 1
	now := time.Now()
	data := func(i int) []byte { return make([]byte, size) }
	if per <= 1 {
		for i := 0; i < n; i++ {
			out = append(out, types.Record{Data: data(i), PartitionKey: aws.String("user-" + strconv.Itoa(i%1000)),
				SequenceNumber: aws.String(strconv.Itoa(seq)), ApproximateArrivalTimestamp: &now})
			seq++
		}
		return out
	}
	bld := aggregation.NewBuilder(0)
	for i := 0; i < n; i++ {
		bld.Add("user-"+strconv.Itoa(i%1000), "", data(i))
		if bld.Len() == per || i == n-1 {
			out = append(out, types.Record{Data: bld.AppendTo(nil), PartitionKey: aws.String("user-0"),
				SequenceNumber: aws.String(strconv.Itoa(seq)), ApproximateArrivalTimestamp: &now})
			seq++
			bld.Reset()
		}
	}
	return out
}

// benchDeliver measures the delivery path for one GetRecords response of 1,000 user records:
// deaggregation, the hash-range check, the handler call and the per-batch checkpoint.
func benchDeliver(b *testing.B, size, per int, opts ...Option) {
	r := benchReader(b, opts...)
	records := benchRecords(1000, size, per)
	handled := 0
	h := func(_ context.Context, batch *Batch) error { handled += len(batch.Records); return nil }
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r.handled, r.checkpointed = checkpoint.Position{}, checkpoint.Position{}
		if err := r.deliver(h, records, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if handled != 1000*b.N {
		b.Fatalf("handled %d records, want %d", handled, 1000*b.N)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(handled), "ns/record")
	b.ReportMetric(float64(testing.AllocsPerRun(10, func() {
		r.handled, r.checkpointed = checkpoint.Position{}, checkpoint.Position{}
		_ = r.deliver(h, records, 0)
	}))/1000, "allocs/record")
}

func BenchmarkDeliverPlain100B(b *testing.B)      { benchDeliver(b, 100, 1) }
func BenchmarkDeliverPlain1KiB(b *testing.B)      { benchDeliver(b, 1024, 1) }
func BenchmarkDeliverAggregated100B(b *testing.B) { benchDeliver(b, 100, 100) }

// With a listener attached (issue 10: at most 5% more per record than without).
func BenchmarkDeliverPlain100BListener(b *testing.B) {
	benchDeliver(b, 100, 1, WithListener(events.NewSummary(100)))
}
func BenchmarkDeliverAggregated100BListener(b *testing.B) {
	benchDeliver(b, 100, 100, WithListener(events.NewSummary(100)))
}
func BenchmarkDeliverAggregated1KiB(b *testing.B) { benchDeliver(b, 1024, 40) }
