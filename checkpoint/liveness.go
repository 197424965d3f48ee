package checkpoint

import (
	"sync"
	"time"
)

// Liveness judges leases and workers live or expired the way the KCL does: an observer that
// sees a counter stay the same for the lease duration, on its own monotonic clock, judges its
// holder dead. No clock of another host is ever compared with this one.
//
// A counter seen for the first time is live: a new observer waits a full duration before it
// judges anything expired. Liveness is safe for concurrent use.
type Liveness struct {
	duration time.Duration
	now      func() time.Time

	mu   sync.Mutex
	seen map[string]observation
}

type observation struct {
	counter int64
	since   time.Time // when this observer first saw counter; carries a monotonic reading
}

// NewLiveness returns a Liveness that judges a counter expired after it stayed unchanged for
// duration. now is the clock (time.Now when nil; tests may pass a fake one).
func NewLiveness(duration time.Duration, now func() time.Time) *Liveness {
	if now == nil {
		now = time.Now
	}
	return &Liveness{duration: duration, now: now, seen: make(map[string]observation)}
}

// Observe records that id's counter is counter now and reports whether it has stayed the same
// for at least the duration.
func (l *Liveness) Observe(id string, counter int64) (expired bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	o, ok := l.seen[id]
	if !ok || o.counter != counter {
		l.seen[id] = observation{counter: counter, since: now}
		return false
	}
	return now.Sub(o.since) >= l.duration
}

// Unchanged returns how long id's counter has stayed the same as last observed, and false when
// id was never observed.
func (l *Liveness) Unchanged(id string) (time.Duration, bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	o, ok := l.seen[id]
	if !ok {
		return 0, false
	}
	return now.Sub(o.since), true
}

// Forget drops what l knows of id (a deleted row), so memory stays bounded by live rows.
func (l *Liveness) Forget(id string) {
	l.mu.Lock()
	delete(l.seen, id)
	l.mu.Unlock()
}

// Retain forgets every id for which keep returns false.
func (l *Liveness) Retain(keep func(id string) bool) {
	l.mu.Lock()
	for id := range l.seen {
		if !keep(id) {
			delete(l.seen, id)
		}
	}
	l.mu.Unlock()
}
