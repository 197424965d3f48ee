package metrics

import (
	"sync"
	"time"
)

// callDurations and callErrors are the catalog metrics a Memory's call log watches.
var (
	callDurations = map[Name]bool{KinesisCallDuration: true, StoreCallDuration: true}
	callErrors    = map[Name]bool{KinesisCallErrors: true, ConsumerStoreErrors: true}
)

// CallRecord is one Kinesis or checkpoint store call a [Memory] collector's call log noted:
// slower than its threshold, or failed.
type CallRecord struct {
	Time      time.Time     `json:"time"`
	Metric    Name          `json:"metric"`
	Stream    string        `json:"stream,omitempty"`
	Shard     string        `json:"shard,omitempty"`
	Operation string        `json:"operation"`
	ErrorType string        `json:"error_type,omitempty"` // failed calls
	Duration  time.Duration `json:"duration,omitempty"`   // slow calls
}

// MemoryOption configures a Memory collector; see NewMemory.
type MemoryOption func(*Memory)

// WithCallLog makes the collector keep the last keep calls slower than slow
// (kinesis_call_duration_seconds and store_call_duration_seconds) and the last keep failed
// calls (kinesis_call_errors_total and consumer_store_errors_total), for Memory.SlowCalls and
// Memory.FailedCalls. Memory stays bounded: older records are dropped. Default: no call log.
func WithCallLog(slow time.Duration, keep int) MemoryOption {
	return func(m *Memory) {
		if keep > 0 {
			m.calls = &callLog{slow: slow.Seconds(), slowRing: ring{buf: make([]CallRecord, keep)}, failedRing: ring{buf: make([]CallRecord, keep)}}
		}
	}
}

type callLog struct {
	slow       float64 // seconds
	mu         sync.Mutex
	slowRing   ring
	failedRing ring
}

// ring keeps the last len(buf) records.
type ring struct {
	buf  []CallRecord
	next int
	full bool
}

func (r *ring) add(c CallRecord) {
	r.buf[r.next] = c
	r.next = (r.next + 1) % len(r.buf)
	r.full = r.full || r.next == 0
}

func (r *ring) list() []CallRecord {
	start, n := 0, r.next
	if r.full {
		start, n = r.next, len(r.buf)
	}
	out := make([]CallRecord, 0, n)
	for i := range n {
		out = append(out, r.buf[(start+i)%len(r.buf)])
	}
	return out
}

func (r *ring) clear() {
	clear(r.buf)
	r.next, r.full = 0, false
}

func (c *callLog) observe(name Name, seconds float64, l Labels) {
	if !callDurations[name] || seconds < c.slow {
		return
	}
	c.mu.Lock()
	c.slowRing.add(CallRecord{Time: time.Now(), Metric: name, Stream: l.Stream, Shard: l.Shard, Operation: l.Operation,
		Duration: time.Duration(seconds * float64(time.Second))})
	c.mu.Unlock()
}

func (c *callLog) add(name Name, l Labels) {
	if !callErrors[name] {
		return
	}
	c.mu.Lock()
	c.failedRing.add(CallRecord{Time: time.Now(), Metric: name, Stream: l.Stream, Shard: l.Shard, Operation: l.Operation, ErrorType: l.ErrorType})
	c.mu.Unlock()
}

// SlowCalls returns the calls slower than the call log's threshold, oldest first (nil without
// WithCallLog).
func (m *Memory) SlowCalls() []CallRecord {
	if m.calls == nil {
		return nil
	}
	m.calls.mu.Lock()
	defer m.calls.mu.Unlock()
	return m.calls.slowRing.list()
}

// FailedCalls returns the failed calls the call log kept, oldest first (nil without
// WithCallLog).
func (m *Memory) FailedCalls() []CallRecord {
	if m.calls == nil {
		return nil
	}
	m.calls.mu.Lock()
	defer m.calls.mu.Unlock()
	return m.calls.failedRing.list()
}
