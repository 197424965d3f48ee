package producer

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/shardline/kinesis/internal/shardmap"
)

// Outcome is how a record ended: delivered (Err nil, ShardID and SequenceNumber set) or failed
// (Err says why).
type Outcome struct {
	// ShardID is the shard Kinesis stored the record on.
	ShardID string
	// SequenceNumber is the sequence number of the Kinesis record that carried the user record.
	// User records of one aggregate share it and differ by SubSequence.
	SequenceNumber string
	// SubSequence is the record's index within its aggregate (the KCL's sub-sequence number),
	// 0 for a record sent plain.
	SubSequence int
	// Aggregated reports whether the record travelled inside a KPL aggregate.
	Aggregated bool
	// Attempts is the number of PutRecords requests that carried the record.
	Attempts int
	// Err is nil for a delivered record. Otherwise it is an *EntryError (Kinesis refused the
	// record), a *RetryBudgetError (retries did not succeed in time), a request error that
	// retrying cannot fix (errors.As reaches the AWS exception, such as
	// *types.ResourceNotFoundException), or ErrClosed wrapped with the context error of the
	// Close that gave up on it.
	//
	// Whatever the cause, errors.Is(Err, ErrMaybeWritten) reports whether Kinesis may have
	// stored the record all the same: true when any attempt that carried it ended without a
	// known result (a request timeout, a connection broken after sending, a 5xx answer, a
	// request in flight when Close gave up); false when every attempt was surely refused or
	// never made.
	Err error
}

// Result is the future of one accepted record: it completes exactly once, when the record is
// delivered or finally fails. It is safe for concurrent use.
type Result struct {
	// Written by Put before the record is handed on; read-only afterwards, except accepted
	// (stamped by the dispatcher when it takes the record in), data (dropped once the outcome is
	// known so that a kept Result does not pin the caller's buffer) and attempts, sent and
	// maybe (see entry.fold), each written by one goroutine at a time, handed over through
	// channels.
	//
	// The fields are ordered and sized to keep a Result at 216 bytes: one is allocated per
	// record (in slabs, see buffer.newResult).
	rec      Record
	hash     shardmap.Hash
	accepted time.Time
	gen      *flushGen // the Flush generation the record counts in
	// sent is the time from accepted to the first PutRecords attempt that carried the record,
	// plus one nanosecond; 0 before that attempt (see firstSentAgo).
	sent     time.Duration
	size     int32 // len(rec.PartitionKey) + len(rec.Data): what the buffer and Kinesis count
	attempts int32
	// attrs are the attributes of Put's context (events.WithAttrs), for the record's events;
	// set only when the producer has listeners and the context carries some.
	attrs *[]slog.Attr

	// ch is nil until someone asks for Done or the outcome is known: then the channel Done
	// returns, closed at completion (completedCh if nobody asked before). state says whether
	// the outcome is known (completeDone); out is written before, so a reader that sees
	// completeDone sees out. No lock: completing a record is on the hot path.
	state atomic.Int32
	maybe bool // an attempt that carried it ended without a known result
	ch    atomic.Pointer[chan struct{}]
	out   Outcome
}

// firstSentAgo returns the time since the record's first attempt: the age its retry budget
// counts. For a record never sent (no shard map yet), it is the time since it was accepted.
func (r *Result) firstSentAgo(now time.Time) time.Duration {
	if r.sent == 0 {
		return now.Sub(r.accepted)
	}
	return now.Sub(r.accepted) - (r.sent - 1)
}

// Result.state values.
const (
	completePending int32 = iota
	completeWriting
	completeDone
)

// closedChan is what Done returns for a Result that completed before anyone asked for a
// channel: completed Results then cost no channel at all.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

var completedCh = &closedChan

// Done returns a channel that is closed when the outcome is known; every call returns the
// same channel.
func (r *Result) Done() <-chan struct{} {
	if p := r.ch.Load(); p != nil {
		return *p
	}
	c := make(chan struct{})
	if r.ch.CompareAndSwap(nil, &c) {
		return c
	}
	return *r.ch.Load() // completed, or another caller made the channel first
}

// Outcome returns the outcome and true if it is known, without waiting.
func (r *Result) Outcome() (Outcome, bool) {
	if r.state.Load() != completeDone {
		return Outcome{}, false
	}
	return r.out, true
}

// Wait waits for the outcome or for ctx to end. It returns the outcome and its Err, or, if
// ctx ended first, a zero Outcome and an error matching both ErrWaitAbandoned and ctx's
// error: the record goes on regardless, and its outcome can still be waited for.
//
// Test the error in this order, because one error can match several of these: a record that
// Close gave up on matches ErrClosed and Close's context error (context.DeadlineExceeded,
// say), which an abandoned wait on a timed-out request context matches too.
//
//	o, err := res.Wait(ctx)
//	switch {
//	case err == nil: // delivered: o.ShardID, o.SequenceNumber
//	case errors.Is(err, producer.ErrWaitAbandoned): // we stopped waiting; the outcome is unknown
//	case errors.Is(err, producer.ErrClosed): // the producer shut down before delivering it
//	case errors.Is(err, producer.ErrMaybeWritten): // failed, yet Kinesis may hold it
//	default: // failed and not written: *EntryError, *RetryBudgetError, a fatal AWS error
//	}
func (r *Result) Wait(ctx context.Context) (Outcome, error) {
	if o, ok := r.Outcome(); ok {
		return o, o.Err
	}
	select {
	case <-r.Done():
		o, _ := r.Outcome()
		return o, o.Err
	case <-ctx.Done():
		return Outcome{}, fmt.Errorf("%w: %w", ErrWaitAbandoned, ctx.Err())
	}
}

// complete sets the outcome; only the first call has an effect, and it reports whether it
// was the first.
func (r *Result) complete(o Outcome) bool {
	if !r.state.CompareAndSwap(completePending, completeWriting) {
		return false
	}
	r.out = o
	r.state.Store(completeDone)
	for {
		if p := r.ch.Load(); p != nil {
			close(*p) // Done made it: close that one, so Done keeps returning it
			return true
		}
		if r.ch.CompareAndSwap(nil, completedCh) {
			return true
		}
	}
}
