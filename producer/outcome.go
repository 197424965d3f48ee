package producer

import (
	"fmt"
	"time"

	"github.com/shardline/kinesis/events"
	"github.com/shardline/kinesis/internal/wire"
	"github.com/shardline/kinesis/metrics"
)

// entryStatus is what a sender found out about one entry.
type entryStatus struct {
	kind    uint8
	shardID string // where Kinesis stored it (delivered, verify)
	seq     string
	err     error // retry, abort
}

const (
	stSettled uint8 = iota // every record has its outcome (delivered or failed for good)
	stRetry                // retryable failure: the dispatcher retries or gives up
	stVerify               // an aggregate stored on an unexpected shard
	stAbort                // the producer is stopping: fail with ErrClosed
)

// settle records the outcome of a PutRecords call in req.status and completes the records
// whose outcome is final. unknown says that a try of the SDK inside the call ended without a
// known result: every entry the call did not deliver may have been written by it.
func (p *Producer) settle(req *request, out *wire.PutRecordsOutput, err error, unknown bool) {
	if err == nil && len(out.Records) != len(req.entries) {
		err = fmt.Errorf("producer: PutRecords answered %d results for %d records", len(out.Records), len(req.entries))
	}
	if unknown || (err != nil && resultUnknown(err)) {
		for i := range req.entries {
			req.entries[i].maybe = true
		}
	}
	if err != nil {
		p.settleRequestError(req, err)
		return
	}
	now := time.Now()
	done := req.done[:0]
	delivered, dataBytes := 0, 0
	for i := range out.Records {
		res, e, st := &out.Records[i], &req.entries[i], &req.status[i]
		if code := res.ErrorCode; code != "" {
			ee := &EntryError{Code: code, Message: res.ErrorMessage}
			p.countError(ee)
			if ee.Retryable() {
				*st = entryStatus{kind: stRetry, err: ee}
				continue
			}
			p.failEntry(e, ee)
			*st = entryStatus{kind: stSettled}
			continue
		}
		shardID, seq := res.ShardID, res.SequenceNumber
		*st = entryStatus{kind: stSettled, shardID: shardID, seq: seq}
		if shardID != e.shard.id && e.aggregated() {
			// Stored on a shard we did not predict: the shard map is stale. Its records are
			// readable there only if their own hash keys fall in that shard's range; the
			// dispatcher checks once it has a fresh map.
			st.kind = stVerify
			continue
		}
		for j := 0; j < e.n(); j++ {
			r := e.rec(j)
			dataBytes += p.deliver(r, shardID, seq, j, e.aggregated(), e.attempts, now)
			done = append(done, r)
		}
		delivered++
	}
	p.delivered(done, delivered, dataBytes)
	clear(done)
	req.done = done[:0]
}

// settleRequestError handles a PutRecords call that failed as a whole.
func (p *Producer) settleRequestError(req *request, err error) {
	if p.run.Err() != nil {
		// The producer is stopping and cancelled the call: Close fails these records, which
		// may have been written.
		for i := range req.status {
			req.entries[i].maybe = true
			req.status[i] = entryStatus{kind: stAbort, err: err}
		}
		return
	}
	p.countError(err)
	if IsRetryable(err) {
		werr := fmt.Errorf("producer: PutRecords: %w", err)
		for i := range req.status {
			req.status[i] = entryStatus{kind: stRetry, err: werr}
		}
		p.log.Warn("producer: PutRecords failed, will retry", "entries", len(req.entries), "err", err)
		p.emit(events.Event{Type: events.RequestFailed, Records: len(req.entries), Err: err, Detail: "retrying"})
		return
	}
	ferr := fmt.Errorf("producer: PutRecords to stream %s: %w", p.stream, err)
	p.log.Error("producer: PutRecords failed for good", "entries", len(req.entries), "err", err)
	p.emit(events.Event{Type: events.RequestFailed, Records: len(req.entries), Err: err, Detail: "failed for good"})
	for i := range req.entries {
		p.failEntry(&req.entries[i], ferr)
		req.status[i] = entryStatus{kind: stSettled}
	}
}

// deliver completes r as delivered, after attempts made in its last entry, and returns its
// data length.
func (p *Producer) deliver(r *Result, shardID, seq string, sub int, aggregated bool, attempts int, now time.Time) int {
	o := Outcome{ShardID: shardID, SequenceNumber: seq, Attempts: int(r.attempts) + attempts, Aggregated: aggregated}
	if aggregated {
		o.SubSequence = sub
	}
	n := len(r.rec.Data)
	if r.complete(o) {
		p.cfg.metrics.Observe(metrics.ProducerPutLatency, now.Sub(r.accepted).Seconds(), p.labels)
	}
	r.rec.Data = nil // the caller's buffer is theirs again; a kept Result must not pin it
	return n
}

// delivered counts delivered records and releases their room in the buffer.
func (p *Producer) delivered(rs []*Result, kinesisRecords, dataBytes int) {
	if len(rs) == 0 {
		return
	}
	p.cfg.metrics.Add(metrics.ProducerRecordsSent, float64(len(rs)), p.labels)
	p.cfg.metrics.Add(metrics.ProducerBytesSent, float64(dataBytes), p.labels)
	p.cfg.metrics.Add(metrics.ProducerKinesisRecordsSent, float64(kinesisRecords), p.labels)
	p.stats.delivered.Add(int64(len(rs)))
	p.stats.deliveredBytes.Add(int64(dataBytes))
	p.stats.kinesisRecords.Add(int64(kinesisRecords))
	p.buf.release(rs)
}

// failEntry fails every record of e with err.
func (p *Producer) failEntry(e *entry, err error) {
	e.fold()
	if e.recs != nil {
		p.fail(e.recs, err)
		return
	}
	p.failOne(e.one, err)
}

func (p *Producer) failOne(r *Result, err error) {
	one := [1]*Result{r}
	p.fail(one[:], err)
}

// fail completes rs as failed with err (marked with ErrMaybeWritten for records that may have
// been written), then hands them to the OnFailure hook or releases them. rs is not retained.
func (p *Producer) fail(rs []*Result, err error) {
	if len(rs) == 0 {
		return
	}
	maybe := err
	for _, r := range rs {
		if r.maybe {
			maybe = maybeWritten(err)
			break
		}
	}
	// Counted before completed: a Flush or Close called once the caller saw the outcome does
	// not count the record.
	p.buf.noteFailed(rs, err, maybe)
	for _, r := range rs {
		rerr := err
		if r.maybe {
			rerr = maybe
		}
		r.complete(Outcome{Attempts: int(r.attempts), Err: rerr})
	}
	labels := p.labels
	labels.ErrorType = errorType(err)
	p.cfg.metrics.Add(metrics.ProducerRecordsFailed, float64(len(rs)), labels)
	p.stats.failed.Add(int64(len(rs)))
	if p.bus.Active() {
		for _, r := range rs {
			e := events.Event{Type: events.RecordFailed, Records: 1, Attempt: int(r.attempts), Err: r.out.Err, MaybeWritten: r.maybe}
			if r.attrs != nil {
				e.Attrs = *r.attrs
			}
			p.emit(e)
		}
	}
	if p.hooks != nil {
		p.hooks.push(rs)
		return
	}
	for _, r := range rs {
		r.rec.Data = nil
	}
	p.buf.release(rs)
}

// countError counts one failed entry or request.
func (p *Producer) countError(err error) {
	labels := p.labels
	labels.ErrorType = errorType(err)
	p.cfg.metrics.Add(metrics.ProducerErrors, 1, labels)
	if isThrottle(err) {
		p.cfg.metrics.Add(metrics.ProducerThrottles, 1, p.labels)
		p.stats.throttles.Add(1)
		p.emit(events.Event{Type: events.EntryThrottled, Err: err})
	}
}
