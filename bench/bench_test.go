package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shardline/kinesis/bench/compare"
	"github.com/shardline/kinesis/bench/fake"
	"github.com/shardline/kinesis/bench/hashkey"
	"github.com/shardline/kinesis/bench/workload"
)

// benchRecords is the size of every benchmark's stream or producer run.
const benchRecords = 50000

// report publishes a comparison result as benchmark metrics and fails the benchmark when a
// record went missing, came twice or landed on the wrong shard.
func report(b *testing.B, r compare.Result) {
	b.Helper()
	if r.Err != nil || r.Errors != 0 || r.Misplaced > 0 {
		b.Fatalf("%s %s: %d errors, %d misplaced (%s), err %v", r.Library, r.Workload, r.Errors, r.Misplaced, r.Check, r.Err)
	}
	b.ReportMetric(r.RecordsPerSec(), "records/s")
	b.ReportMetric(r.CPUPerRecord(), "cpu-µs/record")
	b.ReportMetric(r.AllocsPerRecord(), "allocs/record")
}

// BenchmarkConsumer reads the same pre-built stream (4 shards, 50,000 user records over 1,000
// keys, plain and KPL-aggregated) with each consumer through the in-process fake. The CPU and
// allocation figures include the fake's own work, which is the same for every library.
func BenchmarkConsumer(b *testing.B) {
	srv := fake.New()
	url := srv.Start()
	defer srv.Close()
	ctx := context.Background()
	for _, size := range []int{100, 1024} {
		for _, agg := range []bool{false, true} {
			spec := workload.Spec{Records: benchRecords, Size: size, Keys: 1000}
			name := fmt.Sprintf("plain-%dB", size)
			if agg {
				name = fmt.Sprintf("aggregated-%dB", size)
			}
			if _, err := srv.Load(ctx, fake.LoadRequest{Stream: name, Shards: 4, Spec: spec, Aggregate: agg}); err != nil {
				b.Fatal(err)
			}
			for _, lib := range compare.ConsumerLibs() {
				b.Run(name+"/"+lib.Name, func(b *testing.B) {
					for b.Loop() {
						report(b, compare.RunConsumer(ctx, lib, compare.ConsumerRun{
							Endpoint: url, Stream: name, Records: benchRecords, Aggregated: agg, Workload: name,
						}))
					}
				})
			}
			_ = srv.Delete(ctx, name)
		}
	}
}

// BenchmarkProducer puts the same 50,000 records (over 1,000 keys, aggregation on) with each
// producer into a fresh 4-shard stream of the in-process fake, which checks every entry. The
// CPU and allocation figures include the fake's work (decoding and checking every entry),
// the same for every library.
func BenchmarkProducer(b *testing.B) {
	srv := fake.New()
	url := srv.Start()
	defer srv.Close()
	ctx := context.Background()
	for _, size := range []int{100, 1024} {
		ds, err := compare.NewDataset(workload.Spec{Records: benchRecords, Size: size, Keys: 1000})
		if err != nil {
			b.Fatal(err)
		}
		for _, lib := range compare.ProducerLibs() {
			b.Run(fmt.Sprintf("%dB/%s", size, lib.Name), func(b *testing.B) {
				n := 0
				for b.Loop() {
					n++
					stream := fmt.Sprintf("producer-%d", n)
					if err := srv.Create(ctx, fake.CreateRequest{Stream: stream, Shards: 4, Expect: benchRecords}); err != nil {
						b.Fatal(err)
					}
					r := compare.RunProducer(ctx, lib, compare.ProducerRun{
						Endpoint: url, Stream: stream, Data: ds, Workload: workload.SizeName(size),
						Timeout: 2 * time.Minute, Ranges: hashkey.Even(4),
						Verify: func(ctx context.Context) (compare.Placement, error) {
							st, err := srv.Stats(ctx, stream)
							return compare.Placement{Misplaced: st.Misplaced, Missing: st.Missing, Duplicates: st.Duplicates, Foreign: st.Foreign + st.Malformed}, err
						},
					})
					_ = srv.Delete(ctx, stream)
					if lib.Name == "a8m" {
						// a8m sends every aggregate under its first record's key: misplaced
						// records are what this comparison measures, not a failure.
						b.ReportMetric(float64(r.Misplaced)/float64(benchRecords), "misplaced/record")
						r.Misplaced = 0
					}
					report(b, r)
				}
			})
		}
	}
}
