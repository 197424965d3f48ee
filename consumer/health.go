package consumer

import (
	"fmt"
	"time"

	"github.com/shardline/kinesis/health"
)

// HealthThresholds are the limits Health judges the consumer by. A zero field keeps its
// default.
type HealthThresholds struct {
	// ReadGap: a held shard without a successful GetRecords for this long is degraded
	// (default 30s); for ReadGapFailing, failing (default 2m).
	ReadGap, ReadGapFailing time.Duration
	// IteratorAge: a shard this far behind the tip (MillisBehindLatest) is degraded (default
	// 60s); IteratorAgeFailing, failing (default 10m).
	IteratorAge, IteratorAgeFailing time.Duration
	// StoreOutage: a checkpoint store unreachable for this long is failing (default two lease
	// durations: by then this worker has given up its leases); less is degraded.
	StoreOutage time.Duration
	// CheckpointFailing: a shard whose checkpoints have failed for this long is failing
	// (default 1m); less is degraded.
	CheckpointFailing time.Duration
}

func (t HealthThresholds) withDefaults(lease time.Duration) HealthThresholds {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&t.ReadGap, 30*time.Second)
	def(&t.ReadGapFailing, 2*time.Minute)
	def(&t.IteratorAge, time.Minute)
	def(&t.IteratorAgeFailing, 10*time.Minute)
	def(&t.StoreOutage, 2*lease)
	def(&t.CheckpointFailing, time.Minute)
	return t
}

// WithHealthThresholds sets the limits Health judges by; zero fields keep their defaults (see
// HealthThresholds). KCL: none.
func WithHealthThresholds(t HealthThresholds) Option {
	return func(c *config) { c.health = t }
}

// Health reports the worker's health: whether Run is running, the checkpoint store answers,
// this worker holds its share of leases, every held shard was read lately and is not far
// behind, and checkpoints are written. A worker whose Run returned is not live. Safe to call
// at any time from any goroutine.
func (c *Consumer) Health() health.Report {
	now := time.Now()
	th := c.cfg.health.withDefaults(c.cfg.leaseDuration)
	r := health.Report{Component: "consumer", Stream: c.stream, Time: now, Status: health.OK, Live: true}
	switch {
	case c.stopped.Load():
		r.Live = false
		r.Add(health.Check{Name: "running", Status: health.Failing, Reason: "Run returned"})
	case !c.started.Load():
		r.Add(health.Check{Name: "running", Status: health.Failing, Reason: "Run has not been called"})
	default:
		r.Add(health.Check{Name: "running", Status: health.OK})
	}

	store := health.Check{Name: "store", Status: health.OK}
	if since, err := c.storeOutage(); !since.IsZero() {
		d := now.Sub(since)
		store.Status, store.Reason = health.Degraded, "unreachable, retrying: "+err.Error()
		if d >= th.StoreOutage {
			store.Status = health.Failing
		}
		store.Figures = map[string]float64{"unavailable_seconds": d.Seconds()}
	}
	r.Add(store)

	c.mu.Lock()
	held, share, live, balanced, balanceErr := len(c.readers), c.share, c.workers, c.balanced, c.lastErr
	readers := make([]*shardReader, 0, len(c.readers))
	for _, rd := range c.readers {
		readers = append(readers, rd)
	}
	c.mu.Unlock()
	leases := health.Check{Name: "leases", Status: health.OK, Figures: map[string]float64{
		"held": float64(held), "share": float64(share), "live_workers": float64(live)}}
	switch {
	case balanced.IsZero() && c.started.Load():
		leases.Status, leases.Reason = health.Degraded, "no balancing run has completed yet"
	case balanceErr != nil:
		leases.Status, leases.Reason = health.Degraded, "the last balancing run failed: "+balanceErr.Error()
	case held < share:
		leases.Status, leases.Reason = health.Degraded, fmt.Sprintf("holds %d leases of its share of %d", held, share)
	}
	r.Add(leases)

	reads := health.Check{Name: "reads", Status: health.OK}
	age := health.Check{Name: "iterator_age", Status: health.OK}
	cps := health.Check{Name: "checkpoints", Status: health.OK}
	var worstGap, worstAge, worstCP time.Duration
	var gapShard, ageShard, cpShard string
	for _, rd := range readers {
		rd.mu.Lock()
		gap, behind, cpFail := now.Sub(rd.lastRead), time.Duration(rd.behind)*time.Millisecond, rd.cpFailSince
		rd.mu.Unlock()
		if gap > worstGap {
			worstGap, gapShard = gap, rd.info.id
		}
		if behind > worstAge {
			worstAge, ageShard = behind, rd.info.id
		}
		if !cpFail.IsZero() && now.Sub(cpFail) > worstCP {
			worstCP, cpShard = now.Sub(cpFail), rd.info.id
		}
	}
	reads.Figures = map[string]float64{"max_since_last_read_seconds": worstGap.Seconds()}
	switch {
	case worstGap >= th.ReadGapFailing:
		reads.Status = health.Failing
	case worstGap >= th.ReadGap:
		reads.Status = health.Degraded
	}
	if reads.Status != health.OK {
		reads.Reason = fmt.Sprintf("shard %s not read for %v", gapShard, worstGap.Round(time.Second))
	}
	age.Figures = map[string]float64{"max_millis_behind_latest": float64(worstAge.Milliseconds())}
	switch {
	case worstAge >= th.IteratorAgeFailing:
		age.Status = health.Failing
	case worstAge >= th.IteratorAge:
		age.Status = health.Degraded
	}
	if age.Status != health.OK {
		age.Reason = fmt.Sprintf("shard %s is %v behind the tip", ageShard, worstAge.Round(time.Second))
	}
	cps.Figures = map[string]float64{"failing_seconds": worstCP.Seconds()}
	if worstCP > 0 {
		cps.Status, cps.Reason = health.Degraded, fmt.Sprintf("checkpoints of shard %s fail since %v", cpShard, worstCP.Round(time.Second))
		if worstCP >= th.CheckpointFailing {
			cps.Status = health.Failing
		}
	}
	r.Add(reads)
	r.Add(age)
	r.Add(cps)
	return r
}
