// Package backoff computes capped exponential backoff with jitter, shared by the producer's
// retries and the consumer's throttling and error recovery.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is capped exponential backoff: attempt n (from 0) waits a random duration in
// [d/2, d] where d = min(Max, Base·2ⁿ). The lower half keeps a throttled caller from retrying
// at once; the random upper half spreads callers that failed together.
type Policy struct {
	Base time.Duration // first delay's upper bound; must be > 0
	Max  time.Duration // cap on any delay; must be ≥ Base
}

// Delay returns the wait before retry attempt n (0 for the first retry).
func (p Policy) Delay(n int) time.Duration {
	d := p.Base
	for i := 0; i < n && d < p.Max; i++ {
		d *= 2
	}
	if d > p.Max {
		d = p.Max
	}
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(d-half+1)
}

// Sleep waits for d or until ctx is done, whichever comes first, and returns ctx.Err() in the
// latter case.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
