package producer

import (
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
	rs := e.appendRecs(d.scratch[:0])
	keep := rs[:0]
	for _, r := range rs {
		if !d.budgetSpent(r, cause, now) {
			keep = append(keep, r)
		}
	}
	clear(rs[len(keep):])
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

// budgetSpent reports whether r has spent its retry budget (see WithRetryBudget): its attempts,
// or its age since its first attempt (since Put accepted it, if it was never sent). If so, it
// fails r with a RetryBudgetError carrying cause, the last reason it was not delivered.
func (d *dispatcher) budgetSpent(r *Result, cause error, now time.Time) bool {
	age := r.firstSentAgo(now)
	if int(r.attempts) < d.cfg.maxAttempts && age < d.cfg.recordTTL {
		return false
	}
	d.p.failOne(r, &RetryBudgetError{Attempts: int(r.attempts), Age: age, Err: cause})
	return true
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
