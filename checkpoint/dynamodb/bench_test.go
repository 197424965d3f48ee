package dynamodb_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/shardline/kinesis/checkpoint"
	ddbstore "github.com/shardline/kinesis/checkpoint/dynamodb"
	"github.com/shardline/kinesis/localstack"
)

// benchParallelism × GOMAXPROCS goroutines run the parallel benchmarks, each on a shard of
// its own, as a consumer runs one goroutine per owned shard.
const benchParallelism = 8

var benchShard atomic.Int64

// benchLease takes a lease of a shard no other benchmark iteration uses.
func benchLease(ctx context.Context, s *ddbstore.Store) (checkpoint.Lease, error) {
	key := checkpoint.ShardKey{Group: "bench", Stream: "stream", Shard: fmt.Sprintf("shardId-%012d", benchShard.Add(1))}
	return s.TakeLease(ctx, key, "bench-worker", 0)
}

// BenchmarkCheckpoint measures conditional checkpoint writes (one UpdateItem each) against
// the local DynamoDB on loopback.
func BenchmarkCheckpoint(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	b.Run("sequential", func(b *testing.B) {
		l, err := benchLease(ctx, s)
		if err != nil {
			b.Fatal(err)
		}
		var n int64
		for b.Loop() {
			n++
			if err := s.Checkpoint(ctx, l, pos(strconv.FormatInt(n, 10), 0)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checkpoints/s")
	})
	b.Run(fmt.Sprintf("parallel-%dx", benchParallelism), func(b *testing.B) {
		b.SetParallelism(benchParallelism)
		b.RunParallel(func(pb *testing.PB) {
			l, err := benchLease(ctx, s)
			if err != nil {
				b.Error(err)
				return
			}
			var n int64
			for pb.Next() {
				n++
				if err := s.Checkpoint(ctx, l, pos(strconv.FormatInt(n, 10), 0)); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checkpoints/s")
	})
}

// BenchmarkRenew measures lease renewals (one conditional UpdateItem returning the row).
func BenchmarkRenew(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	b.Run("sequential", func(b *testing.B) {
		l, err := benchLease(ctx, s)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if l, err = s.RenewLease(ctx, l); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "renewals/s")
	})
	b.Run(fmt.Sprintf("parallel-%dx", benchParallelism), func(b *testing.B) {
		b.SetParallelism(benchParallelism)
		b.RunParallel(func(pb *testing.PB) {
			l, err := benchLease(ctx, s)
			if err != nil {
				b.Error(err)
				return
			}
			for pb.Next() {
				if l, err = s.RenewLease(ctx, l); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "renewals/s")
	})
}

func benchStore(b *testing.B) *ddbstore.Store {
	b.Helper()
	client := localstack.DynamoDB(b)
	s, err := ddbstore.New(client, newTable(b, client))
	if err != nil {
		b.Fatal(err)
	}
	return s
}
