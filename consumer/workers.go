package consumer

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/shardline/kinesis/checkpoint"
)

// heartbeat writes this worker's registry row, checks that no other live process uses its
// worker ID, and returns the live workers' IDs, this one included, sorted.
//
// Two processes with one ID would both take "their" leases from each other (a lease naming
// this worker's ID is taken at once, so that a worker restarted after a crash resumes at
// once). Each heartbeat returns the instance value the row held before it: after this
// worker's first heartbeat, a value other than its own proves another live process with its
// ID. Both log it; the one that started later stops with ErrDuplicateWorker.
func (c *Consumer) heartbeat(ctx context.Context) ([]string, error) {
	prev, err := c.store.Heartbeat(ctx, checkpoint.Worker{Group: c.cfg.group, Stream: c.stream, ID: c.cfg.workerID, Instance: c.instance})
	c.storeResult("Heartbeat", err)
	if err != nil {
		return nil, &opError{op: "Heartbeat", store: true, err: err}
	}
	first := c.beats == 0
	c.beats++
	if !first && prev.Instance != "" && prev.Instance != c.instance {
		if prev.Instance < c.instance {
			err := &DuplicateWorkerError{WorkerID: c.cfg.workerID, Instance: c.instance, Other: prev.Instance}
			c.log.Error("consumer: another live process uses this worker ID and started earlier: stopping", "other_instance", prev.Instance, "err", err)
			return nil, err
		}
		if c.duplicates[prev.Instance] == 0 {
			c.log.Error("consumer: another live process uses this worker ID; it started later and will stop", "other_instance", prev.Instance)
		}
		c.duplicates[prev.Instance]++
	}
	live, err := c.liveWorkers(ctx)
	if err != nil {
		return nil, &opError{op: "ListWorkers", store: true, err: err}
	}
	return live, nil
}

// liveWorkers returns the workers whose heartbeat counter moved within the lease duration,
// this one included, sorted, and prunes rows that stopped moving long ago.
func (c *Consumer) liveWorkers(ctx context.Context) ([]string, error) {
	workers, err := c.store.ListWorkers(ctx, c.cfg.group, c.stream)
	c.storeResult("ListWorkers", err)
	if err != nil {
		return nil, err
	}
	live := []string{c.cfg.workerID}
	var soonest time.Duration
	ids := make(map[string]bool, len(workers))
	for _, w := range workers {
		ids[w.ID] = true
		if w.ID == c.cfg.workerID {
			continue
		}
		if !c.workerLive.Observe(w.ID, w.Counter) {
			live = append(live, w.ID)
			soonest = c.expiresIn(c.workerLive, w.ID, soonest)
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
	c.workerExpiry = soonest
	sort.Strings(live)
	return live, nil
}

// leaveGroup removes this worker's registry row so others stop counting it at once. A worker
// stopping because another process has its ID leaves the row to that process.
func (c *Consumer) leaveGroup(runErr error) {
	if errors.Is(runErr, ErrDuplicateWorker) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.callTimeout)
	defer cancel()
	workers, err := c.store.ListWorkers(ctx, c.cfg.group, c.stream)
	if err != nil {
		c.log.Warn("consumer: could not leave the worker registry", "err", err)
		return
	}
	for _, w := range workers {
		if w.ID == c.cfg.workerID && w.Instance == c.instance {
			if err := c.store.RemoveWorker(ctx, w); err != nil && !errors.Is(err, checkpoint.ErrConflict) {
				c.log.Warn("consumer: could not leave the worker registry", "err", err)
			}
		}
	}
}
