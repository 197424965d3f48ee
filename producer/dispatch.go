package producer

import (
	"time"

	"github.com/shardline/kinesis/aggregation"
	"github.com/shardline/kinesis/internal/shardmap"
)

// dispatcher owns everything between the buffer's inbox and the senders: shard prediction,
// aggregation per predicted shard, per-shard queues, rate limits, ordering, batching into
// PutRecords requests, retries and the stale-map check. It runs on one goroutine, so none of
// its state needs a lock; it talks to the rest through channels that never block it.
type dispatcher struct {
	p   *Producer
	cfg *config

	m        *shardmap.Map
	route    []*shard                  // the state of each open shard of m, by index
	shards   map[string]*shard         // every shard with state: routed or retired
	ranges   map[string]shardmap.Range // hash-key range of every listed shard, closed ones too
	mapErr   error                     // the last listing error, until a listing succeeds
	mapFatal bool                      // the last listing failed for good and there is no map
	retired  int                       // retired shards still holding records

	active   []*shard     // shards with an open aggregate or queued entries
	queued   int          // entries queued over all shards
	waiting  []*Result    // records accepted before the first shard map
	verify   []verifyItem // aggregates that landed on an unexpected shard
	spare    []*Result    // the inbox buffer to hand back to the buffer
	scratch  []*Result    // reused by retry
	groups   []shardGroup // reused by requeue
	free     []*request   // recycled requests
	recPool  [][]*Result  // recycled aggregate record lists
	blobs    [][]byte     // recycled aggregate data buffers
	bpool    []*aggregation.Builder
	inFlight int
	rr       int // round-robin start of the next request
	closing  bool
}

// verifyItem is an aggregate Kinesis stored on a shard other than the predicted one. Whether
// each of its user records is readable there depends on the landing shard's hash-key range,
// which a fresh shard map tells.
type verifyItem struct {
	e      entry
	landed string
	seq    string
	after  uint64 // resolved by a listing that started after refresh request number after
}

type shardGroup struct {
	s  *shard
	rs []*Result
}

// Limits on what the dispatcher keeps for reuse.
const (
	maxPooled = 64
)

func newDispatcher(p *Producer) *dispatcher {
	return &dispatcher{p: p, cfg: &p.cfg, shards: make(map[string]*shard)}
}

// run is the dispatcher's loop. It returns when the producer's run context ends, after
// failing everything it still holds (nothing, after a complete drain).
func (d *dispatcher) run() {
	defer d.p.pipeline.Done()
	p := d.p
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	closing := p.closing
	for {
		now := time.Now()
		d.pump(now)
		p.setGauges()
		if next := d.nextWake(now); next.IsZero() {
			timer.Stop()
		} else {
			timer.Reset(next.Sub(now))
		}
		select {
		case <-p.buf.wake:
			d.takeInbox()
		case req := <-p.resps:
			d.handle(req, time.Now())
		case u := <-p.maps:
			d.applyMap(u, time.Now())
		case <-timer.C:
		case <-p.flushSig:
			// Take the inbox first: Flush marked its generation before signalling, so every
			// record it waits for is in the inbox or already here.
			d.takeInbox()
			d.markDue(time.Now())
		case <-closing:
			closing = nil
			d.closing = true
			d.takeInbox()
		case <-p.run.Done():
			d.shutdown()
			return
		}
	}
}

func (d *dispatcher) takeInbox() {
	rs := d.p.buf.take(d.spare)
	// Records are stamped here, once per batch: reading the clock under the buffer's lock on
	// every Put costs more than the microseconds a record waits in the inbox.
	now := time.Now()
	for _, r := range rs {
		r.accepted = now
		d.add(r)
	}
	clear(rs)
	d.spare = rs[:0]
}

// add routes one accepted record to its predicted shard: into the shard's open aggregate, or
// as a plain entry when aggregation is off or the record is too large to share one.
func (d *dispatcher) add(r *Result) {
	if d.m == nil {
		if d.mapFatal {
			d.p.failOne(r, d.p.mapError(d.mapErr))
			return
		}
		d.waiting = append(d.waiting, r)
		return
	}
	s := d.shardFor(r)
	now := r.accepted
	if !d.cfg.aggregation || s == nil {
		if s == nil { // a gap in the map: send plain, Kinesis routes it by its own key
			s = d.route[0]
			d.askRefresh()
		}
		d.seal(s, now) // the open aggregate holds older records of this shard: they go first
		d.enqueue(s, plainEntry(s, r, d.plainDeadline(s, now)), false)
		return
	}
	if s.agg == nil {
		s.agg = d.builder()
	}
	if len(s.aggRecs) == 0 {
		d.open(s, now)
	}
	rec := &r.rec
	if !s.agg.Add(rec.PartitionKey, rec.ExplicitHashKey, rec.Data) {
		if len(s.aggRecs) > 0 {
			d.seal(s, now)
			s.agg = d.builder()
			d.open(s, now)
		}
		if !s.agg.Add(rec.PartitionKey, rec.ExplicitHashKey, rec.Data) {
			// Too large to aggregate even alone.
			d.putBuilder(s.agg)
			s.agg = nil
			d.enqueue(s, plainEntry(s, r, d.plainDeadline(s, now)), false)
			return
		}
	}
	s.aggRecs = append(s.aggRecs, r)
	d.activate(s)
}

// open starts an aggregate on s.
func (d *dispatcher) open(s *shard, now time.Time) {
	s.aggDeadline = now.Add(d.cfg.linger)
	if s.aggRecs == nil {
		s.aggRecs = d.recList()
	}
}

// plainDeadline is when a plain entry queued now must leave. With ordering, an entry queued
// behind a busy shard is due as soon as the shard can send: it cannot share a request with
// another entry of its shard, so waiting longer would cap the shard at one record per linger
// time.
func (d *dispatcher) plainDeadline(s *shard, now time.Time) time.Time {
	if d.cfg.ordering && !d.eligible(s, now) {
		return now
	}
	return now.Add(d.cfg.linger)
}

// shardFor returns the state of the open shard r's hash key maps to, or nil if the map has a
// gap there.
func (d *dispatcher) shardFor(r *Result) *shard {
	// The first shard whose range ends at or after h, by binary search over route (in
	// hash-key order, like the map's entries); written out because it runs once per record.
	h := r.hash
	lo, hi := 0, len(d.route)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if end := d.route[mid].rng.End; end.Hi < h.Hi || (end.Hi == h.Hi && end.Lo < h.Lo) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == len(d.route) || !d.route[lo].rng.Contains(h) {
		return nil
	}
	return d.route[lo]
}

// seal closes the open aggregate of s and queues it. With ordering, a sealed aggregate is due
// at once: it cannot grow any more, and cannot share a request with another entry of its
// shard, so waiting would only cost throughput. Without ordering it waits for its deadline to
// share a request with others.
func (d *dispatcher) seal(s *shard, now time.Time) {
	if len(s.aggRecs) == 0 {
		return
	}
	deadline := s.aggDeadline
	if d.cfg.ordering && now.Before(deadline) {
		deadline = now
	}
	e, kept := d.pack(s, s.agg, s.aggRecs, deadline)
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
	return entry{
		shard:    s,
		pk:       first.rec.PartitionKey,
		ehk:      ehk,
		hash:     first.hash,
		data:     blob,
		recs:     recs,
		size:     len(first.rec.PartitionKey) + len(blob),
		deadline: deadline,
	}, true
}

func (d *dispatcher) enqueue(s *shard, e entry, front bool) {
	if front {
		s.q.pushFront(e)
	} else {
		s.q.pushBack(e)
	}
	s.qBytes += e.size
	d.queued++
	d.activate(s)
}

func (d *dispatcher) activate(s *shard) {
	if !s.active {
		s.active = true
		d.active = append(d.active, s)
	}
}

// compact drops shards that hold nothing from the active list.
func (d *dispatcher) compact() {
	kept := d.active[:0]
	for _, s := range d.active {
		if s.aggLen() > 0 || s.q.len() > 0 {
			kept = append(kept, s)
		} else {
			s.active = false
		}
	}
	clear(d.active[len(kept):])
	d.active = kept
}

// eligible reports whether s may send its next entry now, rate limits aside.
func (d *dispatcher) eligible(s *shard, now time.Time) bool {
	if s.retired || s.verifying > 0 || now.Before(s.blockedUntil) {
		return false
	}
	// Ordering: one request in flight per shard, and nothing at all while records of a
	// retired shard are in flight (they may have to be routed again, ahead of newer ones).
	return !d.cfg.ordering || (s.inFlight == 0 && d.retired == 0)
}

// markDue makes everything held due now (Flush).
func (d *dispatcher) markDue(now time.Time) {
	for _, s := range d.active {
		if len(s.aggRecs) > 0 && s.aggDeadline.After(now) {
			s.aggDeadline = now
		}
		for i := 0; i < s.q.len(); i++ {
			if e := s.q.at(i); e.deadline.After(now) {
				e.deadline = now
			}
		}
	}
}

// pump seals the aggregates that are due and sends every request worth sending.
func (d *dispatcher) pump(now time.Time) {
	d.failExpiredWaiting(now)
	for _, s := range d.active {
		// An aggregate stays open while its shard cannot send: it keeps filling instead.
		if len(s.aggRecs) > 0 && s.q.len() == 0 && (d.closing || !now.Before(s.aggDeadline)) && d.eligible(s, now) {
			d.seal(s, now)
		}
	}
	for d.inFlight < d.cfg.maxInFlight && d.worthSending(now) {
		req := d.build(now)
		if req == nil {
			break
		}
		d.send(req)
	}
	d.compact()
}

// nextWake returns when the dispatcher must look again without being woken by an event: the
// next aggregate or entry deadline, backoff end or token refill; zero for never.
func (d *dispatcher) nextWake(now time.Time) time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, s := range d.active {
		if s.retired || s.verifying > 0 || (d.cfg.ordering && (s.inFlight > 0 || d.retired > 0)) {
			continue // a response or a shard map wakes us
		}
		if now.Before(s.blockedUntil) {
			consider(s.blockedUntil)
			continue
		}
		if s.q.len() == 0 {
			if len(s.aggRecs) > 0 && !d.closing {
				consider(s.aggDeadline)
			}
			continue
		}
		head := s.q.front()
		if at := s.lim.readyAt(now, head.size); at.After(now) {
			consider(at)
			continue
		}
		if !d.closing {
			consider(head.deadline)
		}
		// Otherwise due and sendable but not sent: the in-flight limit holds it, and the
		// next response wakes us.
	}
	if len(d.waiting) > 0 && d.mapErr != nil {
		consider(d.waiting[0].accepted.Add(d.cfg.recordTTL))
	}
	return next
}

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
}

// askRefresh asks for a new shard map and returns the number of the request: a listing
// reporting a number at least as high started after it.
func (d *dispatcher) askRefresh() uint64 {
	n := d.p.refreshAsked.Add(1)
	select {
	case d.p.refreshSig <- struct{}{}:
	default:
	}
	return n
}
