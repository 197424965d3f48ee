package events

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// queueSize bounds the events waiting for listeners.
const queueSize = 1024

// coalesce is how long the bus lets events gather before it delivers them: waking its
// goroutine for every event would cost the emitter a wake-up each time, more than the rest
// of a consumer's work on a 1,000-record batch.
const coalesce = 10 * time.Millisecond

// Bus delivers events to listeners from one goroutine of its own, so that emitting never
// blocks: Emit enqueues or, when the queue is full, drops and counts. Producers and consumers
// own one each; it is exported for code that wants the same delivery rules. The zero Bus and a
// nil *Bus deliver nothing and cost nothing.
type Bus struct {
	listeners []Listener
	queue     chan Event
	wake      chan struct{} // capacity 1: events are queued and no delivery is scheduled
	pending   atomic.Bool   // a wake-up is scheduled
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	onDrop  func()    // called on the emitting goroutine for each dropped event
	onPanic func(any) // called on the bus goroutine for each recovered listener panic

	dropped, panics atomic.Int64
}

// NewBus returns a Bus delivering to listeners (nil ones are ignored), or nil when there are
// none, and starts its goroutine. onDrop is called for each event dropped because the queue
// was full, onPanic for each panic recovered from a listener; either may be nil. Close stops
// the goroutine.
func NewBus(listeners []Listener, onDrop func(), onPanic func(any)) *Bus {
	var ls []Listener
	for _, l := range listeners {
		if l != nil {
			ls = append(ls, l)
		}
	}
	if len(ls) == 0 {
		return nil
	}
	b := &Bus{listeners: ls, queue: make(chan Event, queueSize), wake: make(chan struct{}, 1), done: make(chan struct{}), onDrop: onDrop, onPanic: onPanic}
	b.wg.Go(b.run)
	return b
}

// Active reports whether b has listeners: callers skip building events otherwise.
func (b *Bus) Active() bool { return b != nil }

// Emit queues e for the listeners, or drops it when the queue is full or b is closed.
func (b *Bus) Emit(e Event) {
	if b == nil {
		return
	}
	select {
	case <-b.done:
		return
	default:
	}
	select {
	case b.queue <- e:
		if b.pending.CompareAndSwap(false, true) {
			select {
			case b.wake <- struct{}{}:
			default:
			}
		}
	default:
		b.dropped.Add(1)
		if b.onDrop != nil {
			b.onDrop()
		}
	}
}

func (b *Bus) run() {
	t := time.NewTimer(coalesce)
	t.Stop()
	for {
		select {
		case <-b.wake:
			t.Reset(coalesce)
			select {
			case <-t.C:
			case <-b.done:
				t.Stop()
			}
			b.pending.Store(false) // events queued from now on schedule the next delivery
			b.drain()
		case <-b.done:
			b.drain()
			return
		}
	}
}

// drain delivers every queued event.
func (b *Bus) drain() {
	for {
		select {
		case e := <-b.queue:
			b.deliver(e)
		default:
			return
		}
	}
}

func (b *Bus) deliver(e Event) {
	for _, l := range b.listeners {
		b.call(l, e)
	}
}

func (b *Bus) call(l Listener, e Event) {
	defer func() {
		if r := recover(); r != nil {
			b.panics.Add(1)
			if b.onPanic != nil {
				b.onPanic(r)
			}
		}
	}()
	l.OnEvent(e)
}

// Close delivers what is queued, stops the goroutine and waits for it, or for ctx to end. Events
// emitted after Close are dropped. Close is safe to call more than once.
func (b *Bus) Close(ctx context.Context) error {
	if b == nil {
		return nil
	}
	b.closeOnce.Do(func() { close(b.done) })
	stopped := make(chan struct{})
	go func() { b.wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Dropped returns how many events were dropped because the queue was full.
func (b *Bus) Dropped() int64 {
	if b == nil {
		return 0
	}
	return b.dropped.Load()
}

// Panics returns how many listener panics were recovered.
func (b *Bus) Panics() int64 {
	if b == nil {
		return 0
	}
	return b.panics.Load()
}
