package producer

import (
	"context"
	"time"

	"github.com/shardline/kinesis/events"
	"github.com/shardline/kinesis/metrics"
)

// retry sends e again after a backoff, without the records whose retry budget is spent (see
// WithRetryBudget; the age counts from the record's first attempt). The survivors go back to
// the front of their shard's queue, ahead of newer records, and wait out the backoff there:
// newer records sharing a key with them wait too, the others go on. A throttled entry holds
// its whole shard back for the backoff, since the shard is over its limits. If that shard is
// retired, rehome routes them on with the rest of its records, oldest first.
func (d *dispatcher) retry(e *entry, cause error, now time.Time) {
	e.fold()
	keep := d.scratch[:0]
	for j := 0; j < e.n(); j++ {
		r := e.rec(j)
		if age := r.firstSentAgo(now); int(r.attempts) >= d.cfg.maxAttempts || age >= d.cfg.recordTTL {
			d.p.failOne(r, &RetryBudgetError{Attempts: int(r.attempts), Age: age, Err: cause})
			continue
		}
		keep = append(keep, r)
	}
	defer func() { clear(keep); d.scratch = keep[:0] }()
	if len(keep) == 0 {
		return
	}
	d.countRetries(len(keep))
	until := d.backoffEnd(int(keep[0].attempts), now)
	s := e.shard
	if isThrottle(cause) {
		s.blockedUntil = laterOf(s.blockedUntil, until)
	}
	switch {
	case s.gone:
		d.requeue(keep, now, until) // only without ordering: rehome did not wait for this
	case len(keep) == e.n():
		e.notBefore = until // same records, same bytes: send the entry as it is
		d.enqueue(s, *e, true)
	default:
		d.pushFront(s, keep, now, until, e.stray)
	}
}

// backoffEnd returns when a retry after the given number of attempts may leave: the same for
// every entry of the response being handled (d.backoffs is cleared for each).
func (d *dispatcher) backoffEnd(attempts int, now time.Time) time.Time {
	for len(d.backoffs) < attempts {
		d.backoffs = append(d.backoffs, time.Time{})
	}
	if t := d.backoffs[attempts-1]; !t.IsZero() {
		return t
	}
	t := now.Add(d.cfg.backoff.Delay(attempts - 1))
	d.backoffs[attempts-1] = t
	return t
}

// pushFront packs rs (oldest first) into entries at the front of s's queue, which do not
// leave before notBefore; stray says they are there for a gap in the shard map.
func (d *dispatcher) pushFront(s *shard, rs []*Result, now, notBefore time.Time, stray bool) {
	entries := d.packAll(s, rs, now)
	for i := len(entries) - 1; i >= 0; i-- {
		entries[i].notBefore, entries[i].stray = notBefore, stray
		d.enqueue(s, entries[i], true)
	}
}

func (d *dispatcher) countRetries(n int) {
	d.p.cfg.metrics.Add(metrics.ProducerRetries, float64(n), d.p.labels)
	d.p.emit(events.Event{Type: events.RecordRetried, Records: n})
	d.p.stats.retries.Add(int64(n))
}

// packAll turns rs into entries for s: aggregates when aggregation is on, plain otherwise.
func (d *dispatcher) packAll(s *shard, rs []*Result, now time.Time) []entry {
	var entries []entry
	if !d.cfg.aggregation {
		for _, r := range rs {
			entries = append(entries, plainEntry(s, r, now))
		}
		return entries
	}
	b := d.builder()
	var recs []*Result
	flush := func() {
		if len(recs) > 0 {
			e, _ := d.pack(s, b, recs, now)
			entries = append(entries, e)
			recs = nil
		}
	}
	for _, r := range rs {
		if b.Add(r.rec.PartitionKey, r.rec.ExplicitHashKey, r.rec.Data) {
			recs = append(recs, r)
			continue
		}
		flush()
		if b.Add(r.rec.PartitionKey, r.rec.ExplicitHashKey, r.rec.Data) {
			recs = append(recs, r)
			continue
		}
		entries = append(entries, plainEntry(s, r, now))
	}
	flush()
	d.putBuilder(b)
	return entries
}

// shutdown fails everything the dispatcher still holds with ErrClosed (wrapped with the cause
// Close gave), waits for the requests in flight and fails what they did not deliver, then
// stops the senders. After a complete drain it has nothing to fail.
func (d *dispatcher) shutdown() {
	p := d.p
	cerr := p.closeError()
	var rs []*Result
	rs = append(rs, d.waiting...)
	d.waiting = nil
	now := time.Now()
	for _, r := range p.buf.take(nil) {
		r.accepted = now
		rs = append(rs, r)
	}
	for _, s := range d.shards {
		for s.q.len() > 0 {
			e := s.q.popFront()
			e.fold()
			for j := 0; j < e.n(); j++ {
				rs = append(rs, e.rec(j))
			}
		}
		rs = append(rs, s.aggRecs...)
		s.aggRecs = nil
	}
	for i := range d.verify {
		rs = d.settleLanded(&d.verify[i], now, rs)
	}
	d.verify = nil
	p.fail(rs, cerr)
	for d.inFlight > 0 {
		req := <-p.resps
		d.inFlight--
		var left []*Result
		for i := range req.entries {
			e, st := &req.entries[i], &req.status[i]
			switch st.kind {
			case stRetry, stAbort:
				e.fold()
				for j := 0; j < e.n(); j++ {
					left = append(left, e.rec(j))
				}
			case stVerify:
				e.shard.verifying++ // settleLanded counts it out again
				left = d.settleLanded(&verifyItem{e: *e, landed: st.shardID, seq: st.seq}, now, left)
			}
		}
		// These may have reached Kinesis (the call was cut short): ErrClosed says only that
		// the producer could not confirm them.
		p.fail(left, cerr)
	}
	close(p.reqs)
	p.setGauges()
}

// closeError is the outcome error of records Close gives up on.
func (p *Producer) closeError() error {
	if cause := context.Cause(p.run); cause != nil && cause != context.Canceled {
		return cause
	}
	return ErrClosed
}
