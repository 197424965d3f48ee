package consumer

import (
	"context"
	"fmt"
	"time"

	"github.com/shardline/kinesis/checkpoint"
)

// Record is one user record: a plain Kinesis record, or one record of a KPL aggregate.
type Record struct {
	// Data is the record's payload. It is not reused by the consumer; a handler may keep it.
	Data []byte
	// PartitionKey is the user record's own key (inside an aggregate: its key-table entry).
	PartitionKey string
	// ExplicitHashKey is the user record's explicit hash key, or "" when none was set.
	ExplicitHashKey string
	// SequenceNumber is the Kinesis record's sequence number; user records of one aggregate
	// share it.
	SequenceNumber string
	// SubSequenceNumber is the index of the user record in its aggregate, 0 for a plain record.
	SubSequenceNumber int64
	// ShardID is the shard the record was read from.
	ShardID string
	// ApproximateArrivalTimestamp is when Kinesis accepted the Kinesis record.
	ApproximateArrivalTimestamp time.Time
	// Aggregated reports whether the record came out of a KPL aggregate.
	Aggregated bool
}

// Position returns the checkpoint position of r: checkpointing it marks r and every record
// before it in the shard processed.
func (r *Record) Position() checkpoint.Position {
	return checkpoint.Position{SequenceNumber: r.SequenceNumber, SubSequenceNumber: r.SubSequenceNumber}
}

// Batch is the records one GetRecords call returned for a shard, deaggregated, in order.
//
// Every batch is a new value: a handler may keep it after returning, pass it to another
// goroutine and checkpoint it from there later, as long as this worker holds the shard's
// lease; it always checkpoints exactly its own records. In CheckpointManual mode its Records
// slice is its own too. In the automatic modes (the handler accepted the batch by returning
// nil) the consumer reuses the Records slice for the next batch: copy the Record values you
// keep (their Data is never reused).
type Batch struct {
	ShardID string
	Records []Record
	// MillisBehindLatest is how far the batch's end is behind the tip of the shard.
	MillisBehindLatest int64

	shard       *shardReader // the tenure of the lease that delivered the batch
	first, last checkpoint.Position
}

// Checkpoint marks every record of the batch, and every record before it in the shard,
// processed. Handlers call it in CheckpointManual mode; in the other modes the consumer does it
// after the handler returns nil. It is safe to call from any goroutine, at any time, and
// checkpoints exactly this batch's last record, whatever batches were delivered since. Once
// the lease that delivered the batch is gone (lost, released, or this worker took the shard
// again since) it fails with an error matching ErrNotHeld and writes nothing. A checkpoint not
// after the stored one succeeds without a write.
func (b *Batch) Checkpoint(ctx context.Context) error {
	if b.shard == nil || b.last.IsZero() {
		return nil
	}
	return b.shard.checkpoint(ctx, b.last)
}

// CheckpointRecord marks r and every record before it in the shard processed. r must be one of
// this batch's records: a record of another shard or another batch fails with an error
// matching ErrForeignRecord and writes nothing. See Checkpoint for the rest.
func (b *Batch) CheckpointRecord(ctx context.Context, r Record) error {
	pos := r.Position()
	if b.shard == nil || r.ShardID != b.ShardID || pos.Validate() != nil ||
		pos.Compare(b.first) < 0 || pos.Compare(b.last) > 0 {
		return fmt.Errorf("%w: record %s of shard %s is not in this batch of shard %s (%s to %s)",
			ErrForeignRecord, pos.String(), r.ShardID, b.ShardID, b.first.String(), b.last.String())
	}
	return b.shard.checkpoint(ctx, pos)
}

// Handler processes one batch of a shard. The consumer calls it from the shard's goroutine,
// serially per shard, in sequence order, and concurrently across shards.
//
// Returning nil accepts the batch: in the automatic checkpoint modes its last record becomes
// the checkpoint. Returning an error hands the same batch again after a backoff, up to
// WithHandlerRetries times; then the failure policy (WithFailurePolicy) applies: retry this
// shard until the handler succeeds (the default), hand the batch to a dead-letter function
// and go on, or stop Run with a *HandlerError.
//
// ctx is cancelled when the shard's lease is lost (another worker owns the shard now: stop
// promptly, the work will be redone there) or when a graceful shutdown or handoff ran out of
// time. A handler must not call Run.
type Handler func(ctx context.Context, batch *Batch) error
