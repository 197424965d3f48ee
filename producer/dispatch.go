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
	keys     *keyTable    // with ordering: the keys in flight
	plan     []planned    // the entries chosen for the next request (see collect)
	planWake time.Time    // when the last plan that sent nothing can change without an event
	dirty    bool         // queues or keys changed since the last plan that sent nothing
	waiting  []*Result    // records accepted before the first shard map
	verify   []verifyItem // aggregates that landed on an unexpected shard
	spare    []*Result    // the inbox buffer to hand back to the buffer
	scratch  []*Result    // reused by retry
	sealed   []entry      // reused by add
	backoffs []time.Time  // backoff ends by attempt count, for the response being handled
	groups   []shardGroup // reused by requeue
	free     []*request   // recycled requests
	recPool  [][]*Result  // recycled aggregate record lists
	keyPool  [][]uint16   // recycled aggregate key lists
	blobs    [][]byte     // recycled aggregate data buffers
	bpool    []*aggregation.Builder
	inFlight int
	rr       int           // round-robin start of the next request
	kids     uint32        // key-table ids given to shards so far
	pace     time.Duration // see collect
	closing  bool
}

// maxPace bounds the pace of a token-starved shard (see collect).
const maxPace = 500 * time.Millisecond

func newDispatcher(p *Producer) *dispatcher {
	// Pacing a token-starved shard: one request per linger time, but shorter than the one
	// second its buckets hold, so that tokens never go to waste.
	d := &dispatcher{p: p, cfg: &p.cfg, shards: make(map[string]*shard), pace: min(p.cfg.linger, maxPace)}
	if p.cfg.ordering {
		d.keys = newKeyTable()
	}
	return d
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
			d.stir()
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
		e := plainEntry(s, r, now.Add(d.cfg.linger))
		if s == nil { // a gap in the map: send plain, Kinesis routes it by its own key
			s = d.route[0]
			e.shard, e.stray = s, true
			d.askRefresh()
		}
		d.seal(s, now) // the open aggregate holds older records of this shard: they go first
		d.enqueue(s, e, false)
		return
	}
	added := d.fill(s, &s.agg, r, now.Add(d.cfg.linger), &d.sealed)
	if len(d.sealed) > 0 { // the open aggregate was full: it goes first
		for _, e := range d.sealed {
			d.enqueue(s, e, false)
		}
		clear(d.sealed)
		d.sealed = d.sealed[:0]
	}
	if !added {
		d.enqueue(s, plainEntry(s, r, now.Add(d.cfg.linger)), false)
		return
	}
	d.activate(s)
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

func (d *dispatcher) enqueue(s *shard, e entry, front bool) {
	if front {
		s.q.pushFront(e)
	} else {
		s.q.pushBack(e)
	}
	if front || !s.cutShort {
		s.idle = false
	}
	s.qBytes += e.size
	d.queued++
	d.dirty = true
	d.activate(s)
}

// drain empties s and appends every record it held to rs, oldest first: its queue, then its
// open aggregate.
func (d *dispatcher) drain(s *shard, rs []*Result) []*Result {
	for s.q.len() > 0 {
		e := s.q.popFront()
		d.queued--
		rs = e.appendRecs(rs)
	}
	s.qBytes = 0
	rs = append(rs, s.agg.recs...)
	d.putBuilder(s.agg.b)
	s.agg = aggregate{}
	return rs
}

// stir makes the next plan look at every shard again: something they all depend on changed.
func (d *dispatcher) stir() {
	d.dirty = true
	for _, s := range d.shards {
		s.idle = false
	}
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

// sendable reports whether s may send entries now, rate limits, backoff of single entries and
// keys aside.
func (d *dispatcher) sendable(s *shard, now time.Time) bool {
	if s.retired || s.verifying > 0 || now.Before(s.blockedUntil) {
		return false
	}
	// Ordering: nothing at all while records of a retired shard are in flight or queued
	// there (they may have to be routed again, ahead of newer records of their keys, which
	// the new map sends to other shards).
	return !d.cfg.ordering || d.retired == 0
}

// markDue makes everything held due now (Flush).
func (d *dispatcher) markDue(now time.Time) {
	d.stir()
	for _, s := range d.active {
		if len(s.agg.recs) > 0 && s.agg.deadline.After(now) {
			s.agg.deadline = now
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
	sealed := d.sealDue(now)
	// Planning costs a walk over the queues: skip it when nothing it depends on changed.
	if sealed || d.dirty || (!d.planWake.IsZero() && !now.Before(d.planWake)) {
		// Sending can empty a queue behind which an aggregate was kept open: seal and send
		// once more rather than leave the shard idle until the next event.
		if d.sendDue(now) > 0 && d.sealDue(now) {
			d.sendDue(now)
		}
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
	if !d.dirty && d.queued > 0 {
		consider(d.planWake) // queued entries: their deadlines, backoffs and tokens
	}
	for _, s := range d.active {
		if len(s.agg.recs) == 0 || s.retired || s.verifying > 0 || (d.cfg.ordering && d.retired > 0) {
			continue // a response or a shard map wakes us
		}
		consider(s.blockedUntil)
		if !d.closing {
			consider(s.agg.deadline)
		}
	}
	if len(d.waiting) > 0 && d.mapErr != nil {
		consider(d.waiting[0].accepted.Add(d.cfg.recordTTL))
	}
	return next
}
