package redis

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/shardline/kinesis/checkpoint"
)

// benchShard numbers the leases benchmarks take, so every run of a benchmark function (the
// framework calls it several times while it sizes b.N) works on a fresh row.
var benchShard atomic.Int64

// benchParallelism multiplies GOMAXPROCS for the parallel benchmarks: store calls wait on the
// network, so more goroutines than cores keep the client's pool busy.
const benchParallelism = 8

func benchLease(s *Store) (checkpoint.Lease, error) {
	key := checkpoint.ShardKey{Group: "bench", Stream: "s", Shard: fmt.Sprint("shard-", benchShard.Add(1))}
	return s.TakeLease(context.Background(), key, "w", 0)
}

func opsPerSecond(b *testing.B, unit string) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, unit)
	}
}

// BenchmarkCheckpoint measures conditional checkpoint writes on loopback: one caller in
// sequence (round-trip bound), and many goroutines sharing one client, each on its own lease.
func BenchmarkCheckpoint(b *testing.B) {
	s, _, _ := newTestStore(b)
	ctx := context.Background()
	b.Run("sequential", func(b *testing.B) {
		l, err := benchLease(s)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			n++
			if err := s.Checkpoint(ctx, l, checkpoint.Position{SequenceNumber: strconv.Itoa(n)}); err != nil {
				b.Fatal(err)
			}
		}
		opsPerSecond(b, "writes/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(benchParallelism)
		b.RunParallel(func(pb *testing.PB) {
			l, err := benchLease(s)
			if err != nil {
				b.Error(err)
				return
			}
			for n := 1; pb.Next(); n++ {
				if err := s.Checkpoint(ctx, l, checkpoint.Position{SequenceNumber: strconv.Itoa(n)}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		opsPerSecond(b, "writes/s")
	})
}

// BenchmarkRenew measures lease renewals (a conditional write that returns the row) the same
// two ways.
func BenchmarkRenew(b *testing.B) {
	s, _, _ := newTestStore(b)
	ctx := context.Background()
	b.Run("sequential", func(b *testing.B) {
		l, err := benchLease(s)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if l, err = s.RenewLease(ctx, l); err != nil {
				b.Fatal(err)
			}
		}
		opsPerSecond(b, "renewals/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(benchParallelism)
		b.RunParallel(func(pb *testing.PB) {
			l, err := benchLease(s)
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
		opsPerSecond(b, "renewals/s")
	})
}
