package producer

import (
	"time"

	"github.com/shardline/kinesis/aggregation"
)

// open starts an aggregate on s.
func (d *dispatcher) open(s *shard, now time.Time) {
	s.aggDeadline = now.Add(d.cfg.linger)
	if s.aggRecs == nil {
		s.aggRecs = d.recList()
	}
}

// seal closes the open aggregate of s and queues it. It keeps its deadline, so as to share a
// request with others; with ordering, it leaves sooner if a newer entry sharing keys with it
// waits behind it (see collect).
func (d *dispatcher) seal(s *shard, now time.Time) {
	if len(s.aggRecs) == 0 {
		return
	}
	e, kept := d.pack(s, s.agg, s.aggRecs, s.aggDeadline)
	if kept {
		s.aggRecs = nil
	} else {
		s.aggRecs = s.aggRecs[:0]
	}
	d.putBuilder(s.agg)
	s.agg = nil
	d.enqueue(s, e, false)
}

// pack turns the records in b into one entry and resets b. An aggregate of one record is
// sent plain under its own keys. kept reports whether the entry took ownership of recs.
func (d *dispatcher) pack(s *shard, b *aggregation.Builder, recs []*Result, deadline time.Time) (e entry, kept bool) {
	if len(recs) == 1 {
		b.Reset()
		return plainEntry(s, recs[0], deadline), false
	}
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
	e = entry{
		shard:    s,
		pk:       first.rec.PartitionKey,
		ehk:      ehk,
		hash:     first.hash,
		data:     blob,
		recs:     recs,
		size:     len(first.rec.PartitionKey) + len(blob),
		deadline: deadline,
	}
	if d.keys != nil {
		e.keys = d.keys.list(recs, d.keyList())
	}
	return e, true
}

// sealDue seals the open aggregates that are due and could be sent, and reports whether it
// sealed any. An aggregate stays open while its shard cannot send it (entries of the shard
// wait for tokens or keys, the shard is held back, or, with ordering, one of its keys is in
// flight): it keeps filling instead. Entries waiting out a retry backoff do not keep it open.
func (d *dispatcher) sealDue(now time.Time) bool {
	sealed := false
	for _, s := range d.active {
		if len(s.aggRecs) == 0 || (!d.closing && now.Before(s.aggDeadline)) || !d.sendable(s, now) || s.waiting(now) {
			continue
		}
		if d.keys != nil && d.keys.anyBusy(s, s.aggRecs) {
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
