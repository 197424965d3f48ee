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

// requeue routes rs (in their order, oldest first) through the current shard map into new
// entries at the front of their shards' queues, ahead of anything newer, which do not leave
// before notBefore.
func (d *dispatcher) requeue(rs []*Result, now, notBefore time.Time) {
	groups := d.groups[:0]
	for _, r := range rs {
		s, stray := d.shardFor(r), false
		if s == nil {
			s, stray = d.route[0], true // a gap in the map: Kinesis routes plain records by their own key
		}
		found := false
		for i := range groups {
			if groups[i].s == s && groups[i].stray == stray {
				groups[i].rs = append(groups[i].rs, r)
				found = true
				break
			}
		}
		if !found {
			groups = append(groups, shardGroup{s: s, stray: stray, rs: []*Result{r}})
		}
	}
	for _, g := range groups {
		d.pushFront(g.s, g.rs, now, notBefore, g.stray)
	}
	clear(groups)
	d.groups = groups[:0]
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

// resolve settles the aggregates that landed on an unexpected shard, using a shard map
// listed after they landed (listing number seq). Records whose hash key lies in the landing
// shard's range are delivered: consumers read them there. The others would be dropped by
// KCL-compatible consumers (as records outside the shard's range), so they are sent again:
// back to the front of their predicted shard's queue, which is normally retired by now and
// routes them through the fresh map, ahead of every newer record of their keys.
func (d *dispatcher) resolve(seq uint64, now time.Time) {
	kept := d.verify[:0]
	for i := range d.verify {
		it := &d.verify[i]
		if it.after > seq {
			kept = append(kept, *it)
			continue
		}
		resend := d.settleLanded(it, now, d.scratch[:0])
		keep := resend[:0]
		for _, r := range resend {
			// Kinesis stored it, outside its shard's range: consumers that check the range
			// (the KCL, Shardline's) drop it, others read it.
			r.maybe = true
			if age := r.firstSentAgo(now); int(r.attempts) >= d.cfg.maxAttempts || age >= d.cfg.recordTTL {
				d.p.failOne(r, &RetryBudgetError{Attempts: int(r.attempts), Age: age,
					Err: &wrongShardError{predicted: it.e.shard.id, landed: it.landed}})
				continue
			}
			keep = append(keep, r)
		}
		if len(keep) > 0 {
			d.p.stats.resent.Add(int64(len(keep)))
			d.countRetries(len(keep))
			d.p.log.Info("producer: sending again records an aggregate carried outside their shard",
				"predicted", it.e.shard.id, "landed", it.landed, "records", len(keep))
			if s := it.e.shard; s.gone {
				d.requeue(keep, now, time.Time{})
			} else {
				d.pushFront(s, keep, now, time.Time{}, it.e.stray)
			}
		}
		clear(resend)
		d.scratch = resend[:0]
	}
	clear(d.verify[len(kept):])
	d.verify = kept
}

// settleLanded delivers the records of it that are readable on the landing shard and appends
// the others to resend. Without the landing shard's range (not listed), only records sharing
// the aggregate's own hash key are known to be in range.
func (d *dispatcher) settleLanded(it *verifyItem, now time.Time, resend []*Result) []*Result {
	it.e.shard.verifying--
	it.e.shard.idle = false
	d.dirty = true
	it.e.fold()
	rng, known := d.ranges[it.landed]
	var done []*Result
	dataBytes := 0
	for j, r := range it.e.recs {
		if (known && rng.Contains(r.hash)) || r.hash == it.e.hash {
			dataBytes += d.p.deliver(r, it.landed, it.seq, j, true, 0, now)
			done = append(done, r)
			continue
		}
		resend = append(resend, r)
	}
	d.p.delivered(done, 1, dataBytes)
	return resend
}

// rehome routes again the records of retired shards that have nothing in flight: their queue
// first (oldest), then their open aggregate.
func (d *dispatcher) rehome(now time.Time) {
	if d.retired == 0 || d.m == nil {
		return
	}
	var rs []*Result
	for id, s := range d.shards {
		if !s.retired || (d.cfg.ordering && s.busy()) {
			continue
		}
		for s.q.len() > 0 {
			e := s.q.popFront()
			d.queued--
			e.fold()
			for j := 0; j < e.n(); j++ {
				rs = append(rs, e.rec(j))
			}
		}
		s.qBytes = 0
		rs = append(rs, s.aggRecs...)
		s.aggRecs = nil
		d.putBuilder(s.agg)
		s.agg = nil
		s.gone = true
		delete(d.shards, id)
		d.retired--
	}
	if len(rs) > 0 {
		d.p.log.Info("producer: routing records of closed shards through the new shard map",
			"records", len(rs))
		d.requeue(rs, now, time.Time{})
	}
	d.compact()
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
