package backoff

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// Guards against delays that grow without the cap, drop below the half-delay floor (a throttled
// caller hammering the service), or overflow for large attempt numbers.
func TestDelayBounds(t *testing.T) {
	p := Policy{Base: 100 * time.Millisecond, Max: 2 * time.Second}
	for n := 0; n < 100; n++ {
		want := p.Base << min(n, 20)
		if want > p.Max {
			want = p.Max
		}
		for range 50 {
			d := p.Delay(n)
			if d < want/2 || d > want {
				t.Fatalf("Delay(%d) = %v, want in [%v, %v]", n, d, want/2, want)
			}
		}
	}
}

// Guards against a Sleep that ignores cancellation (Close would hang behind a backoff).
func TestSleepCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(time.Second); cancel() }()
		start := time.Now()
		if err := Sleep(ctx, time.Hour); err != context.Canceled {
			t.Fatalf("Sleep = %v, want context.Canceled", err)
		}
		if got := time.Since(start); got != time.Second {
			t.Fatalf("Sleep returned after %v, want 1s", got)
		}
		if err := Sleep(context.Background(), 5*time.Second); err != nil {
			t.Fatalf("Sleep = %v", err)
		}
	})
}
