package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/events"
	"github.com/shardline/kinesis/metrics"
)

// storeHealth tracks whether the checkpoint store answers: since when every call has failed
// as unavailable, and the last such error. Any answer of the store (success, or a conditional
// write refused) ends an outage.
type storeHealth struct {
	mu        sync.Mutex
	downSince time.Time
	lastErr   error
}

// storeResult records the outcome of one store call: an outage starts (logged at WARN) with
// the first call that fails as unavailable, is counted per operation in
// consumer_store_errors_total, and ends (logged) with the next answer.
func (c *Consumer) storeResult(op string, err error) {
	if err != nil && errors.Is(err, context.Canceled) {
		return // shutting down: says nothing about the store
	}
	if err != nil && !errors.Is(err, checkpoint.ErrConflict) && !errors.Is(err, checkpoint.ErrLeaseLost) &&
		!errors.Is(err, checkpoint.ErrPositionBehind) && !errors.Is(err, checkpoint.ErrNotFound) {
		labels := c.labels
		labels.Operation, labels.ErrorType = op, errorType(err)
		c.cfg.metrics.Add(metrics.ConsumerStoreErrors, 1, labels)
	}
	h := &c.health
	if err != nil && errors.Is(err, checkpoint.ErrUnavailable) {
		h.mu.Lock()
		first := h.downSince.IsZero()
		if first {
			h.downSince = time.Now()
		}
		h.lastErr = err
		h.mu.Unlock()
		if first {
			c.log.Warn("consumer: checkpoint store unavailable; retrying", "op", op, "err", err)
			c.emit(events.Event{Type: events.StoreUnavailable, Err: err, Detail: "op=" + op})
		}
		return
	}
	h.mu.Lock()
	since := h.downSince
	h.downSince, h.lastErr = time.Time{}, nil
	h.mu.Unlock()
	if !since.IsZero() {
		c.log.Info("consumer: checkpoint store available again", "op", op, "after", time.Since(since).Round(time.Millisecond))
		c.emit(events.Event{Type: events.StoreRecovered, Duration: time.Since(since), Detail: "op=" + op})
	}
}

// storeOutage returns since when the store has been unavailable and the last error, or the
// zero time.
func (c *Consumer) storeOutage() (time.Time, error) {
	c.health.mu.Lock()
	defer c.health.mu.Unlock()
	return c.health.downSince, c.health.lastErr
}

// outageExceeded returns a *FatalError once the store has been unavailable for longer than
// WithMaxStoreOutage allows.
func (c *Consumer) outageExceeded() error {
	if c.cfg.maxStoreOutage <= 0 {
		return nil
	}
	since, err := c.storeOutage()
	if since.IsZero() {
		return nil
	}
	if d := time.Since(since); d > c.cfg.maxStoreOutage {
		return &FatalError{Op: fmt.Sprintf("checkpoint store unavailable for %v (WithMaxStoreOutage %v)",
			d.Round(time.Millisecond), c.cfg.maxStoreOutage), Err: err}
	}
	return nil
}
