package consumer

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/events"
	"github.com/shardline/kinesis/internal/backoff"
	"github.com/shardline/kinesis/internal/shardmap"
	"github.com/shardline/kinesis/metrics"
)

// readerEvent is what a reader tells the coordinator when it exits for a reason the
// coordinator must act on.
type readerEvent struct {
	shard    string
	children []types.ChildShard // at shard end
}

// startupAttempts is how many balancing runs may fail with a transient error before Run gives
// up at start: a store or stream that cannot be reached when the worker starts is far more
// often a wrong address than an outage, and a worker that spins silently hides it.
const startupAttempts = 3

// coordinate runs balancing until ctx ends or a fatal error, and returns that error.
func (c *Consumer) coordinate(ctx context.Context, h Handler) error {
	st := &balanceState{pending: make(map[string]time.Time), askedOf: make(map[string]string), absent: make(map[string]bool),
		rand: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
	timer := time.NewTimer(0) // the first run starts at once
	defer timer.Stop()
	started, failures := false, 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-c.fatal:
			return err
		case ev := <-c.events:
			c.addChildren(st, ev)
			// Children may be ready now: balance at once rather than at the next tick.
			c.drainEvents(st)
		case <-timer.C:
		}
		next, err := c.balance(ctx, h, st)
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			started, failures = true, 0
		default:
			if fatal := c.balanceFailed(err, started, failures); fatal != nil {
				return fatal
			}
			next = backoff.Policy{Base: c.cfg.errorBackoff, Max: min(c.cfg.renewInterval, c.cfg.maxBackoff)}.Delay(failures)
			failures++
		}
		if err := c.outageExceeded(); err != nil {
			return err
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// balanceFailed decides what a failed balancing run means: a fatal error for a configuration
// error (missing stream or table, access denied) and for any error before the first run
// succeeded more than startupAttempts times; nil, with the failure logged and kept for Status,
// for an outage that began later.
func (c *Consumer) balanceFailed(err error, started bool, failures int) error {
	var oe *opError
	if !errors.As(err, &oe) {
		return err // a *FatalError or a duplicate worker
	}
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
	switch {
	case oe.store && !errors.Is(oe.err, checkpoint.ErrUnavailable):
		return &FatalError{Op: "checkpoint store " + oe.op, Err: oe.err}
	case !oe.store && !IsRetryable(oe.err):
		return &FatalError{Op: oe.op, Err: oe.err}
	case !started && failures+1 >= startupAttempts:
		return &FatalError{Op: oe.op + " at start", Err: oe.err}
	}
	c.log.Warn("consumer: balancing failed; retrying", "op", oe.op, "err", oe.err)
	return nil
}

// opError is a failed call of a balancing run: which operation, and whether the checkpoint
// store (rather than Kinesis) failed.
type opError struct {
	op    string
	store bool
	err   error
}

func (e *opError) Error() string { return "consumer: " + e.op + ": " + e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

// addChildren merges the children a finished shard reported. A shard that ended without
// naming any (engines without ChildShards, such as kinesalite) makes the next balancing run
// list the shards, so that its children start then rather than at the next shard sync.
func (c *Consumer) addChildren(st *balanceState, ev readerEvent) {
	if len(ev.children) == 0 {
		st.listedAt = time.Time{}
	}
	if n := c.topo.addChildren(ev.shard, ev.children); n > 0 {
		c.cfg.metrics.Add(metrics.StreamReshardingEvents, float64(n), c.labels)
		c.emit(events.Event{Type: events.ReshardDetected, Shard: ev.shard, Records: n, Detail: "child shards of a finished shard"})
	}
}

// drainEvents merges every queued reader event.
func (c *Consumer) drainEvents(st *balanceState) {
	for {
		select {
		case ev := <-c.events:
			c.addChildren(st, ev)
		default:
			return
		}
	}
}

// balanceState is what balancing runs remember between each other.
type balanceState struct {
	listedAt time.Time            // last full shard listing
	pending  map[string]time.Time // handoffs this worker requested, by shard
	askedOf  map[string]string    // the owner each pending handoff was asked of, for the log
	absent   map[string]bool      // lease rows the last listing did not hold
	rand     *rand.Rand
}

// balance is one balancing run: observe (heartbeat, live workers, lease rows, the shard list
// when due), plan (decide), apply. It returns when the next run is due.
func (c *Consumer) balance(ctx context.Context, h Handler, st *balanceState) (time.Duration, error) {
	cctx, cancel := context.WithTimeout(ctx, c.cfg.callTimeout)
	defer cancel()
	live, err := c.heartbeat(cctx)
	if err != nil {
		return 0, err
	}
	v, err := c.observe(cctx, st, live)
	if err != nil {
		return 0, err
	}
	p := decide(v)
	if p.relist && !v.fresh {
		// The plan depends on a shard the topology lacks: list now rather than at the next
		// shard sync, and decide again.
		if err := c.listShards(cctx, st, v.leases); err != nil {
			return 0, err
		}
		v.fresh, v.absent = true, st.absent
		p = decide(v)
	}
	c.apply(ctx, h, st, v, &p)

	open, closed := c.topo.counts()
	c.cfg.metrics.Set(metrics.StreamShardsActive, float64(open), c.labels)
	c.cfg.metrics.Set(metrics.StreamShardsClosed, float64(closed), c.labels)
	c.cfg.metrics.Set(metrics.ConsumerWorkersLive, float64(len(live)), c.labels)
	c.mu.Lock()
	c.workers = len(live)
	c.share = p.target
	c.balanced = time.Now()
	c.lastErr = nil
	heldNow := len(c.readers)
	c.mu.Unlock()
	c.cfg.metrics.Set(metrics.ConsumerLeasesHeld, float64(heldNow), c.labels)

	next := c.cfg.syncInterval
	if len(st.pending) > 0 {
		next = min(next, c.cfg.renewInterval)
	}
	// Look again the moment a lease or a worker would expire, rather than up to a balancing
	// interval later: a crashed worker's shards move within about 1.5 lease durations.
	for _, d := range []time.Duration{v.nextExpiry, c.workerExpiry} {
		if d > 0 {
			next = min(next, d+expiryMargin)
		}
	}
	return next, nil
}

// expiryMargin is how long after a counter's expected expiry the next run looks, so that it
// finds the lease expired on its clock rather than a hair short of it.
const expiryMargin = 10 * time.Millisecond

// expiresIn returns the lesser of soonest (0 for none) and the time until id, observed live
// by l, would be judged expired if its counter did not move.
func (c *Consumer) expiresIn(l *checkpoint.Liveness, id string, soonest time.Duration) time.Duration {
	unchanged, ok := l.Unchanged(id)
	if rem := c.cfg.leaseDuration - unchanged; ok && rem > 0 && (soonest == 0 || rem < soonest) {
		return rem
	}
	return soonest
}

// observe reads the lease rows, judges expiry on this worker's clock and lists the shards
// when due, into the view the plan is made from.
func (c *Consumer) observe(ctx context.Context, st *balanceState, live []string) (*view, error) {
	rows, err := c.store.ListLeases(ctx, c.cfg.group, c.stream)
	c.storeResult("ListLeases", err)
	if err != nil {
		return nil, &opError{op: "ListLeases", store: true, err: err}
	}
	leases := make(map[string]checkpoint.Lease, len(rows))
	expired := make(map[string]bool)
	var soonest time.Duration
	for _, l := range rows {
		leases[l.Shard] = l
		if l.Owner != c.cfg.workerID && l.Held() {
			expired[l.Shard] = c.leaseLive.Observe(l.Shard, l.Counter)
			soonest = c.expiresIn(c.leaseLive, l.Shard, soonest)
		}
	}
	c.leaseLive.Retain(func(id string) bool { _, ok := leases[id]; return ok })

	fresh := false
	if !c.topo.listed || time.Since(st.listedAt) >= c.cfg.shardSync {
		if err := c.listShards(ctx, st, leases); err != nil {
			return nil, err
		}
		fresh = true
	}

	v := &view{
		self: c.cfg.workerID, leases: leases, expired: expired, workers: live,
		held: make(map[string]bool), topo: c.topo, fresh: fresh, absent: st.absent,
		pending: make(map[string]time.Duration, len(st.pending)), handedOff: make(map[string]bool),
		start: c.cfg.start, maxLeases: c.cfg.maxLeases, maxSteals: c.cfg.maxStealsPerRun,
		lease: c.cfg.leaseDuration, stopping: ctx.Err() != nil, rand: st.rand, nextExpiry: soonest,
	}
	for id, at := range st.pending {
		v.pending[id] = time.Since(at)
	}
	c.mu.Lock()
	for id := range c.readers {
		v.held[id] = true
	}
	for id, ho := range c.handedOff {
		// A row that moved since the release was taken by the claimant (or someone): a later
		// release of it is anybody's to take.
		if l, ok := leases[id]; ok && l.Counter == ho.counter && time.Since(ho.at) < c.cfg.leaseDuration {
			v.handedOff[id] = true
		} else {
			delete(c.handedOff, id)
		}
	}
	c.mu.Unlock()
	return v, nil
}

// handedOff is a lease this worker released because another worker asked for it: the row's
// counter right after the release, and when. Until the row moves, the lease is left to the
// claimant, so that two workers whose views of the group differ for a moment do not pass it
// back and forth.
type handedOff struct {
	counter int64
	at      time.Time
}

// noteHandedOff remembers a lease released on request, with the counter of the free row.
func (c *Consumer) noteHandedOff(key checkpoint.ShardKey) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.callTimeout)
	defer cancel()
	l, err := c.store.GetLease(ctx, key)
	c.storeResult("GetLease", err)
	if err != nil || l.Held() {
		return // taken already, or unknown: nothing to hold back
	}
	c.mu.Lock()
	c.handedOff[key.Shard] = handedOff{counter: l.Counter, at: time.Now()}
	c.mu.Unlock()
}

// listShards lists the stream's shards into the topology, after the lease rows were read, and
// notes which rows the listing lacks.
func (c *Consumer) listShards(ctx context.Context, st *balanceState, leases map[string]checkpoint.Lease) error {
	shards, err := shardmap.List(ctx, timedLister{c}, c.stream, nil)
	if err == nil {
		var n int
		if n, err = c.topo.replace(shards); err == nil && n > 0 {
			c.cfg.metrics.Add(metrics.StreamReshardingEvents, float64(n), c.labels)
			c.emit(events.Event{Type: events.ReshardDetected, Records: n, Detail: "shard listing"})
		}
	}
	if err != nil {
		return &opError{op: "ListShards", err: err}
	}
	st.listedAt = time.Now()
	clear(st.absent)
	for id := range leases {
		if _, ok := c.topo.shards[id]; !ok {
			st.absent[id] = true
		}
	}
	return nil
}

// apply carries a plan out: forget finished handoff requests, take leases, ask for handoffs,
// delete the rows of shards past retention.
func (c *Consumer) apply(ctx context.Context, h Handler, st *balanceState, v *view, p *plan) {
	for _, id := range p.forget {
		delete(st.pending, id)
		delete(st.askedOf, id)
	}
	lin := &lineage{topo: v.topo, leases: v.leases, start: v.start, memo: make(map[string]bool)}
	spare := p.spare
	for i := 0; i < len(p.takes); i++ {
		if ctx.Err() != nil {
			return // shutting down: take nothing more
		}
		t := p.takes[i]
		from := t.lease.Owner
		if from == "" {
			from = st.askedOf[t.shard] // released to us: name who released it
		}
		took := c.take(ctx, h, lin, t, from)
		switch {
		case took && (t.how == takeHandedOver || t.how == takeForced):
			delete(st.pending, t.shard)
			delete(st.askedOf, t.shard)
		case !took && (t.how == takeFree || t.how == takeExpired || t.how == takeOwn) && len(spare) > 0:
			p.takes = append(p.takes, spare[0]) // another worker was first: take the next one
			spare = spare[1:]
		}
	}
	for _, a := range p.asks {
		if ctx.Err() != nil {
			return
		}
		l := a.lease
		if !a.adopt {
			cctx, cancel := context.WithTimeout(ctx, c.cfg.callTimeout)
			err := c.store.RequestHandoff(cctx, l.ShardKey, l.Owner, c.cfg.workerID, l.Counter)
			cancel()
			c.storeResult("RequestHandoff", err)
			if err != nil {
				if !errors.Is(err, checkpoint.ErrConflict) {
					c.log.Warn("consumer: handoff request failed", "shard", l.Shard, "err", err)
				}
				continue
			}
			c.log.Info("consumer: asked for a lease handoff", "shard", l.Shard, "owner", l.Owner)
			if c.bus.Active() {
				c.emit(events.Event{Type: events.HandoffRequested, Shard: l.Shard, Detail: "owner=" + l.Owner})
			}
		}
		st.pending[l.Shard] = time.Now()
		st.askedOf[l.Shard] = l.Owner
	}
	for _, l := range p.prune {
		cctx, cancel := context.WithTimeout(ctx, c.cfg.callTimeout)
		err := c.store.DeleteLease(cctx, l.ShardKey, l.Counter)
		cancel()
		c.storeResult("DeleteLease", err)
		if err == nil {
			c.log.Info("consumer: deleted the lease of a finished shard past retention", "shard", l.Shard)
		}
	}
}

// take takes the lease of one shard, conditional on the counter read, and starts its reader.
// from is the previous owner, for the log.
func (c *Consumer) take(ctx context.Context, h Handler, lin *lineage, t takeStep, from string) bool {
	key := checkpoint.ShardKey{Group: c.cfg.group, Stream: c.stream, Shard: t.shard}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.callTimeout)
	defer cancel()
	got, err := c.store.TakeLease(cctx, key, c.cfg.workerID, t.lease.Counter)
	c.storeResult("TakeLease", err)
	if err != nil {
		if !errors.Is(err, checkpoint.ErrConflict) && ctx.Err() == nil {
			c.log.Warn("consumer: take lease failed", "shard", t.shard, "err", err)
		}
		return false
	}
	labels := metrics.Labels{Stream: c.stream, Shard: t.shard}
	c.cfg.metrics.Add(metrics.ConsumerLeaseAcquired, 1, labels)
	if c.bus.Active() {
		c.emit(events.Event{Type: events.LeaseAcquired, Shard: t.shard, Detail: "how=" + takeNames[t.how] + " previous_owner=" + from})
	}
	if t.how == takeHandedOver || t.how == takeForced {
		c.cfg.metrics.Add(metrics.ConsumerLeaseStolen, 1, labels)
		if c.bus.Active() {
			c.emit(events.Event{Type: events.LeaseStolen, Shard: t.shard, Detail: "previous_owner=" + from})
		}
	}
	c.log.Info("consumer: lease taken", "shard", t.shard, "how", takeNames[t.how],
		"previous_owner", from, "checkpoint", got.Checkpoint.String())
	r := newShardReader(c, *c.topo.shards[t.shard], got, lin.startFor(t.shard))
	c.mu.Lock()
	c.readers[t.shard] = r
	c.mu.Unlock()
	go r.run(h)
	return true
}

// renewLoop renews every held lease each renew interval, independently of handler progress.
func (c *Consumer) renewLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.renewInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		readers := make([]*shardReader, 0, len(c.readers))
		for _, r := range c.readers {
			readers = append(readers, r)
		}
		c.mu.Unlock()
		for _, r := range readers {
			c.renew(ctx, r)
		}
	}
}

// renew renews one lease. A lease the store says is gone cancels the reader at once; a lease
// that could not be renewed for a whole lease duration is given up too, because other workers
// may judge it expired from then on.
func (c *Consumer) renew(ctx context.Context, r *shardReader) {
	if !r.active() {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, min(c.cfg.callTimeout, c.cfg.renewInterval))
	defer cancel()
	lease := r.currentLease()
	got, err := c.store.RenewLease(cctx, lease)
	c.storeResult("RenewLease", err)
	switch {
	case err == nil:
		r.renewed(got)
		c.cfg.metrics.Add(metrics.ConsumerLeaseRenewed, 1, r.labels)
		if got.PendingOwner != "" && got.PendingOwner != c.cfg.workerID {
			r.stop(stopHandoff)
		}
	case errors.Is(err, checkpoint.ErrLeaseLost):
		if r.active() {
			r.lost(err)
		}
	default:
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("consumer: lease renewal failed", "err", err)
		r.emit(events.Event{Type: events.LeaseRenewFailed, Err: err})
		if since := r.sinceRenewed(); since >= c.cfg.leaseDuration && r.active() {
			r.lost(errors.New("consumer: lease not renewed for a lease duration: " + err.Error()))
		}
	}
}
