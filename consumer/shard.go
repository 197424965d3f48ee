package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/kinesis/aggregation"
	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/events"
	"github.com/shardline/kinesis/internal/backoff"
	"github.com/shardline/kinesis/internal/shardmap"
	"github.com/shardline/kinesis/internal/telemetry"
	"github.com/shardline/kinesis/internal/wire"
	"github.com/shardline/kinesis/metrics"
)

// stopReason is why a reader stops.
type stopReason int32

const (
	stopNone     stopReason = iota
	stopShutdown            // Run is returning: finish the batch, checkpoint, release
	stopHandoff             // another worker asked for the lease: same as shutdown
	stopLost                // the lease is gone: stop at once, write nothing
	stopShardEnd            // the shard is read to its end
	stopFatal               // Run is stopping with an error found by this reader
)

var stopNames = [...]string{"", "shutdown", "handoff", "lease lost", "shard end", "fatal"}

// Reader states as seen by the renewer.
const (
	readerActive int32 = iota
	readerReleasing
	readerDone
)

// shardReader reads one held shard: GetRecords, deaggregate, handler, checkpoint, in one
// goroutine. Its context is tied to the lease: cancelled when the lease is lost.
type shardReader struct {
	c      *Consumer
	info   shardInfo
	start  StartPosition // for a shard without checkpoint
	labels metrics.Labels
	log    *slog.Logger // the consumer's, with the shard

	ctx      context.Context
	cancel   context.CancelCauseFunc
	stopCh   chan struct{}
	stopOnce sync.Once
	reason   atomic.Int32 // stopReason
	state    atomic.Int32
	done     chan struct{}

	// Reused between batches; only the reader goroutine touches them.
	parser  aggregation.Parser
	keys    map[string]keyInfo // partition keys of aggregated records seen lately
	lastLen int                // user records in the last batch: the next one's capacity
	// recs is the Records slice batches reuse in the automatic checkpoint modes (in manual
	// mode every batch has its own: the handler acknowledges them later).
	recs []Record
	// codec decodes this reader's GetRecords responses (records share one arena per
	// response); callOpts passes it to the SDK, or is empty with WithWireCodec(false).
	codec    wire.Codec
	callOpts []func(*kinesis.Options)

	mu             sync.Mutex
	lease          checkpoint.Lease
	renewedAt      time.Time
	checkpointed   checkpoint.Position // last position the store accepted
	handled        checkpoint.Position // last position a handler accepted
	lastSeen       checkpoint.Position // last Kinesis record read (handled or skipped)
	delivered      int64               // user records handed to the handler and accepted
	atCheckpoint   int64               // delivered when checkpointed last covered everything handled
	behind         int64
	lastErr        error
	lastErrAt      time.Time
	checkpointedAt time.Time  // when checkpointed last changed
	lastRead       time.Time  // the last GetRecords that succeeded (or the reader's start)
	cpFailSince    time.Time  // since when checkpoint writes fail; zero while they succeed
	firstIterator  time.Time  // when the first iterator was taken
	cpMu           sync.Mutex // serialises checkpoint writes of this shard
}

func newShardReader(c *Consumer, info shardInfo, lease checkpoint.Lease, start StartPosition) *shardReader {
	ctx, cancel := context.WithCancelCause(context.Background())
	r := &shardReader{
		c: c, info: info, start: start,
		labels:         metrics.Labels{Stream: c.stream, Shard: info.id},
		log:            c.log.With("shard", info.id),
		ctx:            ctx,
		cancel:         cancel,
		stopCh:         make(chan struct{}),
		done:           make(chan struct{}),
		lease:          lease,
		renewedAt:      time.Now(),
		checkpointedAt: time.Now(),
		lastRead:       time.Now(),
		checkpointed:   lease.Checkpoint,
		handled:        lease.Checkpoint,
	}
	if c.cfg.wireCodec {
		r.callOpts = []func(*kinesis.Options){r.codec.Option()}
	}
	return r
}

func (r *shardReader) active() bool { return r.state.Load() == readerActive }

func (r *shardReader) currentLease() checkpoint.Lease {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lease
}

func (r *shardReader) renewed(l checkpoint.Lease) {
	r.mu.Lock()
	r.lease.Counter = l.Counter
	r.renewedAt = time.Now()
	r.mu.Unlock()
}

func (r *shardReader) sinceRenewed() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return time.Since(r.renewedAt)
}

// stop asks the reader to stop after its current batch.
func (r *shardReader) stop(why stopReason) {
	r.stopOnce.Do(func() {
		r.reason.CompareAndSwap(int32(stopNone), int32(why))
		close(r.stopCh)
	})
}

// lost cancels the reader at once: another worker owns the shard.
func (r *shardReader) lost(cause error) {
	r.reason.Store(int32(stopLost))
	r.stop(stopLost)
	r.cancel(cause)
	r.c.cfg.metrics.Add(metrics.ConsumerLeaseLost, 1, r.labels)
	r.emit(events.Event{Type: events.LeaseLost, Err: cause})
	r.log.Warn("consumer: lease lost", "err", cause)
}

func (r *shardReader) stopping() bool {
	select {
	case <-r.stopCh:
		return true
	default:
		return r.ctx.Err() != nil
	}
}

func (r *shardReader) setErr(err error) {
	r.mu.Lock()
	r.lastErr, r.lastErrAt = err, time.Now()
	r.mu.Unlock()
}

// wait sleeps for d unless the reader is asked to stop; it reports whether the reader should
// go on.
func (r *shardReader) wait(d time.Duration) bool {
	if d <= 0 {
		return !r.stopping()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return !r.stopping()
	case <-r.stopCh:
		return false
	case <-r.ctx.Done():
		return false
	}
}

// run is the reader goroutine. In CheckpointInterval mode a second goroutine writes pending
// progress on its timer, so a quiet stream or a slow handler never holds a checkpoint back.
func (r *shardReader) run(h Handler) {
	defer close(r.done)
	if r.c.bus.Active() {
		r.emit(events.Event{Type: events.ShardStarted, Detail: "checkpoint=" + r.lease.Checkpoint.String() + " start=" + r.start.String()})
	}
	var timerWG sync.WaitGroup
	stopTimer := make(chan struct{})
	if r.c.cfg.checkpointMode == CheckpointInterval {
		timerWG.Go(func() { r.intervalCheckpoints(stopTimer) })
	}
	ended, children, err := r.read(h)
	close(stopTimer)
	timerWG.Wait()
	r.finish(ended, children, err)
}

// read loops until the reader stops, the shard ends (ended, with the children GetRecords
// named) or a fatal error.
func (r *shardReader) read(h Handler) (ended bool, children []types.ChildShard, err error) {
	cfg := &r.c.cfg
	iter, err := r.iterator(false)
	if err != nil {
		return false, nil, err
	}
	failures := 0
	idle := cfg.pollInterval
	for {
		if r.stopping() {
			return false, nil, nil
		}
		if iter == "" {
			// The iterator expired: start again after the last record read.
			if iter, err = r.iterator(true); err != nil {
				return false, nil, err
			}
			if iter != "" {
				r.emit(events.Event{Type: events.IteratorRecovered})
			}
		}
		called := time.Now()
		cctx, cancel := context.WithTimeout(r.ctx, cfg.callTimeout)
		out, err := r.getRecords(cctx, iter)
		cancel()
		telemetry.KinesisCall(cfg.metrics, r.c.stream, r.info.id, "GetRecords", called, err)
		if err != nil {
			if r.ctx.Err() != nil {
				return false, nil, nil
			}
			r.c.cfg.metrics.Add(metrics.ConsumerErrors, 1, metrics.Labels{Stream: r.c.stream, Shard: r.info.id, ErrorType: errorType(err)})
			r.setErr(err)
			var expired *types.ExpiredIteratorException
			if errors.As(err, &expired) {
				r.log.Info("consumer: shard iterator expired; resuming after the last record read")
				r.emit(events.Event{Type: events.IteratorExpired, Err: err})
				iter = ""
				continue
			}
			if !IsRetryable(err) {
				return false, nil, &FatalError{Op: "GetRecords " + r.info.id, Err: err}
			}
			if !r.wait(backoff.Policy{Base: cfg.errorBackoff, Max: cfg.maxBackoff}.Delay(failures)) {
				return false, nil, nil
			}
			failures++
			continue
		}
		failures = 0
		behind := out.MillisBehindLatest
		r.mu.Lock()
		r.behind = behind
		r.lastRead = time.Now()
		r.mu.Unlock()
		cfg.metrics.Set(metrics.ConsumerIteratorAge, float64(behind), r.labels)

		if len(out.Records) > 0 {
			if err := r.deliver(h, out.Records, behind); err != nil || r.ctx.Err() != nil {
				return false, nil, err
			}
		}
		next := out.NextShardIterator
		if next == "" {
			return true, out.ChildShards, nil
		}
		iter = next

		// 5 GetRecords per second per shard at most; wait longer while caught up.
		if len(out.Records) > 0 || behind > 0 {
			idle = cfg.pollInterval
		} else {
			idle = min(idle*2, cfg.idleInterval)
		}
		if !r.wait(idle - time.Since(called)) {
			return false, nil, nil
		}
	}
}

// getRecords makes one GetRecords call and returns the response, decoded by the reader's
// codec (or converted from the SDK's output when the codec is off or the client is not the
// SDK's). The response is valid until the next call; its records' memory is never reused.
func (r *shardReader) getRecords(ctx context.Context, iter string) (*wire.GetRecordsOutput, error) {
	r.codec.Reset()
	in := &kinesis.GetRecordsInput{ShardIterator: aws.String(iter), Limit: aws.Int32(r.c.cfg.maxRecords)}
	sdkOut, err := r.c.client.GetRecords(ctx, in, r.callOpts...)
	if err != nil {
		return nil, err
	}
	out := &r.codec.Get
	if !out.Decoded {
		wire.FromSDK(sdkOut, out)
	}
	return out, nil
}

// iterator gets a shard iterator: after the last record read when resuming, else from the
// checkpoint, else from the start position.
func (r *shardReader) iterator(resume bool) (string, error) {
	cfg := &r.c.cfg
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(r.c.stream), ShardId: aws.String(r.info.id)}
	r.mu.Lock()
	from := r.checkpointed
	if resume && !r.lastSeen.IsZero() {
		from = r.lastSeen
	}
	r.mu.Unlock()
	switch {
	case !from.IsZero():
		// AT rather than AFTER: the user records of an aggregate past the checkpointed
		// sub-sequence number must still be read. deliver skips what is at or before it.
		in.ShardIteratorType = types.ShardIteratorTypeAtSequenceNumber
		in.StartingSequenceNumber = aws.String(from.SequenceNumber)
	case r.start == Latest && resume:
		// Nothing was read since LATEST: resume from shortly before the first iterator was
		// taken, so records put while the iterator aged are not skipped (a minute of margin
		// for clock skew; the few older records it may bring are delivered, never lost).
		in.ShardIteratorType = types.ShardIteratorTypeAtTimestamp
		in.Timestamp = aws.Time(r.startedAt().Add(-time.Minute))
	case r.start == Latest:
		in.ShardIteratorType = types.ShardIteratorTypeLatest
	case r.start == AtTimestamp:
		in.ShardIteratorType = types.ShardIteratorTypeAtTimestamp
		in.Timestamp = aws.Time(cfg.startTimestamp)
	default:
		in.ShardIteratorType = types.ShardIteratorTypeTrimHorizon
	}
	for failures := 0; ; failures++ {
		cctx, cancel := context.WithTimeout(r.ctx, cfg.callTimeout)
		start := time.Now()
		out, err := r.c.client.GetShardIterator(cctx, in)
		cancel()
		telemetry.KinesisCall(cfg.metrics, r.c.stream, r.info.id, "GetShardIterator", start, err)
		if err == nil {
			r.markStarted()
			return aws.ToString(out.ShardIterator), nil
		}
		if r.ctx.Err() != nil {
			return "", nil
		}
		cfg.metrics.Add(metrics.ConsumerErrors, 1, metrics.Labels{Stream: r.c.stream, Shard: r.info.id, ErrorType: errorType(err)})
		r.setErr(err)
		if !IsRetryable(err) {
			return "", &FatalError{Op: "GetShardIterator " + r.info.id, Err: err}
		}
		if !r.wait(backoff.Policy{Base: cfg.errorBackoff, Max: cfg.maxBackoff}.Delay(failures)) {
			return "", nil
		}
	}
}

// startedAt is when the first iterator of this reader was taken.
func (r *shardReader) startedAt() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.firstIterator
}

func (r *shardReader) markStarted() {
	r.mu.Lock()
	if r.firstIterator.IsZero() {
		r.firstIterator = time.Now()
	}
	r.mu.Unlock()
}

// deliver deaggregates records into a new batch, hands it to the handler (again after a
// backoff while it fails, then as the failure policy says) and checkpoints it according to the
// mode. Each batch is a new value: a handler may keep it, and its Checkpoint, from any
// goroutine, for as long as the lease is held.
func (r *shardReader) deliver(h Handler, records []wire.Record, behind int64) error {
	cfg := &r.c.cfg
	b := &Batch{ShardID: r.info.id, MillisBehindLatest: behind, shard: r}
	if cfg.checkpointMode == CheckpointManual {
		b.Records = make([]Record, 0, max(len(records), r.lastLen))
	} else {
		// A fresh array per batch costs more than the rest of delivery (a large allocation
		// and GC write barriers for every record); the automatic modes reuse one.
		b.Records = r.recs[:0]
		defer func() { r.recs = b.Records[:0] }()
	}
	r.mu.Lock()
	skipUpTo := r.handled
	r.mu.Unlock()

	var bytes int
	for i := range records {
		if err := r.appendRecords(b, &records[i], skipUpTo, &bytes); err != nil {
			return err
		}
	}
	cfg.metrics.Add(metrics.ConsumerRecordsReceived, float64(len(records)), r.labels)
	cfg.metrics.Add(metrics.ConsumerBytesReceived, float64(bytes), r.labels)
	last := &records[len(records)-1]
	seen := checkpoint.Position{SequenceNumber: last.SequenceNumber, SubSequenceNumber: 1<<63 - 1}
	if len(b.Records) == 0 {
		r.mu.Lock()
		r.lastSeen = seen
		r.mu.Unlock()
		return nil
	}
	r.lastLen = len(b.Records)
	b.first, b.last = b.Records[0].Position(), b.Records[len(b.Records)-1].Position()

	n := int64(len(b.Records))
	cfg.metrics.Set(metrics.ConsumerQueueSize, float64(r.c.queued.Add(n)), r.c.labels)
	err := r.handle(h, b)
	cfg.metrics.Set(metrics.ConsumerQueueSize, float64(r.c.queued.Add(-n)), r.c.labels)
	if err != nil || r.ctx.Err() != nil {
		return err
	}
	pos := b.last
	r.mu.Lock()
	r.handled = pos
	r.lastSeen = seen
	r.delivered += n
	lag := r.delivered - r.atCheckpoint
	lastCheckpoint := r.checkpointedAt
	r.mu.Unlock()
	cfg.metrics.Add(metrics.ConsumerUserRecords, float64(n), r.labels)
	cfg.metrics.Set(metrics.ConsumerLagRecords, float64(lag), r.labels)

	switch cfg.checkpointMode {
	case CheckpointEveryBatch:
		r.checkpointUntilStored(pos)
	case CheckpointInterval:
		if time.Since(lastCheckpoint) >= cfg.checkpointInterval {
			r.autoCheckpoint(pos)
		}
	}
	return nil
}

// appendRecords appends the user records of one Kinesis record to the batch, skipping those
// at or before skipUpTo (already handled) and, inside aggregates, those whose hash key is
// outside the shard's range (the KCL drops them too: they belong to another shard).
func (r *shardReader) appendRecords(b *Batch, rec *wire.Record, skipUpTo checkpoint.Position, bytes *int) error {
	cfg := &r.c.cfg
	seq := rec.SequenceNumber
	*bytes += len(rec.Data)
	arrival := rec.ApproximateArrivalTimestamp
	// Records before the checkpoint's sequence number cannot come (the iterator starts at it);
	// only sub-records of the checkpointed sequence number itself are skipped.
	sameSeq := !skipUpTo.IsZero() && seq == skipUpTo.SequenceNumber
	switch r.parser.Parse(rec.Data) {
	case aggregation.Aggregated:
		for i := 0; i < r.parser.Len(); i++ {
			ur := r.parser.Record(i)
			if sameSeq && int64(ur.SubSequence) <= skipUpTo.SubSequenceNumber {
				continue
			}
			key := r.key(ur.PartitionKey)
			h := key.hash
			var ehk string
			if len(ur.ExplicitHashKey) > 0 {
				ehk = string(ur.ExplicitHashKey)
				parsed, err := shardmap.ParseHash(ehk)
				if err != nil {
					cfg.metrics.Add(metrics.ConsumerRecordsSkipped, 1, metrics.Labels{Stream: r.c.stream, Shard: r.info.id, ErrorType: "decode"})
					if r.c.bus.Active() {
						r.emit(events.Event{Type: events.RecordSkipped, Records: 1, Detail: "decode: explicit hash key " + ehk})
					}
					continue
				}
				h = parsed
			}
			if !r.info.rng.Contains(h) {
				cfg.metrics.Add(metrics.ConsumerRecordsSkipped, 1, metrics.Labels{Stream: r.c.stream, Shard: r.info.id, ErrorType: "hash_key_out_of_range"})
				if r.c.bus.Active() {
					r.emit(events.Event{Type: events.RecordSkipped, Records: 1, Detail: "hash_key_out_of_range: sequence " + seq})
				}
				continue
			}
			b.Records = append(b.Records, Record{
				Data: ur.Data, PartitionKey: key.str, ExplicitHashKey: ehk,
				SequenceNumber: seq, SubSequenceNumber: int64(ur.SubSequence),
				ShardID: r.info.id, ApproximateArrivalTimestamp: arrival, Aggregated: true,
			})
		}
		return nil
	case aggregation.Malformed:
		switch cfg.decodePolicy {
		case DecodeStop:
			return &DecodeError{Shard: r.info.id, SequenceNumber: seq}
		case DecodeSkip:
			cfg.metrics.Add(metrics.ConsumerRecordsSkipped, 1, metrics.Labels{Stream: r.c.stream, Shard: r.info.id, ErrorType: "decode"})
			if r.c.bus.Active() {
				r.emit(events.Event{Type: events.RecordSkipped, Records: 1, Detail: "decode: malformed aggregate at sequence " + seq})
			}
			r.log.Warn("consumer: skipped a malformed aggregated record", "sequence", seq)
			return nil
		}
	}
	if sameSeq {
		return nil // a plain record is sub-sequence 0: at or before any checkpoint on it
	}
	b.Records = append(b.Records, Record{
		Data: rec.Data, PartitionKey: rec.PartitionKey, SequenceNumber: seq,
		ShardID: r.info.id, ApproximateArrivalTimestamp: arrival,
	})
	return nil
}

// keyInfo is a partition key of aggregated records as a string, with its hash key.
type keyInfo struct {
	str  string
	hash shardmap.Hash
}

// maxKeyCache bounds the per-shard key cache; past it the cache starts over.
const maxKeyCache = 4096

// key returns the string and hash of an aggregated record's partition key. Producers reuse a
// bounded set of keys, so caching them spares an allocation and an MD5 per user record (the
// lookup with string(b) does not allocate).
func (r *shardReader) key(b []byte) keyInfo {
	if k, ok := r.keys[string(b)]; ok {
		return k
	}
	if r.keys == nil || len(r.keys) >= maxKeyCache {
		r.keys = make(map[string]keyInfo, 256)
	}
	k := keyInfo{str: string(b), hash: shardmap.HashKeyBytes(b)}
	r.keys[k.str] = k
	return k
}

// handle calls the handler until it accepts the batch, with backoff. Past WithHandlerRetries
// failed attempts the failure policy decides: stop Run with a *HandlerError, hand the batch to
// the dead-letter function and go on, or keep retrying this shard alone.
func (r *shardReader) handle(h Handler, b *Batch) error {
	cfg := &r.c.cfg
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := h(r.ctx, b)
		cfg.metrics.Observe(metrics.ConsumerProcessingTime, time.Since(start).Seconds(), r.labels)
		if err == nil || r.ctx.Err() != nil {
			return nil
		}
		r.setErr(err)
		cfg.metrics.Add(metrics.ConsumerErrors, 1, metrics.Labels{Stream: r.c.stream, Shard: r.info.id, ErrorType: "handler"})
		r.emit(events.Event{Type: events.HandlerFailed, Attempt: attempt, Records: len(b.Records), Err: err})
		r.log.Warn("consumer: handler failed", "attempt", attempt, "sequence", b.first.SequenceNumber, "err", err)
		if attempt > cfg.handlerRetries {
			switch cfg.failurePolicy {
			case StopOnFailure:
				return &HandlerError{Shard: r.info.id, SequenceNumber: b.first.SequenceNumber, Attempts: attempt, Err: err}
			case DeadLetterOnFailure:
				if derr := cfg.deadLetter(r.ctx, b, err); derr == nil {
					cfg.metrics.Add(metrics.ConsumerDeadLettered, float64(len(b.Records)), r.labels)
					r.emit(events.Event{Type: events.DeadLettered, Attempt: attempt, Records: len(b.Records), Err: err})
					r.log.Warn("consumer: batch dead-lettered", "records", len(b.Records),
						"first", b.first.String(), "last", b.last.String(), "err", err)
					return nil
				} else if r.ctx.Err() == nil {
					r.setErr(derr)
					cfg.metrics.Add(metrics.ConsumerErrors, 1, metrics.Labels{Stream: r.c.stream, Shard: r.info.id, ErrorType: "dead_letter"})
					r.log.Error("consumer: dead-letter function failed; retrying the batch", "err", derr)
				}
			case RetryShard:
				if attempt == cfg.handlerRetries+1 {
					r.log.Error("consumer: handler keeps failing; retrying this shard until it succeeds",
						"sequence", b.first.SequenceNumber, "err", err)
				}
			}
		}
		// A shutdown or handoff during retries gives up on the batch: nothing past the
		// previous batch is checkpointed, so the next owner reads it again.
		if !r.wait(backoff.Policy{Base: cfg.errorBackoff, Max: cfg.maxBackoff}.Delay(attempt - 1)) {
			r.cancel(errors.New("consumer: stopped while retrying a failed batch"))
			return nil
		}
		r.emit(events.Event{Type: events.HandlerRetried, Attempt: attempt + 1, Records: len(b.Records)})
	}
}

// autoCheckpoint checkpoints pos for CheckpointInterval. A store that cannot be reached is
// not fatal: the next checkpoint covers this one.
func (r *shardReader) autoCheckpoint(pos checkpoint.Position) {
	if err := r.checkpoint(r.ctx, pos); err != nil && !errors.Is(err, ErrNotHeld) {
		r.log.Warn("consumer: checkpoint failed; the next one will cover it", "err", err)
	}
}

// checkpointUntilStored checkpoints pos for CheckpointEveryBatch, retrying with backoff until
// the store takes it, the lease is gone or the reader is stopped (finish then writes it with
// the release). No new batch is read meanwhile: that is what bounds a crash's re-delivery to
// one batch per shard, whatever the store went through.
func (r *shardReader) checkpointUntilStored(pos checkpoint.Position) {
	cfg := &r.c.cfg
	for attempt := 0; ; attempt++ {
		err := r.checkpoint(r.ctx, pos)
		if err == nil || errors.Is(err, ErrNotHeld) || r.ctx.Err() != nil {
			return
		}
		if attempt == 0 {
			r.log.Warn("consumer: checkpoint failed; retrying before reading on", "err", err)
		}
		if !r.wait(backoff.Policy{Base: cfg.errorBackoff, Max: cfg.maxBackoff}.Delay(attempt)) {
			return
		}
	}
}

// intervalCheckpoints writes the progress handled and not yet checkpointed once it is a
// checkpoint interval old, whether or not batches arrive, until stop is closed.
func (r *shardReader) intervalCheckpoints(stop <-chan struct{}) {
	interval := r.c.cfg.checkpointInterval
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		wait := interval
		r.mu.Lock()
		pos, pending, since := r.handled, r.handled.Compare(r.checkpointed) > 0, time.Since(r.checkpointedAt)
		r.mu.Unlock()
		switch {
		case pending && since >= interval:
			r.autoCheckpoint(pos) // after a failure, the next try is an interval later
		case pending:
			wait = interval - since
		}
		t.Reset(wait)
	}
}

// checkpoint writes pos, fenced by the lease. Positions not after the stored one are accepted
// without a write.
func (r *shardReader) checkpoint(ctx context.Context, pos checkpoint.Position) error {
	if err := pos.Validate(); err != nil || pos.IsZero() {
		return fmt.Errorf("consumer: checkpoint %q: %w", pos.String(), checkpoint.ErrInvalid)
	}
	r.cpMu.Lock()
	defer r.cpMu.Unlock()
	if r.state.Load() == readerDone || r.reason.Load() == int32(stopLost) {
		return fmt.Errorf("%w: shard %s", ErrNotHeld, r.info.id)
	}
	r.mu.Lock()
	stored, lease := r.checkpointed, r.lease
	r.mu.Unlock()
	if pos.Compare(stored) <= 0 {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, r.c.cfg.callTimeout)
	err := r.c.store.Checkpoint(cctx, lease, pos)
	cancel()
	r.c.storeResult("Checkpoint", err)
	if err != nil {
		r.mu.Lock()
		if r.cpFailSince.IsZero() {
			r.cpFailSince = time.Now()
		}
		r.mu.Unlock()
		r.c.cfg.metrics.Add(metrics.ConsumerCheckpointFailure, 1, r.labels)
		if r.c.bus.Active() {
			r.emit(positionEvent(events.CheckpointFailed, pos, err))
		}
		r.setErr(err)
		if errors.Is(err, checkpoint.ErrLeaseLost) {
			if r.state.Load() == readerActive {
				r.lost(err)
			}
			return fmt.Errorf("%w: shard %s: %w", ErrNotHeld, r.info.id, err)
		}
		return err
	}
	r.c.cfg.metrics.Add(metrics.ConsumerCheckpointSuccess, 1, r.labels)
	if r.c.bus.Active() {
		r.emit(positionEvent(events.CheckpointWritten, pos, nil))
	}
	r.mu.Lock()
	r.checkpointed = pos
	r.checkpointedAt = time.Now()
	r.cpFailSince = time.Time{}
	if pos.Compare(r.handled) >= 0 {
		r.atCheckpoint = r.delivered
	}
	lag := r.delivered - r.atCheckpoint
	r.mu.Unlock()
	r.c.cfg.metrics.Set(metrics.ConsumerLagRecords, float64(lag), r.labels)
	return nil
}

// finish ends the reader: at shard end it marks the shard finished and reports its children;
// on shutdown or handoff it checkpoints what was handled and releases the lease; on a lost
// lease it writes nothing. In manual mode the shard is finished only once the handler has
// checkpointed every record it was given; stopped before that, the reader releases the lease
// keeping what was checkpointed, and the next owner delivers the rest.
func (r *shardReader) finish(ended bool, children []types.ChildShard, readErr error) {
	c := r.c
	if readErr != nil {
		r.reason.CompareAndSwap(int32(stopNone), int32(stopFatal))
		ended = false
	}
	if ended && c.cfg.checkpointMode == CheckpointManual && !r.awaitManualCheckpoint() {
		ended = false
	}
	if ended && r.ctx.Err() == nil {
		// Every record is handled: the shard is done even if a stop came meanwhile.
		r.reason.Store(int32(stopShardEnd))
	} else {
		ended = false
	}
	why := stopReason(r.reason.Load())

	if why != stopLost {
		final := checkpoint.Position{}
		r.mu.Lock()
		if c.cfg.checkpointMode != CheckpointManual {
			final = r.handled
		}
		r.mu.Unlock()
		if ended {
			final = checkpoint.Position{ShardEnd: true}
		}
		err := r.release(final, why)
		switch {
		case err != nil && why == stopShutdown:
			c.unsaved(r.info.id, err)
		case err == nil && why == stopHandoff:
			c.noteHandedOff(r.lease.ShardKey)
			r.emit(events.Event{Type: events.HandoffCompleted})
		}
	}
	r.state.Store(readerDone)
	r.cancel(errors.New("consumer: reader stopped: " + stopNames[why]))

	c.mu.Lock()
	if c.readers[r.info.id] == r {
		delete(c.readers, r.info.id)
	}
	held := len(c.readers)
	c.mu.Unlock()
	c.cfg.metrics.Set(metrics.ConsumerLeasesHeld, float64(held), c.labels)
	if why != stopLost {
		c.cfg.metrics.Set(metrics.ConsumerLagRecords, 0, r.labels)
	}

	switch {
	case readErr != nil:
		c.reportFatal(readErr)
	case ended:
		r.log.Info("consumer: shard finished", "children", len(children))
		if c.bus.Active() {
			r.emit(events.Event{Type: events.ShardFinished, Detail: fmt.Sprintf("children=%d", len(children))})
		}
		select {
		case c.events <- readerEvent{shard: r.info.id, children: children}:
		default:
			// The coordinator is behind; its next shard listing finds the children.
		}
	}
}

// awaitManualCheckpoint waits, at shard end in manual mode, until the handler has checkpointed
// the last record it was given, so the children never start before the parent is done. It
// reports false when the reader was stopped first.
func (r *shardReader) awaitManualCheckpoint() bool {
	for {
		r.mu.Lock()
		done := r.checkpointed.Compare(r.handled) >= 0
		r.mu.Unlock()
		if done {
			return true
		}
		if !r.wait(100 * time.Millisecond) {
			return false
		}
	}
}

// release writes the final position and gives the lease back, retrying an unreachable store
// within the shutdown timeout. At shard end, final is ShardEnd. It returns an error when the
// final position could not be written (nil when there was nothing new to write and only the
// release failed: the lease then expires, and nothing is lost).
func (r *shardReader) release(final checkpoint.Position, why stopReason) error {
	c := r.c
	r.state.Store(readerReleasing)
	r.cpMu.Lock()
	defer r.cpMu.Unlock()
	r.mu.Lock()
	lease := r.lease
	if !final.ShardEnd && final.Compare(r.checkpointed) <= 0 {
		final = checkpoint.Position{} // nothing new: keep the stored position
	}
	r.mu.Unlock()
	deadline := time.Now().Add(c.cfg.shutdownTimeout)
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.callTimeout)
		err := c.store.ReleaseLease(ctx, lease, final)
		cancel()
		c.storeResult("ReleaseLease", err)
		if err == nil {
			if !final.IsZero() {
				c.cfg.metrics.Add(metrics.ConsumerCheckpointSuccess, 1, r.labels)
				if r.c.bus.Active() {
					r.emit(positionEvent(events.CheckpointWritten, final, nil))
				}
				r.mu.Lock()
				r.checkpointed = final
				r.mu.Unlock()
			}
			c.cfg.metrics.Add(metrics.ConsumerLeaseReleased, 1, r.labels)
			r.mu.Lock()
			stored := r.checkpointed // final, or what was stored before when nothing was new
			r.mu.Unlock()
			r.log.Info("consumer: lease released", "reason", stopNames[why], "checkpoint", stored.String())
			if r.c.bus.Active() {
				r.emit(events.Event{Type: events.LeaseReleased, Detail: "reason=" + stopNames[why] + " checkpoint=" + stored.String()})
			}
			return nil
		}
		if !final.IsZero() {
			c.cfg.metrics.Add(metrics.ConsumerCheckpointFailure, 1, r.labels)
			if r.c.bus.Active() {
				r.emit(positionEvent(events.CheckpointFailed, final, err))
			}
		}
		if errors.Is(err, checkpoint.ErrLeaseLost) || errors.Is(err, checkpoint.ErrPositionBehind) || time.Now().After(deadline) {
			if final.IsZero() {
				r.log.Warn("consumer: could not release the lease; it will expire", "err", err)
				return nil
			}
			r.log.Error("consumer: final checkpoint failed; records after the last checkpoint will be delivered again",
				"checkpoint", final.String(), "err", err)
			return fmt.Errorf("consumer: final checkpoint %s of shard %s: %w", final.String(), r.info.id, err)
		}
		t := time.NewTimer(backoff.Policy{Base: c.cfg.errorBackoff, Max: c.cfg.maxBackoff}.Delay(attempt))
		<-t.C
	}
}
