package consumer

import (
	"context"
	"errors"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/internal/shardmap"
	"github.com/shardline/kinesis/metrics"
)

// readerEvent is what a reader tells the coordinator when it exits for a reason the
// coordinator must act on.
type readerEvent struct {
	shard    string
	children []types.ChildShard // at shard end
}

// coordinate runs balancing until ctx ends or a fatal error, and returns that error.
func (c *Consumer) coordinate(ctx context.Context, h Handler) error {
	st := &balanceState{
		pending:   make(map[string]time.Time),
		handedOff: make(map[string]time.Time),
	}
	timer := time.NewTimer(0) // the first run starts at once
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-c.fatal:
			return err
		case ev := <-c.events:
			if n := c.topo.addChildren(ev.shard, ev.children); n > 0 {
				c.cfg.metrics.Add(metrics.StreamReshardingEvents, float64(n), c.labels)
			}
			// Children may be ready now: balance at once rather than at the next tick.
			c.drainEvents()
		case <-timer.C:
		}
		next := c.balance(ctx, h, st)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// drainEvents merges every queued reader event.
func (c *Consumer) drainEvents() {
	for {
		select {
		case ev := <-c.events:
			if n := c.topo.addChildren(ev.shard, ev.children); n > 0 {
				c.cfg.metrics.Add(metrics.StreamReshardingEvents, float64(n), c.labels)
			}
		default:
			return
		}
	}
}

// balanceState is what balancing runs remember between each other.
type balanceState struct {
	listedAt  time.Time            // last full shard listing
	pending   map[string]time.Time // handoffs this worker requested, by shard
	handedOff map[string]time.Time // shards this worker released on request, not to be retaken soon
}

// balance is one balancing run: heartbeat, count live workers, refresh the shard list when due,
// then take free and expired leases up to this worker's share and steal if still short. It
// returns when the next run is due.
func (c *Consumer) balance(ctx context.Context, h Handler, st *balanceState) time.Duration {
	next := c.cfg.syncInterval
	cctx, cancel := context.WithTimeout(ctx, c.cfg.callTimeout)
	defer cancel()
	fail := func(op string, err error) time.Duration {
		if ctx.Err() == nil {
			c.cfg.logger.Warn("consumer: balancing failed", "op", op, "err", err)
			c.mu.Lock()
			c.lastErr = err
			c.mu.Unlock()
		}
		return min(next, c.cfg.renewInterval)
	}

	if _, err := c.store.Heartbeat(cctx, checkpoint.Worker{Group: c.cfg.group, Stream: c.stream, ID: c.cfg.workerID, Instance: c.instance}); err != nil {
		return fail("Heartbeat", err)
	}
	live, err := c.liveWorkers(cctx)
	if err != nil {
		return fail("ListWorkers", err)
	}

	if !c.topo.listed || time.Since(st.listedAt) >= c.cfg.shardSync {
		shards, err := shardmap.List(cctx, c.client, c.stream, nil)
		if err != nil {
			if !IsRetryable(err) {
				c.reportFatal(&FatalError{Op: "ListShards", Err: err})
			}
			return fail("ListShards", err)
		}
		n, err := c.topo.replace(shards)
		if err != nil {
			return fail("ListShards", err)
		}
		st.listedAt = time.Now()
		if n > 0 {
			c.cfg.metrics.Add(metrics.StreamReshardingEvents, float64(n), c.labels)
		}
	}

	rows, err := c.store.ListLeases(cctx, c.cfg.group, c.stream)
	if err != nil {
		return fail("ListLeases", err)
	}
	leases := make(map[string]checkpoint.Lease, len(rows))
	for _, l := range rows {
		leases[l.Shard] = l
	}
	lin := &lineage{topo: c.topo, leases: leases, start: c.cfg.start, memo: make(map[string]bool)}

	// Observe every lease not ours, so expiry is judged on this worker's clock.
	expired := make(map[string]bool)
	for _, l := range rows {
		if l.Owner != c.cfg.workerID {
			expired[l.Shard] = c.leaseLive.Observe(l.Shard, l.Counter)
		}
	}
	c.leaseLive.Retain(func(id string) bool { _, ok := leases[id]; return ok })
	c.pruneLeases(cctx, lin)

	var ready []string
	open, closed := 0, 0
	for id, s := range c.topo.shards {
		if s.open {
			open++
		} else {
			closed++
		}
		if lin.ready(id) {
			ready = append(ready, id)
		}
	}
	c.cfg.metrics.Set(metrics.StreamShardsActive, float64(open), c.labels)
	c.cfg.metrics.Set(metrics.StreamShardsClosed, float64(closed), c.labels)
	c.cfg.metrics.Set(metrics.ConsumerWorkersLive, float64(live), c.labels)

	c.mu.Lock()
	held := len(c.readers)
	mine := make(map[string]bool, held)
	for id := range c.readers {
		mine[id] = true
	}
	c.workers = live
	c.mu.Unlock()

	target := (len(ready) + live - 1) / live
	if c.cfg.maxLeases > 0 {
		target = min(target, c.cfg.maxLeases)
	}
	need := target - held
	for id, at := range st.handedOff {
		if time.Since(at) > c.cfg.leaseDuration {
			delete(st.handedOff, id)
		}
	}

	// Forget handoff requests that were superseded (the row is gone, or another worker holds
	// it without our request pending) or went unanswered for long. A lease released after our
	// request stays remembered, so taking it below counts as a steal.
	for id, at := range st.pending {
		l, ok := leases[id]
		if !ok || (l.Held() && l.PendingOwner != c.cfg.workerID) || time.Since(at) > 2*c.cfg.leaseDuration {
			delete(st.pending, id)
		}
	}

	// Free and expired leases first, in random order so workers starting together spread out.
	rand.Shuffle(len(ready), func(i, j int) { ready[i], ready[j] = ready[j], ready[i] })
	for _, id := range ready {
		if need <= 0 || ctx.Err() != nil {
			break
		}
		if mine[id] {
			continue
		}
		l, hasRow := leases[id]
		takeable := !hasRow || !l.Held() || l.Owner == c.cfg.workerID || expired[id]
		if _, recent := st.handedOff[id]; !takeable || (recent && l.Owner == "" && hasRow) {
			continue
		}
		how := takeFree
		switch _, asked := st.pending[id]; {
		case hasRow && l.Held() && l.Owner != c.cfg.workerID:
			how = takeExpired
		case asked:
			how = takeHandedOver
			delete(st.pending, id)
		}
		if c.take(ctx, h, lin, id, l, how) {
			need--
			mine[id] = true
		}
	}

	// Still short: ask the most loaded live worker for a lease.
	if need > 0 && c.cfg.maxStealsPerRun > 0 && ctx.Err() == nil {
		if c.steal(ctx, h, lin, leases, expired, mine, target, need, st) {
			next = min(next, c.cfg.renewInterval)
		}
	}
	if len(st.pending) > 0 {
		next = min(next, c.cfg.renewInterval)
	}

	c.mu.Lock()
	c.balanced = time.Now()
	c.lastErr = nil
	heldNow := len(c.readers)
	c.mu.Unlock()
	c.cfg.metrics.Set(metrics.ConsumerLeasesHeld, float64(heldNow), c.labels)
	return next
}

// steal takes at most maxStealsPerRun leases from the most loaded live worker when it holds
// more than the target, or exactly the target while this worker is short by more than one
// (so 3/3/1 becomes 3/2/2 and then stays). It prefers a graceful handoff: the owner is asked
// to finish its batch, checkpoint and release; only an owner that ignores the request for a
// lease duration loses the lease by force. It reports whether a handoff is pending.
func (c *Consumer) steal(ctx context.Context, h Handler, lin *lineage, leases map[string]checkpoint.Lease,
	expired, mine map[string]bool, target, need int, st *balanceState) bool {
	byOwner := make(map[string][]string)
	for id, l := range leases {
		if l.Held() && l.Owner != c.cfg.workerID && !expired[id] && lin.ready(id) {
			byOwner[l.Owner] = append(byOwner[l.Owner], id)
		}
	}
	owners := make([]string, 0, len(byOwner))
	for o := range byOwner {
		owners = append(owners, o)
	}
	sort.Slice(owners, func(i, j int) bool {
		if len(byOwner[owners[i]]) != len(byOwner[owners[j]]) {
			return len(byOwner[owners[i]]) > len(byOwner[owners[j]])
		}
		return owners[i] < owners[j]
	})
	if len(owners) == 0 {
		return false
	}
	victim := owners[0]
	theirs := len(byOwner[victim])
	if !(theirs > target || (theirs == target && need > 1)) {
		return false
	}
	shards := byOwner[victim]
	sort.Strings(shards)
	pending := false
	steals := 0
	for _, id := range shards {
		if steals >= c.cfg.maxStealsPerRun || steals >= need || ctx.Err() != nil {
			break
		}
		l := leases[id]
		cctx, cancel := context.WithTimeout(ctx, c.cfg.callTimeout)
		switch {
		case l.PendingOwner == c.cfg.workerID:
			asked, ok := st.pending[id]
			if !ok {
				st.pending[id] = time.Now()
			} else if time.Since(asked) > c.cfg.leaseDuration {
				// The owner ignored the request for a lease duration: take the lease by
				// force. Its next renewal or checkpoint fails and it stops.
				if c.take(ctx, h, lin, id, l, takeForced) {
					delete(st.pending, id)
					mine[id] = true
				}
			} else {
				pending = true
			}
			steals++
		case l.PendingOwner == "":
			err := c.store.RequestHandoff(cctx, l.ShardKey, l.Owner, c.cfg.workerID, l.Counter)
			if err == nil {
				st.pending[id] = time.Now()
				pending = true
				steals++
				c.cfg.logger.Info("consumer: asked for a lease handoff", "shard", id, "owner", l.Owner)
			} else if !errors.Is(err, checkpoint.ErrConflict) {
				c.cfg.logger.Warn("consumer: handoff request failed", "shard", id, "err", err)
			}
		}
		cancel()
	}
	return pending
}

// takeHow says why a lease is taken.
type takeHow int

const (
	takeFree       takeHow = iota // no owner
	takeExpired                   // its owner stopped renewing for a lease duration
	takeHandedOver                // its owner released it after this worker asked
	takeForced                    // its owner ignored a handoff request for a lease duration
)

var takeNames = [...]string{"free", "expired", "handed over", "forced"}

// take takes the lease of shard id, conditional on the counter read, and starts its reader.
func (c *Consumer) take(ctx context.Context, h Handler, lin *lineage, id string, l checkpoint.Lease, how takeHow) bool {
	key := checkpoint.ShardKey{Group: c.cfg.group, Stream: c.stream, Shard: id}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.callTimeout)
	defer cancel()
	got, err := c.store.TakeLease(cctx, key, c.cfg.workerID, l.Counter)
	if err != nil {
		if !errors.Is(err, checkpoint.ErrConflict) && ctx.Err() == nil {
			c.cfg.logger.Warn("consumer: take lease failed", "shard", id, "err", err)
		}
		return false
	}
	labels := metrics.Labels{Stream: c.stream, Shard: id}
	c.cfg.metrics.Add(metrics.ConsumerLeaseAcquired, 1, labels)
	if how == takeHandedOver || how == takeForced {
		c.cfg.metrics.Add(metrics.ConsumerLeaseStolen, 1, labels)
	}
	c.cfg.logger.Info("consumer: lease taken", "shard", id, "how", takeNames[how],
		"previous_owner", l.Owner, "checkpoint", got.Checkpoint.String())
	info := *c.topo.shards[id]
	r := newShardReader(c, info, got, lin.startFor(id))
	c.mu.Lock()
	c.readers[id] = r
	c.mu.Unlock()
	go r.run(h)
	return true
}

// liveWorkers counts the workers whose heartbeat counter moved within the lease duration,
// this one included, and prunes rows that stopped moving long ago.
func (c *Consumer) liveWorkers(ctx context.Context) (int, error) {
	workers, err := c.store.ListWorkers(ctx, c.cfg.group, c.stream)
	if err != nil {
		return 0, err
	}
	live := 1
	ids := make(map[string]bool, len(workers))
	for _, w := range workers {
		ids[w.ID] = true
		if w.ID == c.cfg.workerID {
			continue
		}
		if !c.workerLive.Observe(w.ID, w.Counter) {
			live++
			continue
		}
		// Dead for ten lease durations: remove the row, conditional on its counter so a
		// worker that came back keeps its row.
		if d, _ := c.workerLive.Unchanged(w.ID); d > 10*c.cfg.leaseDuration {
			if err := c.store.RemoveWorker(ctx, w); err == nil {
				c.workerLive.Forget(w.ID)
			}
		}
	}
	c.workerLive.Retain(func(id string) bool { return ids[id] })
	return live, nil
}

// pruneLeases deletes the rows of finished shards that left the stream's retention: no child
// needs them any more (a parent missing from the listing counts as finished).
func (c *Consumer) pruneLeases(ctx context.Context, lin *lineage) {
	if !c.topo.listed {
		return
	}
	for id, l := range lin.leases {
		if _, listed := c.topo.shards[id]; listed || !l.Checkpoint.ShardEnd || l.Held() {
			continue
		}
		if err := c.store.DeleteLease(ctx, l.ShardKey, l.Counter); err == nil {
			c.cfg.logger.Info("consumer: deleted the lease of a shard past retention", "shard", id)
		}
	}
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
		c.cfg.logger.Warn("consumer: lease renewal failed", "shard", r.info.id, "err", err)
		if since := r.sinceRenewed(); since >= c.cfg.leaseDuration && r.active() {
			r.lost(errors.New("consumer: lease not renewed for a lease duration: " + err.Error()))
		}
	}
}
