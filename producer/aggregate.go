package producer

import (
	"time"

	"github.com/shardline/kinesis/aggregation"
)

// aggregate is a KPL aggregate being filled with user records of one shard.
type aggregate struct {
	b        *aggregation.Builder // nil when none is open
	recs     []*Result            // the user records in b, in order
	deadline time.Time            // when its first record has lingered enough
}

// fill adds r to a, an aggregate of records of s: beside the records a holds, or, when r does
// not fit there, in a new aggregate, after those records are sealed into an entry appended to
// *sealed. It reports false when r is too large to aggregate even alone: the caller sends it
// plain, after what was sealed. deadline is the one a takes if r is its first record.
func (d *dispatcher) fill(s *shard, a *aggregate, r *Result, deadline time.Time, sealed *[]entry) bool {
	if a.b == nil {
		a.b = d.builder()
	}
	rec := &r.rec
	if !a.b.Add(rec.PartitionKey, rec.ExplicitHashKey, rec.Data) {
		if len(a.recs) > 0 {
			*sealed = append(*sealed, d.pack(s, a))
		}
		if !a.b.Add(rec.PartitionKey, rec.ExplicitHashKey, rec.Data) {
			d.putBuilder(a.b)
			a.b = nil
			return false
		}
	}
	if len(a.recs) == 0 {
		a.deadline = deadline
		if a.recs == nil {
			a.recs = d.recList()
		}
	}
	a.recs = append(a.recs, r)
	return true
}

// seal closes the open aggregate of s and queues it. It keeps its deadline, so as to share a
// request with others; with ordering, it leaves sooner if a newer entry sharing keys with it
// waits behind it (see collect).
func (d *dispatcher) seal(s *shard, now time.Time) {
	if len(s.agg.recs) == 0 {
		return
	}
	e := d.pack(s, &s.agg)
	d.putBuilder(s.agg.b)
	s.agg.b = nil
	d.enqueue(s, e, false)
}

// pack turns the records of a into one entry that leaves by a's deadline, and empties a (its
// builder stays, reset). An aggregate of one record is sent plain under its own keys.
func (d *dispatcher) pack(s *shard, a *aggregate) entry {
	b, recs := a.b, a.recs
	if len(recs) == 1 {
		b.Reset()
		a.recs = recs[:0] // the plain entry holds the record itself: keep the list
		return plainEntry(s, recs[0], a.deadline)
	}
	a.recs = nil // the entry takes the list
	blob := d.blob(b.Size())
	blob = b.AppendTo(blob)
	b.Reset()
	first := recs[0]
	// The aggregate travels under its first record's partition key and that record's hash
	// key, given explicitly: Kinesis then stores it on the shard predicted for the first
	// record, the shard that was predicted for all of them.
	ehk := first.rec.ExplicitHashKey
	if ehk == "" {
		ehk = first.hash.String()
	}
	e := entry{
		shard:    s,
		pk:       first.rec.PartitionKey,
		ehk:      ehk,
		hash:     first.hash,
		data:     blob,
		recs:     recs,
		size:     len(first.rec.PartitionKey) + len(blob),
		deadline: a.deadline,
	}
	if d.keys != nil {
		e.keys = d.keys.list(recs, d.keyList())
	}
	return e
}

// sealDue seals the open aggregates that are due and could be sent, and reports whether it
// sealed any. An aggregate stays open while its shard cannot send it (entries of the shard
// wait for tokens or keys, the shard is held back, or, with ordering, one of its keys is in
// flight): it keeps filling instead. Entries waiting out a retry backoff do not keep it open.
func (d *dispatcher) sealDue(now time.Time) bool {
	sealed := false
	for _, s := range d.active {
		if len(s.agg.recs) == 0 || (!d.closing && now.Before(s.agg.deadline)) || !d.sendable(s, now) || s.waiting(now) {
			continue
		}
		if d.keys != nil && d.keys.anyBusy(s, s.agg.recs) {
			continue
		}
		d.seal(s, now)
		sealed = true
	}
	return sealed
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
	var a aggregate
	for _, r := range rs {
		if !d.fill(s, &a, r, now, &entries) {
			entries = append(entries, plainEntry(s, r, now))
		}
	}
	if len(a.recs) > 0 {
		entries = append(entries, d.pack(s, &a))
	}
	d.putBuilder(a.b)
	return entries
}

// Limits on what the dispatcher keeps for reuse.
const (
	maxPooled = 64
)

func (d *dispatcher) builder() *aggregation.Builder {
	if n := len(d.bpool); n > 0 {
		b := d.bpool[n-1]
		d.bpool = d.bpool[:n-1]
		return b
	}
	return aggregation.NewBuilder(d.cfg.aggregationMaxSize)
}

func (d *dispatcher) putBuilder(b *aggregation.Builder) {
	if b == nil {
		return
	}
	b.Reset()
	if len(d.bpool) < maxPooled {
		d.bpool = append(d.bpool, b)
	}
}

func (d *dispatcher) recList() []*Result {
	if n := len(d.recPool); n > 0 {
		rs := d.recPool[n-1]
		d.recPool = d.recPool[:n-1]
		return rs
	}
	return make([]*Result, 0, 64)
}

func (d *dispatcher) blob(size int) []byte {
	for n := len(d.blobs); n > 0; n = len(d.blobs) {
		b := d.blobs[n-1]
		d.blobs = d.blobs[:n-1]
		if cap(b) >= size {
			return b[:0]
		}
	}
	return make([]byte, 0, max(size, d.cfg.aggregationMaxSize))
}

// recycle takes back what a delivered aggregate no longer needs.
func (d *dispatcher) recycle(e *entry) {
	if e.recs == nil {
		return
	}
	if len(d.recPool) < maxPooled {
		clear(e.recs)
		d.recPool = append(d.recPool, e.recs[:0])
	}
	if len(d.blobs) < maxPooled {
		d.blobs = append(d.blobs, e.data[:0])
	}
	if e.keys != nil && len(d.keyPool) < maxPooled {
		d.keyPool = append(d.keyPool, e.keys[:0])
	}
}

func (d *dispatcher) keyList() []uint16 {
	if n := len(d.keyPool); n > 0 {
		ks := d.keyPool[n-1]
		d.keyPool = d.keyPool[:n-1]
		return ks
	}
	return make([]uint16, 0, 64)
}
