package producer

import "sync"

// hookQueue carries failed records from whichever goroutine failed them to the one goroutine
// that calls the OnFailure hook. Its length is bounded by the buffer: a record keeps its room
// there until its hook returned.
type hookQueue struct {
	mu   sync.Mutex
	q    []*Result
	wake chan struct{} // capacity 1
	stop chan struct{} // closed once nothing can fail any more
}

func newHookQueue() *hookQueue {
	return &hookQueue{wake: make(chan struct{}, 1), stop: make(chan struct{})}
}

// push queues rs (copied: the caller may reuse the slice).
func (h *hookQueue) push(rs []*Result) {
	h.mu.Lock()
	h.q = append(h.q, rs...)
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// runHooks calls the OnFailure hook for each failed record, serially and in order, then
// releases the records. It returns once stop is closed and the queue is empty.
func (p *Producer) runHooks() {
	defer p.hookWG.Done()
	h := p.hooks
	var batch []*Result
	for {
		stopping := false
		select {
		case <-h.wake:
		case <-h.stop:
			stopping = true
		}
		for {
			h.mu.Lock()
			batch, h.q = h.q, batch[:0]
			h.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			for _, r := range batch {
				p.callHook(r)
			}
			p.buf.release(batch)
			clear(batch)
		}
		if stopping {
			return
		}
	}
}

// callHook calls the hook for r. A panicking hook is logged, not propagated: the producer's
// goroutines must survive it for every other record to reach its outcome.
func (p *Producer) callHook(r *Result) {
	defer func() {
		r.rec.Data = nil
		if v := recover(); v != nil {
			p.log.Error("producer: OnFailure hook panicked", "panic", v)
		}
	}()
	o, _ := r.Outcome()
	p.cfg.onFailure(r.rec, o)
}
