package producer

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/shardline/kinesis/health"
)

// HealthThresholds are the limits Health judges the producer by. A zero field keeps its
// default.
type HealthThresholds struct {
	// BufferFill is the share of the buffer (records or bytes, whichever is fuller) at or
	// above which the producer is degraded: Put is about to block. Default 0.8.
	BufferFill float64
	// FailureRate is the share of records finally failing, over Window, above which the
	// producer is failing; any failure in the window makes it degraded. Default 0.5.
	FailureRate float64
	// Window is how far back the failure rate looks. Default 1 minute.
	Window time.Duration
}

func (t HealthThresholds) withDefaults() HealthThresholds {
	if t.BufferFill == 0 {
		t.BufferFill = 0.8
	}
	if t.FailureRate == 0 {
		t.FailureRate = 0.5
	}
	if t.Window == 0 {
		t.Window = time.Minute
	}
	return t
}

// WithHealthThresholds sets the limits Health judges by; zero fields keep their defaults (see
// HealthThresholds). KPL: none.
func WithHealthThresholds(t HealthThresholds) Option {
	return func(c *config) { c.health = t }
}

// listing is the outcome of the last shard listing, for Ready and Health.
type listing struct {
	ok  bool // some listing succeeded
	err error
	at  time.Time
}

// outcomeSample is the count of final outcomes at one moment, for the failure rate.
type outcomeSample struct {
	at                time.Time
	delivered, failed int64
}

type healthState struct {
	mu      sync.Mutex
	samples []outcomeSample // oldest first; the first is at least Window old when there is one
}

// failureRate returns the records failed and settled since about Window ago.
func (p *Producer) failureRate(now time.Time, window time.Duration) (failed, settled int64) {
	cur := outcomeSample{at: now, delivered: p.stats.delivered.Load(), failed: p.stats.failed.Load()}
	h := &p.healthState
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples = append(h.samples, cur)
	// Keep the newest sample at least window old, and everything after it.
	for len(h.samples) > 1 && now.Sub(h.samples[1].at) >= window {
		h.samples = h.samples[1:]
	}
	base := h.samples[0]
	if len(h.samples) > 64 { // Health called very often: thin out, keeping the base
		h.samples = append(h.samples[:1], h.samples[len(h.samples)-32:]...)
	}
	return cur.failed - base.failed, (cur.failed - base.failed) + (cur.delivered - base.delivered)
}

// Health reports the producer's health: whether the stream could be listed (a missing stream
// or denied access is failing), how full the buffer is, and the share of records that finally
// failed lately. A closed producer is not live. Safe to call at any time from any goroutine;
// each call also advances the failure-rate window.
func (p *Producer) Health() health.Report {
	now := time.Now()
	th := p.cfg.health.withDefaults()
	r := health.Report{Component: "producer", Stream: p.stream, Time: now, Status: health.OK, Live: true}
	select {
	case <-p.closing:
		r.Live = false
		r.Add(health.Check{Name: "running", Status: health.Failing, Reason: "closed"})
	default:
		r.Add(health.Check{Name: "running", Status: health.OK})
	}

	stream := health.Check{Name: "stream", Status: health.OK}
	switch l := p.listing.Load(); {
	case l == nil:
		stream.Status, stream.Reason = health.Degraded, "the shards have not been listed yet"
	case l.err != nil && !IsRetryable(l.err):
		stream.Status, stream.Reason = health.Failing, l.err.Error()
	case l.err != nil:
		stream.Status, stream.Reason = health.Degraded, "listing the shards fails, retrying: "+l.err.Error()
	}
	r.Add(stream)

	records, bytes := p.buf.usage()
	fill := max(float64(records)/float64(p.buf.maxRecords), float64(bytes)/float64(p.buf.maxBytes))
	buffer := health.Check{Name: "buffer", Status: health.OK, Figures: map[string]float64{
		"fill": fill, "records": float64(records), "bytes": float64(bytes)}}
	if fill >= th.BufferFill {
		buffer.Status, buffer.Reason = health.Degraded, fmt.Sprintf("buffer %.0f%% full: Put blocks when it is full", fill*100)
	}
	r.Add(buffer)

	failed, settled := p.failureRate(now, th.Window)
	rate := 0.0
	if settled > 0 {
		rate = float64(failed) / float64(settled)
	}
	failures := health.Check{Name: "failures", Status: health.OK, Figures: map[string]float64{
		"failed": float64(failed), "settled": float64(settled), "rate": rate}}
	switch {
	case rate > th.FailureRate:
		failures.Status = health.Failing
	case failed > 0:
		failures.Status = health.Degraded
	}
	if failed > 0 {
		failures.Reason = fmt.Sprintf("%d of %d records failed lately", failed, settled)
	}
	r.Add(failures)
	return r
}

// Ready waits until the producer has listed the stream's shards, so a service can refuse to
// start when its stream is missing or not writable: it returns nil once a listing succeeded,
// the listing's error at once when it cannot succeed by retrying (a missing stream, denied
// access), or, when ctx ends first, an error wrapping ctx's error and the last listing error.
func (p *Producer) Ready(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		l := p.listing.Load()
		switch {
		case l != nil && l.ok:
			return nil
		case l != nil && l.err != nil && !IsRetryable(l.err):
			return fmt.Errorf("producer: stream %s is not writable: %w", p.stream, l.err)
		}
		select {
		case <-ctx.Done():
			if l != nil && l.err != nil {
				return fmt.Errorf("producer: stream %s not ready: %w (last listing: %w)", p.stream, ctx.Err(), l.err)
			}
			return fmt.Errorf("producer: stream %s not ready: %w", p.stream, ctx.Err())
		case <-p.closing:
			return ErrClosed
		case <-t.C:
		}
	}
}
