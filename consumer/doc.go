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
// checkpointed is delivered again: at most one batch per shard with CheckpointEveryBatch, at
// most one checkpoint interval with CheckpointInterval (whose timer writes pending progress
// even when no batch arrives). Within a shard, and so within a partition key, records arrive
// in order, across resharding too: a child shard is read only after every parent is finished.
// In manual mode a shard is finished only when every record handed out was checkpointed; a
// shutdown or handoff before that keeps what was checkpointed and the next owner delivers the
// rest. A final checkpoint that cannot be written at shutdown makes Run return a
// *FinalCheckpointError naming the shards.
//
// Every Batch is a new value: a handler may keep it and call its Checkpoint from any
// goroutine later; it checkpoints exactly that batch, and fails with ErrNotHeld (writing
// nothing) once the lease that delivered it is gone. In the automatic checkpoint modes the
// Records slice is reused for the next batch (copy the Record values you keep); record Data
// is never reused.
//
// # Handler
//
// The handler is called from the shard's goroutine, serially per shard, concurrently across
// shards. Aggregated (KPL) records arrive as their user records with sub-sequence numbers;
// user records whose hash key is outside the shard's range are dropped, as the KCL does, and
// counted in consumer_records_skipped_total. A handler error hands the same batch again after
// a backoff; after WithHandlerRetries attempts the failure policy applies: by default the
// shard keeps retrying alone while the others go on (RetryShard); DeadLetterOnFailure hands
// the batch to a function of yours and goes on; StopOnFailure stops Run with a *HandlerError.
// The handler's context is cancelled when the shard's lease is lost.
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
// balancing run takes free and expired leases first (closed shards, which hold children back,
// before open ones); a worker still short asks the most loaded workers for handoffs, several
// at once: each owner finishes its batch, checkpoints and releases, and the claimant takes the
// lease. An owner that ignores a request for a lease duration loses the lease by force. On
// shutdown, a worker checkpoints and releases every lease, so the others take over at once
// rather than after the lease duration. Balancing decides apart from doing: each run observes
// the store, the registry and the shard list, a pure policy plans the takes and handoffs, and
// the run applies the plan.
//
// Worker IDs must be unique in a group (the default, host name, process ID and a random
// suffix, is). A worker restarted with its ID after a crash takes its old leases at once;
// two live processes with one ID are told apart by a per-run instance value in the heartbeat,
// and the one that started later stops with ErrDuplicateWorker within a lease duration.
//
// # Resharding
//
// Shards are listed with paginated ListShards. A shard is ready when every parent
// (ParentShardId, AdjacentParentShardId) is finished (SHARD_END in the store) or has left the
// stream's retention, which only a listing that holds the child and lacks the parent can
// show. When a reader reaches a shard's end it marks it finished and passes the ChildShards
// of the last GetRecords to the coordinator, which starts ready children at once; a child
// naming a parent this worker has not listed yet waits for a listing, made at once; a shard
// that ends without naming children (kinesalite never does) triggers a listing too. A lease
// row of a shard the worker does not know also triggers a listing, and the row of a finished
// shard is deleted only when a listing made after the rows were read lacks the shard.
// A child whose parents this group read starts at TRIM_HORIZON; with Latest, shards that
// closed before the group first read them are skipped with their whole closed lineage.
//
// # Recovery
//
// Throttling and service errors back off per shard with capped exponential backoff and
// jitter. An expired iterator is replaced by one at the last record read (never at the start
// position). Errors retrying cannot fix (missing stream, access denied, KMS, a missing
// DynamoDB table) stop Run with a *FatalError, as does a store or stream that cannot be
// reached when Run starts (within seconds). An outage of the store that begins later is
// retried, logged at WARN, counted in consumer_store_errors_total and shown in Status; it
// stops Run only past WithMaxStoreOutage.
package consumer
