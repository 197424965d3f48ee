package consumer

import (
	"sort"
	"time"

	"github.com/shardline/kinesis/checkpoint"
)

// Status is a snapshot of what one worker is doing, for health checks and operators.
type Status struct {
	Stream   string
	Group    string
	WorkerID string
	// LiveWorkers is the group's live workers at the last balancing run, this one included.
	LiveWorkers int
	// LastBalance is when the last balancing run completed; zero before the first.
	LastBalance time.Time
	// BalanceError is the error of the last balancing run, or nil when it succeeded.
	BalanceError error
	// StoreUnavailableSince is when the checkpoint store stopped answering, zero while it
	// answers; StoreError is the last error of that outage.
	StoreUnavailableSince time.Time
	StoreError            error
	// Shards are the shards this worker holds, by shard ID.
	Shards []ShardStatus
}

// ShardStatus is the state of one shard this worker holds.
type ShardStatus struct {
	ShardID string
	// State is "reading", "releasing" (handing the lease back) or "stopping" with the reason.
	State string
	// Checkpoint is the last position the store accepted.
	Checkpoint checkpoint.Position
	// Handled is the last position a handler accepted.
	Handled checkpoint.Position
	// MillisBehindLatest is from the last GetRecords response.
	MillisBehindLatest int64
	// LagRecords counts user records handled and not yet covered by a checkpoint.
	LagRecords int64
	// Delivered counts user records the handler accepted since the lease was taken.
	Delivered int64
	// LeaseCounter is the lease counter after the last renewal; LastRenewal is when it was.
	LeaseCounter int64
	LastRenewal  time.Time
	// LastError is the last error reading, handling or checkpointing the shard, or nil.
	LastError   error
	LastErrorAt time.Time
}

// Status returns a snapshot of the worker. It is safe to call at any time, from any
// goroutine.
func (c *Consumer) Status() Status {
	since, storeErr := c.storeOutage()
	c.mu.Lock()
	s := Status{
		Stream: c.stream, Group: c.cfg.group, WorkerID: c.cfg.workerID,
		LiveWorkers: c.workers, LastBalance: c.balanced, BalanceError: c.lastErr,
		StoreUnavailableSince: since, StoreError: storeErr,
	}
	readers := make([]*shardReader, 0, len(c.readers))
	for _, r := range c.readers {
		readers = append(readers, r)
	}
	c.mu.Unlock()
	for _, r := range readers {
		s.Shards = append(s.Shards, r.status())
	}
	sort.Slice(s.Shards, func(i, j int) bool { return s.Shards[i].ShardID < s.Shards[j].ShardID })
	return s
}

func (r *shardReader) status() ShardStatus {
	state := "reading"
	switch {
	case r.state.Load() == readerReleasing:
		state = "releasing"
	case r.stopping():
		state = "stopping: " + stopNames[stopReason(r.reason.Load())]
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return ShardStatus{
		ShardID: r.info.id, State: state,
		Checkpoint: r.checkpointed, Handled: r.handled,
		MillisBehindLatest: r.behind,
		LagRecords:         r.delivered - r.atCheckpoint,
		Delivered:          r.delivered,
		LeaseCounter:       r.lease.Counter, LastRenewal: r.renewedAt,
		LastError: r.lastErr, LastErrorAt: r.lastErrAt,
	}
}
