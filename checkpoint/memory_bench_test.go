package checkpoint_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/shardline/kinesis/checkpoint"
)

const benchSeq = "49590338271490256608559692538361571095921575989136588898"

func benchLease(b *testing.B, s *checkpoint.Memory, shard string) checkpoint.Lease {
	b.Helper()
	key := checkpoint.ShardKey{Group: "bench", Stream: "orders", Shard: shard}
	l, err := s.TakeLease(context.Background(), key, "worker", 0)
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// BenchmarkMemoryCheckpoint measures one checkpoint of a new position (a 56-digit sequence
// number, the sub-sequence moving forward), the consumer's per-batch write.
func BenchmarkMemoryCheckpoint(b *testing.B) {
	s := checkpoint.NewMemory()
	l := benchLease(b, s, "shardId-000000000000")
	ctx := context.Background()
	b.ReportAllocs()
	var i int64
	for b.Loop() {
		i++
		if err := s.Checkpoint(ctx, l, checkpoint.Position{SequenceNumber: benchSeq, SubSequenceNumber: i}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemoryRenewLease measures one renewal, the lease loop's write.
func BenchmarkMemoryRenewLease(b *testing.B) {
	s := checkpoint.NewMemory()
	l := benchLease(b, s, "shardId-000000000000")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if l, err = s.RenewLease(ctx, l); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemoryParallel measures checkpoints and renewals of many shards at once, each
// goroutine a shard worker: the cost of the store's single lock under contention.
func BenchmarkMemoryParallel(b *testing.B) {
	s := checkpoint.NewMemory()
	ctx := context.Background()
	var shards atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		key := checkpoint.ShardKey{Group: "bench", Stream: "orders", Shard: fmt.Sprintf("shardId-%012d", shards.Add(1))}
		l, err := s.TakeLease(ctx, key, "worker", 0)
		if err != nil {
			b.Error(err)
			return
		}
		var i int64
		for pb.Next() {
			i++
			if i%8 == 0 { // a renewal every few checkpoints
				if l, err = s.RenewLease(ctx, l); err != nil {
					b.Error(err)
					return
				}
				continue
			}
			if err := s.Checkpoint(ctx, l, checkpoint.Position{SequenceNumber: benchSeq, SubSequenceNumber: i}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
