package producer

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/shardline/kinesis/events"
	"github.com/shardline/kinesis/internal/backoff"
	"github.com/shardline/kinesis/internal/shardmap"
	"github.com/shardline/kinesis/internal/telemetry"
)

// minRefreshGap spaces shard listings out: ListShards allows 100 calls per second per stream,
// shared by every producer and consumer of it.
const minRefreshGap = time.Second

// mapUpdate is the result of one shard listing, sent from the refresher to the dispatcher.
type mapUpdate struct {
	seq    uint64 // the refresh request number current when the listing started
	m      *shardmap.Map
	ranges map[string]shardmap.Range
	err    error
}

// refreshLoop lists the stream's shards at start, on the dispatcher's request (a record
// landed on an unexpected shard) and periodically, and hands each result to the dispatcher.
// A failed listing is retried with backoff.
func (p *Producer) refreshLoop() {
	defer p.pipeline.Done()
	var tick <-chan time.Time
	if p.cfg.shardMapRefresh > 0 {
		t := time.NewTicker(p.cfg.shardMapRefresh)
		defer t.Stop()
		tick = t.C
	}
	var last time.Time
	failures := 0
	for {
		select {
		case <-p.run.Done():
			return
		case <-p.refreshSig:
		case <-tick:
		}
		if !last.IsZero() {
			if err := backoff.Sleep(p.run, minRefreshGap-time.Since(last)); err != nil {
				return
			}
		}
		u := p.listShards(p.refreshAsked.Load())
		last = time.Now()
		select {
		case p.maps <- u:
		case <-p.run.Done():
			return
		}
		if u.err == nil {
			failures = 0
			continue
		}
		failures++
		if err := backoff.Sleep(p.run, p.cfg.backoff.Delay(failures-1)); err != nil {
			return
		}
		select {
		case p.refreshSig <- struct{}{}:
		default:
		}
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

func (p *Producer) listShards(seq uint64) mapUpdate {
	ctx, cancel := context.WithTimeout(p.run, p.cfg.requestTimeout)
	defer cancel()
	p.stats.mapRefreshes.Add(1)
	shards, err := shardmap.List(ctx, timedLister{p}, p.stream, nil)
	prev := p.listing.Load()
	p.listing.Store(&listing{ok: err == nil || (prev != nil && prev.ok), err: err, at: time.Now()})
	if err != nil {
		p.log.Warn("producer: listing shards failed", "err", err)
		return mapUpdate{seq: seq, err: err}
	}
	m, err := shardmap.New(shards)
	if err != nil {
		p.log.Warn("producer: unusable shard list", "err", err)
		return mapUpdate{seq: seq, err: err}
	}
	ranges := make(map[string]shardmap.Range, len(shards))
	for _, s := range shards {
		if r, err := shardmap.ShardRange(s); err == nil {
			ranges[aws.ToString(s.ShardId)] = r
		}
	}
	p.log.Debug("producer: shard map listed", "open", m.Len(), "listed", len(shards))
	if p.bus.Active() {
		p.emit(events.Event{Type: events.ShardMapRefreshed, Detail: fmt.Sprintf("open=%d listed=%d", m.Len(), len(shards))})
	}
	return mapUpdate{seq: seq, m: m, ranges: ranges}
}

// timedLister times the ListShards calls of a shard listing (one per page).
type timedLister struct{ p *Producer }

func (l timedLister) ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	start := time.Now()
	out, err := l.p.api.ListShards(ctx, in, optFns...)
	telemetry.KinesisCall(l.p.cfg.metrics, l.p.stream, "", "ListShards", start, err)
	return out, err
}

// mapError is the outcome error of records that could not be routed for want of a shard map.
func (p *Producer) mapError(err error) error {
	return fmt.Errorf("producer: no shard map for stream %s: %w", p.stream, err)
}

// applyMap installs a new shard map: shards that left it retire (their records are routed
// again once nothing of them is in flight), aggregates that landed elsewhere are settled, and
// records that waited for a first map are routed.
func (d *dispatcher) applyMap(u mapUpdate, now time.Time) {
	if u.err != nil {
		d.mapErr = u.err
		if d.m == nil && !IsRetryable(u.err) {
			// No map and no hope of one soon (missing stream, denied access): fail what waits
			// instead of holding it until Close.
			d.mapFatal = true
			d.p.fail(d.waiting, d.p.mapError(u.err))
			clear(d.waiting)
			d.waiting = d.waiting[:0]
		}
		return
	}
	d.mapErr, d.mapFatal = nil, false
	d.m, d.ranges = u.m, u.ranges
	d.stir()
	entries := u.m.Entries()
	route := make([]*shard, len(entries))
	routed := make(map[string]bool, len(entries))
	for i, en := range entries {
		s := d.shards[en.ID]
		if s == nil {
			d.kids++
			if d.kids == mixed {
				d.kids = 1
			}
			s = &shard{id: en.ID, rng: en.Range, kid: d.kids, lim: newLimiter(d.cfg.shardRecordsPerSec, d.cfg.shardBytesPerSec, d.cfg.maxRecordSize)}
			d.shards[en.ID] = s
		}
		if s.retired {
			s.retired = false
			d.retired--
		}
		route[i] = s
		routed[en.ID] = true
	}
	for id, s := range d.shards {
		if !routed[id] && !s.retired {
			s.retired = true
			d.retired++
			d.p.log.Info("producer: shard left the shard map", "shard", id)
		}
	}
	d.route = route
	d.resolve(u.seq, now)
	waiting := d.waiting
	d.waiting = nil
	for _, r := range waiting {
		d.add(r)
	}
	d.rehome(now)
}

// failExpiredWaiting fails the records that waited for a first shard map longer than the
// record TTL while listings kept failing.
func (d *dispatcher) failExpiredWaiting(now time.Time) {
	if d.m != nil || d.mapErr == nil || len(d.waiting) == 0 {
		return
	}
	kept := d.waiting[:0]
	cause := d.p.mapError(d.mapErr)
	for _, r := range d.waiting {
		if !d.budgetSpent(r, cause, now) {
			kept = append(kept, r)
		}
	}
	clear(d.waiting[len(kept):])
	d.waiting = kept
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
		rs = d.drain(s, rs)
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

type shardGroup struct {
	s     *shard
	stray bool
	rs    []*Result
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

// verifyItem is an aggregate Kinesis stored on a shard other than the predicted one. Whether
// each of its user records is readable there depends on the landing shard's hash-key range,
// which a fresh shard map tells.
type verifyItem struct {
	e      entry
	landed string
	seq    string
	after  uint64 // resolved by a listing that started after refresh request number after
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
		cause := &wrongShardError{predicted: it.e.shard.id, landed: it.landed}
		for _, r := range resend {
			// Kinesis stored it, outside its shard's range: consumers that check the range
			// (the KCL, Shardline's) drop it, others read it.
			r.maybe = true
			if !d.budgetSpent(r, cause, now) {
				keep = append(keep, r)
			}
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
