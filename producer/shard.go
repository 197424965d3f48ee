package producer

import (
	"time"

	"github.com/shardline/kinesis/internal/shardmap"
)

// shard is the dispatcher's state for one shard it predicted records for: the open aggregate,
// the queue of Kinesis records (entries) waiting to be sent, and what holds them back.
// Only the dispatcher goroutine touches it.
type shard struct {
	id  string
	rng shardmap.Range
	kid uint32 // the shard's id in the key table, unique among the producer's shards

	// retired: the shard left the shard map (it closed in a reshard). It sends nothing more;
	// once nothing of it is in flight, its records are routed again through the new map, all
	// at once and oldest first, and the shard is gone: the dispatcher forgets it.
	retired bool
	gone    bool

	agg aggregate // the open aggregate

	q      deque
	qBytes int

	inFlight     int       // entries of this shard in requests not yet answered
	verifying    int       // entries that landed elsewhere, waiting for a shard-map refresh
	blockedUntil time.Time // throttled: nothing of this shard leaves before
	lastSent     time.Time // when entries of this shard last left

	// idle: the last plan found nothing of this shard to send (or found it and it was sent),
	// and nothing it depends on has changed since, until idleUntil if that is set (see
	// collect). cutShort: that plan stopped before the end of the queue, so entries added at
	// the back change nothing. scanFull: it stopped because the request was full.
	idle      bool
	cutShort  bool
	scanFull  bool
	idleUntil time.Time
	lim       limiter
	active    bool // listed in dispatcher.active
}

func (s *shard) aggLen() int { return len(s.agg.recs) }

// waiting reports whether s has queued entries that are not held back by a retry backoff.
func (s *shard) waiting(now time.Time) bool {
	for i := 0; i < s.q.len(); i++ {
		if !now.Before(s.q.at(i).notBefore) {
			return true
		}
	}
	return false
}

// busy reports whether records of s are in flight or waiting for verification.
func (s *shard) busy() bool { return s.inFlight > 0 || s.verifying > 0 }

// entry is one Kinesis record to send: an aggregate of user records, or one user record sent
// plain. Entries are values, moved between queues and requests without allocation.
type entry struct {
	shard    *shard // predicted shard
	pk       string // the Kinesis record's partition key
	ehk      string // the Kinesis record's explicit hash key, "" for none
	hash     shardmap.Hash
	data     []byte
	one      *Result   // the user record of a plain entry
	recs     []*Result // the user records of an aggregate, in order; nil for a plain entry
	keys     []uint16  // with ordering, the key buckets of an aggregate (see keyTable.list)
	size     int       // len(pk) + len(data), what Kinesis counts
	deadline time.Time // when the entry must leave even if its request is not full
	// notBefore is the end of the entry's retry backoff: it does not leave before, and no
	// newer record sharing a key with it does either.
	notBefore time.Time
	// attempts counts the PutRecords requests that carried this entry, firstSent is when the
	// first of them left, and maybe says that one of them ended without a known result. A
	// record's own fields say the same of the entries it was in before; fold merges the two
	// when the record leaves the entry or reaches an outcome, so sending never touches every
	// record.
	attempts  int
	firstSent time.Time
	maybe     bool
	stray     bool // routed outside the shard map (a gap in it): its keys block every shard
}

// fold moves what e's attempts tell into its records, before they leave e or reach an
// outcome.
func (e *entry) fold() {
	if e.attempts == 0 && !e.maybe {
		return
	}
	for j := 0; j < e.n(); j++ {
		r := e.rec(j)
		r.attempts += int32(e.attempts)
		if r.sent == 0 && !e.firstSent.IsZero() {
			r.sent = e.firstSent.Sub(r.accepted) + 1
		}
		r.maybe = r.maybe || e.maybe
	}
	e.attempts = 0
}

// appendRecs folds e and appends its user records to rs, in order: they leave the entry.
func (e *entry) appendRecs(rs []*Result) []*Result {
	e.fold()
	if e.recs != nil {
		return append(rs, e.recs...)
	}
	return append(rs, e.one)
}

func (e *entry) aggregated() bool { return e.recs != nil }

// n returns the number of user records in e.
func (e *entry) n() int {
	if e.recs != nil {
		return len(e.recs)
	}
	return 1
}

// rec returns the i-th user record of e.
func (e *entry) rec(i int) *Result {
	if e.recs != nil {
		return e.recs[i]
	}
	return e.one
}

// plainEntry makes the entry that sends r alone, under its own keys.
func plainEntry(s *shard, r *Result, deadline time.Time) entry {
	return entry{
		shard:    s,
		pk:       r.rec.PartitionKey,
		ehk:      r.rec.ExplicitHashKey,
		hash:     r.hash,
		data:     r.rec.Data,
		one:      r,
		size:     int(r.size),
		deadline: deadline,
	}
}

// deque is a ring buffer of entries: retried entries go back to the front, new ones to the
// back.
type deque struct {
	buf  []entry
	head int
	n    int
}

func (d *deque) len() int { return d.n }

func (d *deque) at(i int) *entry { return &d.buf[(d.head+i)%len(d.buf)] }

func (d *deque) grow() {
	if d.n < len(d.buf) {
		return
	}
	buf := make([]entry, max(8, 2*len(d.buf)))
	for i := 0; i < d.n; i++ {
		buf[i] = d.buf[(d.head+i)%len(d.buf)]
	}
	d.buf, d.head = buf, 0
}

func (d *deque) pushBack(e entry) {
	d.grow()
	d.buf[(d.head+d.n)%len(d.buf)] = e
	d.n++
}

func (d *deque) pushFront(e entry) {
	d.grow()
	d.head = (d.head - 1 + len(d.buf)) % len(d.buf)
	d.buf[d.head] = e
	d.n++
}

// take appends the entries at the queue positions of items (ascending, all of one queue) to
// dst, in order, and closes the gaps: the other entries keep their order. It costs one move
// per entry up to the last position taken.
func (d *deque) take(items []planned, dst []entry) []entry {
	for _, it := range items {
		dst = append(dst, *d.at(it.i))
	}
	k := len(items) - 1
	w := items[k].i
	for i := w; i >= 0; i-- {
		if k >= 0 && items[k].i == i {
			k--
			continue
		}
		if w != i {
			*d.at(w) = *d.at(i)
		}
		w--
	}
	for i := 0; i < len(items); i++ {
		*d.at(i) = entry{} // drop references
	}
	d.head = (d.head + len(items)) % len(d.buf)
	d.n -= len(items)
	if d.n == 0 {
		d.head = 0
	}
	return dst
}

func (d *deque) popFront() entry {
	e := d.buf[d.head]
	d.buf[d.head] = entry{} // drop references
	d.head = (d.head + 1) % len(d.buf)
	d.n--
	if d.n == 0 {
		d.head = 0
	}
	return e
}
