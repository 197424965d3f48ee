package consumer

import (
	"encoding/json"
	"sort"
	"time"

	"github.com/shardline/kinesis/checkpoint"
)

// Status is a snapshot of what one worker is doing, for health checks and operators. It
// marshals to JSON with snake_case keys and errors as their messages, ready for a /status
// endpoint.
type Status struct {
	Stream   string `json:"stream"`
	Group    string `json:"group"`
	WorkerID string `json:"worker_id"`
	// LiveWorkers is the group's live workers at the last balancing run, this one included.
	LiveWorkers int `json:"live_workers"`
	// LastBalance is when the last balancing run completed; zero before the first.
	LastBalance time.Time `json:"last_balance"`
	// BalanceError is the error of the last balancing run, or nil when it succeeded.
	BalanceError error `json:"-"`
	// StoreUnavailableSince is when the checkpoint store stopped answering, zero while it
	// answers; StoreError is the last error of that outage.
	StoreUnavailableSince time.Time `json:"store_unavailable_since"`
	StoreError            error     `json:"-"`
	// Shards are the shards this worker holds, by shard ID.
	Shards []ShardStatus `json:"shards"`
}

// ShardState is what a worker is doing with a shard it holds.
type ShardState string

// Shard states.
const (
	// ShardReading: the shard is read and handed to the handler.
	ShardReading ShardState = "reading"
	// ShardStopping: the reader was asked to stop (see ShardStatus.StopReason) and finishes
	// its batch.
	ShardStopping ShardState = "stopping"
	// ShardReleasing: the reader writes its final checkpoint and gives the lease back.
	ShardReleasing ShardState = "releasing"
)

// ShardStatus is the state of one shard this worker holds.
type ShardStatus struct {
	ShardID string     `json:"shard_id"`
	State   ShardState `json:"state"`
	// StopReason says why a stopping or releasing shard stops: "shutdown", "handoff",
	// "lease lost", "shard end" or "fatal"; "" while reading.
	StopReason string `json:"stop_reason,omitempty"`
	// Checkpoint is the last position the store accepted.
	Checkpoint checkpoint.Position `json:"checkpoint"`
	// Handled is the last position a handler accepted.
	Handled checkpoint.Position `json:"handled"`
	// MillisBehindLatest is from the last GetRecords response.
	MillisBehindLatest int64 `json:"millis_behind_latest"`
	// LagRecords counts user records handled and not yet covered by a checkpoint.
	LagRecords int64 `json:"lag_records"`
	// Delivered counts user records the handler accepted since the lease was taken.
	Delivered int64 `json:"delivered"`
	// LeaseCounter is the lease counter after the last renewal; LastRenewal is when it was.
	LeaseCounter int64     `json:"lease_counter"`
	LastRenewal  time.Time `json:"last_renewal"`
	// LastError is the last error reading, handling or checkpointing the shard, or nil.
	LastError   error     `json:"-"`
	LastErrorAt time.Time `json:"last_error_at"`
}

// errorText is an error as JSON: its message, or null.
func errorText(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}

// MarshalJSON encodes s with its errors as their messages ("balance_error", "store_error").
func (s Status) MarshalJSON() ([]byte, error) {
	type plain Status
	return json.Marshal(struct {
		plain
		BalanceError *string `json:"balance_error"`
		StoreError   *string `json:"store_error"`
	}{plain(s), errorText(s.BalanceError), errorText(s.StoreError)})
}

// MarshalJSON encodes s with its error as its message ("last_error").
func (s ShardStatus) MarshalJSON() ([]byte, error) {
	type plain ShardStatus
	return json.Marshal(struct {
		plain
		LastError *string `json:"last_error"`
	}{plain(s), errorText(s.LastError)})
}

// Status returns a snapshot of the worker. It is safe to call at any time, from any
// goroutine.
func (c *Consumer) Status() Status {
	since, storeErr := c.storeOutage()
	c.mu.Lock()
	s := Status{
		Stream: c.stream, Group: c.cfg.group, WorkerID: c.cfg.workerID,
		LiveWorkers: c.workers, LastBalance: c.balanced, BalanceError: c.lastErr,
		StoreUnavailableSince: since, StoreError: storeErr, Shards: []ShardStatus{},
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
	state, reason := ShardReading, ""
	switch {
	case r.state.Load() == readerReleasing:
		state, reason = ShardReleasing, stopNames[stopReason(r.reason.Load())]
	case r.stopping():
		state, reason = ShardStopping, stopNames[stopReason(r.reason.Load())]
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return ShardStatus{
		ShardID: r.info.id, State: state, StopReason: reason,
		Checkpoint: r.checkpointed, Handled: r.handled,
		MillisBehindLatest: r.behind,
		LagRecords:         r.delivered - r.atCheckpoint,
		Delivered:          r.delivered,
		LeaseCounter:       r.lease.Counter, LastRenewal: r.renewedAt,
		LastError: r.lastErr, LastErrorAt: r.lastErrAt,
	}
}
