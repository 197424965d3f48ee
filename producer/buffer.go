package producer

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"

	"github.com/shardline/kinesis/internal/shardmap"
)

// buffer is the producer's intake: it bounds the records accepted and not yet settled (by
// count and bytes), makes blocked Puts wait in FIFO order, hands accepted records to the
// dispatcher through an inbox, and tracks Flush generations.
//
// A record counts against the bounds from acceptance until release, which follows its outcome
// (and its OnFailure hook, if any). One mutex guards everything: each Put takes it once.
type buffer struct {
	mu         sync.Mutex
	closed     bool
	accepted   int64 // records ever accepted
	records    int
	bytes      int
	maxRecords int
	maxBytes   int
	waiters    []*waiter
	// spareWaiters holds waiters of Puts that returned: at most as many as Puts ever blocked
	// at once.
	spareWaiters []*waiter
	slab         []Result // Results not handed out yet
	inbox        []*Result
	wake         chan struct{} // capacity 1: the inbox went from empty to not empty
	gens         []*flushGen   // oldest first; the last one is open to new records
	nextGen      uint64        // the number of the next generation
	watches      []*failWatch  // what Flush and Close calls count
	drained      chan struct{} // closed once closed and every record is released
}

// failWatch counts the records of Flush generations up to upto that fail while a Flush or
// Close waits: what its FailedError reports.
type failWatch struct {
	upto  uint64
	count int
	first error
}

// waiter is a blocked Put. Granting it accepts its record on its behalf, under the lock, so a
// record is either in the inbox or refused, never in between. Waiters are pooled: a full
// buffer is the steady state of a producer that Puts faster than Kinesis takes.
type waiter struct {
	r     *Result
	ready chan struct{} // capacity 1: receives one value when state leaves waiting
	state int
}

// newWaiter returns a spare waiter or a new one. Called with b.mu held.
func (b *buffer) newWaiter() *waiter {
	if n := len(b.spareWaiters); n > 0 {
		w := b.spareWaiters[n-1]
		b.spareWaiters = b.spareWaiters[:n-1]
		return w
	}
	return &waiter{ready: make(chan struct{}, 1)}
}

const (
	waiting = iota
	granted
	refused // the buffer closed
)

// flushGen counts the unreleased records accepted between two Flush calls. Generations are
// retired in order, so a closed done channel means every record accepted before it was marked
// has been released.
type flushGen struct {
	seq  uint64 // generations are numbered in order
	n    int
	done chan struct{} // made by Flush; closed when this and every older generation are empty
}

func newBuffer(maxRecords, maxBytes int) *buffer {
	return &buffer{
		maxRecords: maxRecords,
		maxBytes:   maxBytes,
		wake:       make(chan struct{}, 1),
		gens:       []*flushGen{{seq: 0}},
		nextGen:    1,
		drained:    make(chan struct{}),
	}
}

// admit accepts a record, waiting for room while block is set and ctx allows, and returns
// its Result.
func (b *buffer) admit(ctx context.Context, rec *Record, h shardmap.Hash, attrs *[]slog.Attr, block bool) (*Result, error) {
	size := len(rec.PartitionKey) + len(rec.Data)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	if len(b.waiters) == 0 && b.fits(size) {
		r := b.newResult(rec, h, size, attrs)
		b.accept(r)
		b.mu.Unlock()
		return r, nil
	}
	if !block {
		b.mu.Unlock()
		return nil, ErrBufferFull
	}
	w := b.newWaiter()
	w.r = b.newResult(rec, h, size, attrs)
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()

	woken := false
	select {
	case <-w.ready:
		woken = true
	case <-ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r, state := w.r, w.state
	if state == waiting {
		b.waiters = slices.DeleteFunc(b.waiters, func(x *waiter) bool { return x == w })
		b.grant() // the next waiter may fit now that this one left the head of the line
	} else if !woken {
		<-w.ready // sent under the lock we hold: it is there
	}
	*w = waiter{ready: w.ready}
	b.spareWaiters = append(b.spareWaiters, w)
	switch state {
	case granted:
		return r, nil // accepted, even if ctx ended at the same moment
	case refused:
		return nil, ErrClosed
	}
	// Refused for backpressure: the buffer stayed full for as long as ctx allowed. The error
	// says so (ErrBufferFull) as well as why the wait ended (ctx's error).
	return nil, fmt.Errorf("%w: gave up waiting for space: %w", ErrBufferFull, ctx.Err())
}

// resultSlab is how many Results one allocation makes: a record then costs a fraction of an
// allocation. A kept Result keeps its slab (about 3 KiB) alive, but no record data: that is
// dropped at the outcome.
const resultSlab = 16

// newResult makes the Result of an accepted record. Called with b.mu held.
func (b *buffer) newResult(rec *Record, h shardmap.Hash, size int, attrs *[]slog.Attr) *Result {
	if len(b.slab) == 0 {
		b.slab = make([]Result, resultSlab)
	}
	r := &b.slab[0]
	b.slab = b.slab[1:]
	r.rec, r.hash, r.size, r.attrs = *rec, h, int32(size), attrs // size is at most MaxRecordSizeLimit
	return r
}

func (b *buffer) fits(size int) bool {
	return b.records+1 <= b.maxRecords && b.bytes+size <= b.maxBytes
}

// accept counts r in, stamps it and queues it for the dispatcher. Called with b.mu held.
func (b *buffer) accept(r *Result) {
	b.accepted++
	b.records++
	b.bytes += int(r.size)
	g := b.gens[len(b.gens)-1]
	g.n++
	r.gen = g
	b.inbox = append(b.inbox, r)
	if len(b.inbox) == 1 {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
}

// grant accepts waiting records in FIFO order while they fit. Called with b.mu held.
func (b *buffer) grant() {
	for len(b.waiters) > 0 && !b.closed && b.fits(int(b.waiters[0].r.size)) {
		w := b.waiters[0]
		// Shift down rather than reslice, so the slice keeps its capacity: there are few
		// waiters (one per blocked Put), and a full buffer is a steady state.
		n := copy(b.waiters, b.waiters[1:])
		b.waiters[n] = nil
		b.waiters = b.waiters[:n]
		b.accept(w.r)
		w.state = granted
		w.ready <- struct{}{}
	}
}

// take hands the inbox to the dispatcher, which gives back spare (emptied) for reuse.
func (b *buffer) take(spare []*Result) []*Result {
	b.mu.Lock()
	rs := b.inbox
	b.inbox = spare[:0]
	b.mu.Unlock()
	return rs
}

// release counts settled records out: it frees their room, retires Flush generations and
// lets waiting Puts in.
func (b *buffer) release(rs []*Result) {
	if len(rs) == 0 {
		return
	}
	b.mu.Lock()
	for _, r := range rs {
		b.records--
		b.bytes -= int(r.size)
		r.gen.n--
		r.gen = nil
	}
	b.retireGens()
	b.grant()
	if b.closed && b.records == 0 {
		b.closeDrained()
	}
	b.mu.Unlock()
}

// retireGens drops empty generations from the front, never the open one. Called with b.mu
// held.
func (b *buffer) retireGens() {
	for len(b.gens) > 1 && b.gens[0].n == 0 {
		if g := b.gens[0]; g.done != nil {
			close(g.done)
		}
		b.gens[0] = nil
		b.gens = b.gens[1:]
	}
}

// mark starts a new Flush generation and returns a channel closed once every record accepted
// so far is released, or nil if there is none, and a watch counting those of them that fail
// from now on (see unwatch).
func (b *buffer) mark() (<-chan struct{}, *failWatch) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.records == 0 {
		return nil, nil
	}
	g := b.gens[len(b.gens)-1]
	if g.done == nil {
		g.done = make(chan struct{})
	}
	b.gens = append(b.gens, &flushGen{seq: b.nextGen})
	b.nextGen++
	b.retireGens()
	w := &failWatch{upto: g.seq}
	b.watches = append(b.watches, w)
	return g.done, w
}

// watchAll returns a watch counting every record that fails from now on.
func (b *buffer) watchAll() *failWatch {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := &failWatch{upto: math.MaxUint64}
	b.watches = append(b.watches, w)
	return w
}

// unwatch stops w and returns what it counted.
func (b *buffer) unwatch(w *failWatch) failWatch {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.watches = slices.DeleteFunc(b.watches, func(x *failWatch) bool { return x == w })
	return *w
}

// noteFailed counts records failing with err, or maybe for those that may have been written
// (not yet released), for the watches whose generations they belong to. Failures are rare:
// this takes the lock once per call.
func (b *buffer) noteFailed(rs []*Result, err, maybe error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, w := range b.watches {
		for _, r := range rs {
			if r.gen.seq <= w.upto {
				w.count++
				if w.first == nil {
					w.first = err
					if r.maybe {
						w.first = maybe
					}
				}
			}
		}
	}
}

// close refuses new records and wakes every waiting Put with ErrClosed.
func (b *buffer) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for _, w := range b.waiters {
		w.state = refused
		w.ready <- struct{}{}
	}
	b.waiters = nil
	if b.records == 0 {
		b.closeDrained()
	}
}

func (b *buffer) closeDrained() {
	select {
	case <-b.drained:
	default:
		close(b.drained)
	}
}

// usage returns the records and bytes accepted and not yet released.
func (b *buffer) usage() (records, bytes int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.records, b.bytes
}
