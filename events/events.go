// Package events is Shardline's lifecycle event catalog: one typed Event for everything a
// producer or consumer goes through (a record retried or failed, a lease taken or lost, a
// checkpoint written, a store outage), delivered to the listeners you register with
// producer.WithListener and consumer.WithListener. Two ready-made listeners: NewLogger writes
// each event as one structured log line, NewSummary keeps counts and the last events for a
// status page.
//
//	summary := events.NewSummary(100)
//	c, err := consumer.New(client, "orders", store, consumer.WithGroup("billing"),
//		consumer.WithListener(summary),
//		consumer.WithListener(events.NewLogger(slog.Default(), slog.LevelInfo)))
//	...
//	json.NewEncoder(w).Encode(summary.Snapshot())
//
// Events are emitted from the same places as the metrics of package metrics, so the two never
// disagree. Request-scoped values travel with them: attributes put on a context with WithAttrs
// (a request ID, a tenant) are copied into the events of the calls made with that context,
// and ContextHandler adds them to log lines written with it.
package events

import (
	"context"
	"log/slog"
	"time"
)

// Type names a kind of event; see Catalog for what each means.
type Type string

// Producer events.
const (
	RecordRetried     Type = "producer.record_retried"      // user records sent again after a retryable failure (Records)
	EntryThrottled    Type = "producer.entry_throttled"     // a PutRecords entry or request refused with a throttling error
	RequestFailed     Type = "producer.request_failed"      // a PutRecords call failed as a whole (Err); its records are retried or fail
	RecordFailed      Type = "producer.record_failed"       // a user record finally failed (Err, MaybeWritten)
	ShardMapRefreshed Type = "producer.shard_map_refreshed" // the shard map was listed again (Detail: shards)
	FlushDone         Type = "producer.flush_done"          // Flush returned (Duration, Records failed, Err)
	ProducerClosed    Type = "producer.closed"              // Close finished (Duration, Records failed, Err)
)

// Consumer events.
const (
	WorkerStarted     Type = "consumer.worker_started"     // Run began
	WorkerStopped     Type = "consumer.worker_stopped"     // Run returned (Err)
	LeaseAcquired     Type = "consumer.lease_acquired"     // a lease was taken (Detail: how, previous owner)
	LeaseRenewFailed  Type = "consumer.lease_renew_failed" // a renewal failed without losing the lease yet (Err)
	LeaseLost         Type = "consumer.lease_lost"         // the lease is gone; the shard's handler was cancelled (Err)
	LeaseStolen       Type = "consumer.lease_stolen"       // a lease was taken from a live worker to balance the group
	LeaseReleased     Type = "consumer.lease_released"     // a lease was given back (Detail: reason and checkpoint)
	HandoffRequested  Type = "consumer.handoff_requested"  // this worker asked another for a lease (Detail: owner)
	HandoffCompleted  Type = "consumer.handoff_completed"  // this worker released a lease another asked for
	ShardStarted      Type = "consumer.shard_started"      // a reader started on a shard (Detail: start position)
	ShardFinished     Type = "consumer.shard_finished"     // a shard was read to its end and marked SHARD_END
	ReshardDetected   Type = "consumer.reshard_detected"   // the stream was resharded (Records: reshards)
	CheckpointWritten Type = "consumer.checkpoint_written" // the store accepted a checkpoint (Sequence, SubSequence)
	CheckpointFailed  Type = "consumer.checkpoint_failed"  // a checkpoint write failed (Err, Sequence, SubSequence)
	HandlerFailed     Type = "consumer.handler_failed"     // the handler returned an error (Attempt, Err)
	HandlerRetried    Type = "consumer.handler_retried"    // a failed batch is handed to the handler again (Attempt)
	DeadLettered      Type = "consumer.dead_lettered"      // a batch went to the dead-letter function (Records, Err)
	RecordSkipped     Type = "consumer.record_skipped"     // a record was not delivered on purpose (Detail: decode or out of range)
	IteratorExpired   Type = "consumer.iterator_expired"   // GetRecords answered ExpiredIteratorException
	IteratorRecovered Type = "consumer.iterator_recovered" // a new iterator was taken after the last record read
	StoreUnavailable  Type = "consumer.store_unavailable"  // the checkpoint store stopped answering (Err)
	StoreRecovered    Type = "consumer.store_recovered"    // the checkpoint store answers again (Duration: the outage)
	Fatal             Type = "consumer.fatal"              // Run stops with an error (Err)
)

// Outcome classes an event type for summaries: a success, a failure, or neither.
type Outcome int

// Outcomes.
const (
	Neutral Outcome = iota
	Success
	Failure
)

// Desc describes one event type.
type Desc struct {
	Type    Type
	Source  string // "producer" or "consumer"
	Outcome Outcome
	Help    string
}

// Catalog lists every event type Shardline emits.
var Catalog = []Desc{
	{RecordRetried, "producer", Neutral, "User records sent again after a retryable failure; Records says how many."},
	{EntryThrottled, "producer", Neutral, "A PutRecords entry or request was refused with a throttling error."},
	{RequestFailed, "producer", Failure, "A PutRecords call failed as a whole; its records are retried or fail."},
	{RecordFailed, "producer", Failure, "User records finally failed (Records, Err); MaybeWritten says Kinesis may hold them anyway."},
	{ShardMapRefreshed, "producer", Neutral, "The producer listed the stream's shards again."},
	{FlushDone, "producer", Success, "Flush returned; Records counts the records it waited for that failed, Err is Flush's error."},
	{ProducerClosed, "producer", Neutral, "Close finished; Records counts records that failed, Err is Close's error."},
	{WorkerStarted, "consumer", Neutral, "Run began."},
	{WorkerStopped, "consumer", Neutral, "Run returned; Err is its error."},
	{LeaseAcquired, "consumer", Success, "This worker took a lease; Detail says how and from whom."},
	{LeaseRenewFailed, "consumer", Failure, "A lease renewal failed; the lease is given up once it could not be renewed for a lease duration."},
	{LeaseLost, "consumer", Failure, "A lease this worker held is gone; the shard's handler context was cancelled."},
	{LeaseStolen, "consumer", Neutral, "This worker took a lease from a live worker to balance the group."},
	{LeaseReleased, "consumer", Neutral, "This worker gave a lease back; Detail says why and at which checkpoint."},
	{HandoffRequested, "consumer", Neutral, "This worker asked the owner of a lease to hand it over."},
	{HandoffCompleted, "consumer", Success, "This worker released a lease another worker asked for."},
	{ShardStarted, "consumer", Neutral, "A reader started on a shard."},
	{ShardFinished, "consumer", Success, "A shard was read to its end and marked finished."},
	{ReshardDetected, "consumer", Neutral, "The stream was resharded; Records counts the reshards seen."},
	{CheckpointWritten, "consumer", Success, "The store accepted a checkpoint."},
	{CheckpointFailed, "consumer", Failure, "A checkpoint write failed."},
	{HandlerFailed, "consumer", Failure, "The handler returned an error for a batch."},
	{HandlerRetried, "consumer", Neutral, "A batch the handler failed on is handed to it again."},
	{DeadLettered, "consumer", Neutral, "A batch the handler kept failing on went to the dead-letter function."},
	{RecordSkipped, "consumer", Neutral, "A record was not delivered on purpose: it did not decode, or its hash key is outside the shard."},
	{IteratorExpired, "consumer", Failure, "GetRecords answered ExpiredIteratorException."},
	{IteratorRecovered, "consumer", Success, "A new iterator was taken after the last record read."},
	{StoreUnavailable, "consumer", Failure, "The checkpoint store stopped answering."},
	{StoreRecovered, "consumer", Success, "The checkpoint store answers again; Duration is how long it did not."},
	{Fatal, "consumer", Failure, "Run stops with an error."},
}

var byType = func() map[Type]Desc {
	m := make(map[Type]Desc, len(Catalog))
	for _, d := range Catalog {
		m[d.Type] = d
	}
	return m
}()

// Lookup returns the catalog entry of t.
func Lookup(t Type) (Desc, bool) {
	d, ok := byType[t]
	return d, ok
}

// Event is one thing that happened to a producer or a consumer. Fields that do not apply to
// a type are zero.
type Event struct {
	Type   Type
	Time   time.Time
	Stream string
	Group  string // consumer events
	Worker string // consumer events
	Shard  string
	// Attempt is the attempt a retry or failure belongs to, from 1.
	Attempt int
	// Records counts the user records the event concerns (retried, failed, skipped,
	// dead-lettered), or reshards for ReshardDetected.
	Records int
	// Duration is how long the thing took: a Flush, a Close, a store outage.
	Duration time.Duration
	Err      error
	// Sequence and SubSequence are the position of a checkpoint event.
	Sequence    string
	SubSequence int64
	// MaybeWritten: RecordFailed records Kinesis may hold anyway (producer.ErrMaybeWritten).
	MaybeWritten bool
	Detail       string
	// Attrs are the attributes of the caller's context (see WithAttrs) for events of a call
	// made with one: Put, Flush, Close.
	Attrs []slog.Attr
}

// Listener receives events. Producers and consumers call OnEvent from one goroutine of their
// own, serially, in the order the events happened, never from a hot path: events wait in a
// bounded queue (1,024) and are delivered in bursts, about 10 ms after the first of them (so
// emitting never pays for waking the listener's goroutine); when a listener falls that far
// behind, newer events are dropped and counted (events_dropped_total) rather than slow
// anything down. A listener must not block
// for long, must not call Close, Flush or Run of the producer or consumer it listens to, and
// must not keep Event.Attrs' backing array beyond the call unless it copies it. A listener
// that panics is recovered, counted (events_listener_panics_total) and logged; it keeps
// receiving events.
type Listener interface {
	OnEvent(Event)
}

// ListenerFunc adapts a function to Listener.
type ListenerFunc func(Event)

// OnEvent calls f(e).
func (f ListenerFunc) OnEvent(e Event) { f(e) }

type attrsKey struct{}

// WithAttrs returns a context that carries attrs (added to any it already carries): events of
// calls made with it carry them in Event.Attrs, and ContextHandler adds them to log lines
// logged with it.
func WithAttrs(ctx context.Context, attrs ...slog.Attr) context.Context {
	prev := AttrsFrom(ctx)
	all := make([]slog.Attr, 0, len(prev)+len(attrs))
	all = append(append(all, prev...), attrs...)
	return context.WithValue(ctx, attrsKey{}, all)
}

// AttrsFrom returns the attributes ctx carries (see WithAttrs), or nil. The slice must not be
// changed.
func AttrsFrom(ctx context.Context) []slog.Attr {
	if ctx == nil {
		return nil
	}
	a, _ := ctx.Value(attrsKey{}).([]slog.Attr)
	return a
}
