package consumer

import (
	"context"
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
// The Batch and its Records slice are reused once the handler returns: copy the Record values
// you keep (their Data is never reused).
type Batch struct {
	ShardID string
	Records []Record
	// MillisBehindLatest is how far the batch's end is behind the tip of the shard.
	MillisBehindLatest int64

	shard *shardReader
}

// Checkpoint marks every record of the batch processed. Handlers call it in CheckpointManual
// mode; in the other modes the consumer does it after the handler returns nil. It may be
// called from any goroutine while the lease is held, and fails with an error matching
// ErrNotHeld once the lease is gone.
func (b *Batch) Checkpoint(ctx context.Context) error {
	if len(b.Records) == 0 {
		return nil
	}
	return b.shard.checkpoint(ctx, b.Records[len(b.Records)-1].Position())
}

// CheckpointRecord marks r and every record before it in the shard processed. r must come from
// this shard. See Checkpoint for when to call it.
func (b *Batch) CheckpointRecord(ctx context.Context, r Record) error {
	return b.shard.checkpoint(ctx, r.Position())
}

// Handler processes one batch of a shard. The consumer calls it from the shard's goroutine,
// serially per shard, in sequence order, and concurrently across shards.
//
// Returning nil accepts the batch: in the automatic checkpoint modes its last record becomes
// the checkpoint. Returning an error hands the same batch again after a backoff, up to
// WithHandlerRetries times, after which Run stops with a *HandlerError.
//
// ctx is cancelled when the shard's lease is lost (another worker owns the shard now: stop
// promptly, the work will be redone there) or when a graceful shutdown or handoff ran out of
// time. A handler must not call Run.
type Handler func(ctx context.Context, batch *Batch) error
