package redis_test

import (
	"context"
	"errors"
	"log"

	goredis "github.com/redis/go-redis/v9"

	"github.com/shardline/kinesis/checkpoint"
	redisstore "github.com/shardline/kinesis/checkpoint/redis"
)

// A worker takes the lease of a shard, checkpoints what it processed, and hands the lease back
// with a final checkpoint when it stops. The example needs a Redis server, so it is compiled
// but not run.
func Example() {
	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()
	store, err := redisstore.New(client, redisstore.WithPrefix("example"))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	key := checkpoint.ShardKey{Group: "billing", Stream: "orders", Shard: "shardId-000000000000"}

	counter := int64(0) // no row yet
	if l, err := store.GetLease(ctx, key); err == nil {
		counter = l.Counter // free, or judged expired by a checkpoint.Liveness
	} else if !errors.Is(err, checkpoint.ErrNotFound) {
		log.Fatal(err) // ErrUnavailable: retry later; never "start from scratch"
	}
	lease, err := store.TakeLease(ctx, key, "worker-1", counter)
	if errors.Is(err, checkpoint.ErrConflict) {
		return // another worker was faster
	} else if err != nil {
		log.Fatal(err)
	}

	pos := checkpoint.Position{SequenceNumber: "49590338271490256608559692538361571095921575989136588898"}
	switch err := store.Checkpoint(ctx, lease, pos); {
	case errors.Is(err, checkpoint.ErrLeaseLost):
		return // stolen: stop processing the shard at once
	case err != nil:
		log.Fatal(err)
	}
	if lease, err = store.RenewLease(ctx, lease); err != nil { // from the renewal loop
		log.Fatal(err)
	}
	if err := store.ReleaseLease(ctx, lease, pos); err != nil {
		log.Fatal(err)
	}
}

// Clusters need nothing special: all keys of one group and stream share a hash tag.
func ExampleNew_cluster() {
	client := goredis.NewClusterClient(&goredis.ClusterOptions{
		Addrs: []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"},
	})
	defer client.Close()
	store, err := redisstore.New(client)
	if err != nil {
		log.Fatal(err)
	}
	_ = store
}
