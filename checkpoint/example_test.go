package checkpoint_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shardline/kinesis/checkpoint"
)

// A worker takes a shard's lease and checkpoints; another worker, judging the lease expired,
// takes it over, after which the first worker's writes are refused.
func ExampleMemory() {
	ctx := context.Background()
	store := checkpoint.NewMemory()
	key := checkpoint.ShardKey{Group: "billing", Stream: "orders", Shard: "shardId-000000000000"}

	a, err := store.TakeLease(ctx, key, "worker-a", 0)
	if err != nil {
		panic(err)
	}
	fmt.Println("owner:", a.Owner, "counter:", a.Counter)
	_ = store.Checkpoint(ctx, a, checkpoint.Position{SequenceNumber: "49590338271490256608559692538361571095921575989136588898"})

	// worker-b read the row and judged it expired: it takes it with the counter it read.
	read, _ := store.GetLease(ctx, key)
	b, err := store.TakeLease(ctx, key, "worker-b", read.Counter)
	if err != nil {
		panic(err)
	}
	fmt.Println("owner:", b.Owner, "counter:", b.Counter, "checkpoint:", b.Checkpoint)

	err = store.Checkpoint(ctx, a, checkpoint.Position{SequenceNumber: "49590338271490256608559692538361571095921575989136588899"})
	fmt.Println("worker-a lost the lease:", errors.Is(err, checkpoint.ErrLeaseLost))

	err = store.Checkpoint(ctx, b, checkpoint.Position{SequenceNumber: "4959"})
	fmt.Println("positions never move back:", errors.Is(err, checkpoint.ErrPositionBehind))

	// Output:
	// owner: worker-a counter: 1
	// owner: worker-b counter: 2 checkpoint: 49590338271490256608559692538361571095921575989136588898/0
	// worker-a lost the lease: true
	// positions never move back: true
}

// An observer judges a lease by its counter on its own clock: renewals keep it live, and a
// counter that stays the same for the lease duration means the owner is gone.
func ExampleLiveness() {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	live := checkpoint.NewLiveness(10*time.Second, func() time.Time { return now })

	fmt.Println(live.Observe("shardId-000000000000", 7)) // first sight: live
	now = now.Add(6 * time.Second)
	fmt.Println(live.Observe("shardId-000000000000", 8)) // renewed: live
	now = now.Add(9 * time.Second)
	fmt.Println(live.Observe("shardId-000000000000", 8)) // unchanged for 9s: live
	now = now.Add(time.Second)
	fmt.Println(live.Observe("shardId-000000000000", 8)) // unchanged for 10s: expired

	// Output:
	// false
	// false
	// false
	// true
}
