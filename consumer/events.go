package consumer

import (
	"time"

	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/events"
	"github.com/shardline/kinesis/metrics"
)

// startEvents starts the delivery of lifecycle events for one Run; its drops and listener
// panics are counted and logged.
func (c *Consumer) startEvents() {
	c.bus = events.NewBus(c.cfg.listeners,
		func() { c.cfg.metrics.Add(metrics.EventsDropped, 1, c.labels) },
		func(r any) {
			c.cfg.metrics.Add(metrics.EventsListenerPanics, 1, c.labels)
			c.log.Error("consumer: event listener panicked", "panic", r)
		})
}

// emit fills the fields every consumer event has and hands e to the listeners. Without
// listeners it costs a nil check.
func (c *Consumer) emit(e events.Event) {
	if !c.bus.Active() {
		return
	}
	e.Time, e.Stream, e.Group, e.Worker = time.Now(), c.stream, c.cfg.group, c.cfg.workerID
	c.bus.Emit(e)
}

// emit is Consumer.emit for an event of the reader's shard.
func (r *shardReader) emit(e events.Event) {
	e.Shard = r.info.id
	r.c.emit(e)
}

// positionEvent is an event about a checkpoint position: its sequence and sub-sequence number,
// or "SHARD_END" in Detail. Building it allocates nothing.
func positionEvent(t events.Type, pos checkpoint.Position, err error) events.Event {
	e := events.Event{Type: t, Err: err, Sequence: pos.SequenceNumber, SubSequence: pos.SubSequenceNumber}
	if pos.ShardEnd {
		e.Detail = "SHARD_END"
	}
	return e
}
