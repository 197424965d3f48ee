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
	for _, r := range d.waiting {
		if age := now.Sub(r.accepted); age >= d.cfg.recordTTL {
			d.p.failOne(r, &RetryBudgetError{Attempts: int(r.attempts), Age: age, Err: d.p.mapError(d.mapErr)})
			continue
		}
		kept = append(kept, r)
	}
	clear(d.waiting[len(kept):])
	d.waiting = kept
}

// timedLister times the ListShards calls of a shard listing (one per page).
type timedLister struct{ p *Producer }

func (l timedLister) ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	start := time.Now()
	out, err := l.p.api.ListShards(ctx, in, optFns...)
	telemetry.KinesisCall(l.p.cfg.metrics, l.p.stream, "", "ListShards", start, err)
	return out, err
}
