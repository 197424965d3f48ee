package kinesisproxy

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"sync"
	"time"
)

// Counters is a snapshot of what the proxy has done since it started. It never resets.
// GET /_proxy/counters on the proxy's address serves it as JSON.
type Counters struct {
	Started time.Time `json:"started"`
	// Operations holds the counters of each Kinesis operation by name ("Unknown" for a call
	// without an X-Amz-Target the proxy recognises).
	Operations map[string]OpCounters `json:"operations"`
	// Total sums Operations.
	Total OpCounters `json:"total"`
	// ShardMapRefreshes counts the ListShards listings the proxy made to learn shard maps.
	ShardMapRefreshes int64 `json:"shard_map_refreshes"`
}

// OpCounters are the counters of one operation.
type OpCounters struct {
	Requests  int64 `json:"requests"`  // calls received
	Forwarded int64 `json:"forwarded"` // calls sent upstream
	// Unscanned counts calls forwarded without limits because the proxy could not read
	// them: CBOR, a body it cannot parse, an iterator it did not make, a stream whose
	// shards it cannot list, a response over MaxBody.
	Unscanned int64 `json:"unscanned"`
	Entries   int64 `json:"entries"` // PutRecords/PutRecord entries received
	// ThrottledEntries are entries answered ProvisionedThroughputExceededException.
	ThrottledEntries int64 `json:"throttled_entries"`
	// ThrottledCalls are calls answered HTTP 400 ProvisionedThroughputExceededException
	// (PutRecord, GetRecords).
	ThrottledCalls int64 `json:"throttled_calls"`
	// Faults counts injected faults by kind name (see FaultKind.String): entries for
	// entry-internal-failure, calls for the others.
	Faults map[string]int64 `json:"faults,omitempty"`
	// WrittenButFailed counts PutRecords entries the upstream stored that the client was told
	// failed (After faults on entries or on the whole call): each may be stored again by the
	// client's retry, so it bounds the duplicates a correct producer can make.
	WrittenButFailed int64 `json:"written_but_failed"`
	// UpstreamErrors counts calls the upstream did not answer (answered HTTP 502).
	UpstreamErrors int64 `json:"upstream_errors"`
	BytesIn        int64 `json:"bytes_in"`  // request body bytes from clients
	BytesOut       int64 `json:"bytes_out"` // response body bytes to clients
}

func (c *OpCounters) add(o OpCounters) {
	c.Requests += o.Requests
	c.WrittenButFailed += o.WrittenButFailed
	c.Forwarded += o.Forwarded
	c.Unscanned += o.Unscanned
	c.Entries += o.Entries
	c.ThrottledEntries += o.ThrottledEntries
	c.ThrottledCalls += o.ThrottledCalls
	c.UpstreamErrors += o.UpstreamErrors
	c.BytesIn += o.BytesIn
	c.BytesOut += o.BytesOut
	for k, v := range o.Faults {
		if c.Faults == nil {
			c.Faults = make(map[string]int64)
		}
		c.Faults[k] += v
	}
}

// faults returns the sum of c.Faults.
func (c *OpCounters) faults() int64 {
	var n int64
	for _, v := range c.Faults {
		n += v
	}
	return n
}

// counters is the live, lock-guarded form of Counters.
type counters struct {
	mu        sync.Mutex
	started   time.Time
	ops       map[string]*OpCounters
	refreshes int64
}

func newCounters(now time.Time) *counters {
	return &counters{started: now, ops: make(map[string]*OpCounters)}
}

// update applies f to op's counters.
func (c *counters) update(op string, f func(*OpCounters)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.ops[op]
	if o == nil {
		o = &OpCounters{}
		c.ops[op] = o
	}
	f(o)
}

func (c *counters) fault(op string, k FaultKind, n int64) {
	c.update(op, func(o *OpCounters) {
		if o.Faults == nil {
			o.Faults = make(map[string]int64)
		}
		o.Faults[k.String()] += n
	})
}

func (c *counters) refreshed() {
	c.mu.Lock()
	c.refreshes++
	c.mu.Unlock()
}

func (c *counters) snapshot() Counters {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Counters{Started: c.started, Operations: make(map[string]OpCounters, len(c.ops)), ShardMapRefreshes: c.refreshes}
	for name, o := range c.ops {
		cp := *o
		cp.Faults = maps.Clone(o.Faults)
		s.Operations[name] = cp
		s.Total.add(*o)
	}
	return s
}

// serveCounters answers GET /_proxy/counters.
func (p *Proxy) serveCounters(w http.ResponseWriter) {
	b, err := json.MarshalIndent(p.Counters(), "", "  ")
	if err != nil { // cannot happen: the struct holds numbers, strings and a time
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(b, '\n'))
}

// summarize logs one line per interval with what happened in it (nothing for an interval
// without calls), until ctx ends.
func (p *Proxy) summarize(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	prev := p.counters.snapshot().Total
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := p.counters.snapshot().Total
		attrs, busy := intervalSummary(prev, cur)
		if !busy {
			continue // an idle interval says nothing
		}
		p.log.LogAttrs(ctx, slog.LevelInfo, "kinesis-proxy summary", append([]slog.Attr{slog.Duration("interval", every)}, attrs...)...)
		prev = cur
	}
}

// intervalSummary is what happened between two snapshots of the totals, and whether anything
// did. A call is counted in steps (received, then its entries throttled or its answer sent), so
// a tick can fall between them: an interval that received no call but throttled entries of one,
// or sent its answer, is busy too, or its counts would never be logged.
func intervalSummary(prev, cur OpCounters) (attrs []slog.Attr, busy bool) {
	d := OpCounters{
		Requests:         cur.Requests - prev.Requests,
		Forwarded:        cur.Forwarded - prev.Forwarded,
		Unscanned:        cur.Unscanned - prev.Unscanned,
		WrittenButFailed: cur.WrittenButFailed - prev.WrittenButFailed,
		Entries:          cur.Entries - prev.Entries,
		ThrottledEntries: cur.ThrottledEntries - prev.ThrottledEntries,
		ThrottledCalls:   cur.ThrottledCalls - prev.ThrottledCalls,
		UpstreamErrors:   cur.UpstreamErrors - prev.UpstreamErrors,
		BytesIn:          cur.BytesIn - prev.BytesIn,
		BytesOut:         cur.BytesOut - prev.BytesOut,
	}
	faults := cur.faults() - prev.faults()
	busy = faults != 0 || d.Requests != 0 || d.Forwarded != 0 || d.Unscanned != 0 || d.WrittenButFailed != 0 ||
		d.Entries != 0 || d.ThrottledEntries != 0 || d.ThrottledCalls != 0 || d.UpstreamErrors != 0 ||
		d.BytesIn != 0 || d.BytesOut != 0
	return []slog.Attr{
		slog.Int64("requests", d.Requests),
		slog.Int64("forwarded", d.Forwarded),
		slog.Int64("entries", d.Entries),
		slog.Int64("throttled_entries", d.ThrottledEntries),
		slog.Int64("throttled_calls", d.ThrottledCalls),
		slog.Int64("faults", faults),
		slog.Int64("upstream_errors", d.UpstreamErrors),
		slog.Int64("bytes_in", d.BytesIn),
		slog.Int64("bytes_out", d.BytesOut),
	}, busy
}
