// Package consumer reads a Kinesis data stream as one worker of a consumer group: shards are
// shared out through leases in a checkpoint store, each held shard is read by its own
// goroutine, records are deaggregated and handed to your handler, and positions are
// checkpointed after the handler accepts them.
//
//	cfg, _ := config.LoadDefaultConfig(ctx)
//	store, _ := redis.New(goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"}))
//	c, err := consumer.New(kinesis.NewFromConfig(cfg), "orders", store,
//		consumer.WithGroup("billing"))
//	if err != nil {
//		return err
//	}
//	err = c.Run(ctx, func(ctx context.Context, b *consumer.Batch) error {
//		for _, r := range b.Records {
//			if err := bill(ctx, r.PartitionKey, r.Data); err != nil {
//				return err // the batch is handed again after a backoff
//			}
//		}
//		return nil // checkpointed
//	})
//
// # Guarantees
//
// Delivery is at least once. A record is checkpointed only after the handler returned nil for
// it (or, in manual mode, when the handler checkpointed it). After a graceful shutdown or
// handoff nothing is delivered twice; after a crash, what was handled and not yet
// checkpointed is delivered again: at most one batch per shard with CheckpointEveryBatch.
// Within a shard, and so within a partition key, records arrive in order, across resharding
// too: a child shard is read only after every parent is finished.
//
// # Handler
//
// The handler is called from the shard's goroutine, serially per shard, concurrently across
// shards. Aggregated (KPL) records arrive as their user records with sub-sequence numbers;
// user records whose hash key is outside the shard's range are dropped, as the KCL does, and
// counted in consumer_records_skipped_total. A handler error hands the same batch again after
// a backoff; after WithHandlerRetries attempts Run stops with a *HandlerError. The handler's
// context is cancelled when the shard's lease is lost.
//
// # Leases and balancing
//
// Each shard has a lease row in the store (see package checkpoint). A lease is renewed by a
// loop that does not wait for handlers; its liveness is judged the KCL way, by other workers
// watching its counter on their own clocks, so host clocks need not agree. Every checkpoint
// and release is conditional on the holder's tenure token: a worker that lost a lease cannot
// overwrite the new owner's checkpoint, and its shard is cancelled when it notices.
//
// Workers heartbeat into the store and aim at ceil(ready shards / live workers) leases. A
// balancing run takes free and expired leases first; a worker still short asks the most
// loaded worker to hand one lease over: the owner finishes its batch, checkpoints and
// releases, and the claimant takes it. An owner that ignores the request for a lease duration
// loses the lease by force. On shutdown, a worker checkpoints and releases every lease, so
// the others take over at once rather than after the lease duration.
//
// # Resharding
//
// Shards are listed with paginated ListShards. A shard is ready when every parent
// (ParentShardId, AdjacentParentShardId) is finished (SHARD_END in the store) or has left the
// stream's retention. When a reader reaches a shard's end it marks it finished and passes the
// ChildShards of the last GetRecords to the coordinator, which starts ready children at once.
// A child whose parents this group read starts at TRIM_HORIZON; with Latest, shards that
// closed before the group first read them are skipped with their whole closed lineage.
//
// # Recovery
//
// Throttling and service errors back off per shard with capped exponential backoff and
// jitter. An expired iterator is replaced by one at the last record read (never at the start
// position). Errors retrying cannot fix (missing stream, access denied, KMS) stop Run with a
// *FatalError.
package consumer
