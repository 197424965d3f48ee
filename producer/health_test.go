package producer

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/kinesis/health"
)

// Guards against a service that only learns of a missing stream at its first record's Wait
// (issue 15): Ready fails at once with the typed AWS error, and succeeds on a stream that is
// there.
func TestReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(2)
		p := newProducer(t, f)
		if err := p.Ready(context.Background()); err != nil {
			t.Fatalf("Ready = %v", err)
		}
		closeProducer(t, p)

		missing := newFake(2)
		missing.listErr = func(int) error {
			return &types.ResourceNotFoundException{Message: aws.String("Stream orders not found")}
		}
		p = newProducer(t, missing)
		start := time.Now()
		err := p.Ready(context.Background())
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) || time.Since(start) > time.Second {
			t.Fatalf("Ready on a missing stream = %v after %v, want ResourceNotFoundException at once", err, time.Since(start))
		}
		if h := p.Health(); h.Status != health.Failing {
			t.Errorf("Health on a missing stream = %+v, want failing", h)
		}
		closeProducer(t, p)
	})
}

// Guards against a health report that does not move: each check reaches each state.
func TestHealthChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		f.block = make(chan struct{})
		f.inject = func(int, []types.PutRecordsRequestEntry) ([]string, error) { return []string{"Refused"}, nil }
		p := newProducer(t, f, WithBufferLimits(10, 1<<20), WithAggregation(false),
			WithHealthThresholds(HealthThresholds{Window: 10 * time.Second}))
		if err := p.Ready(context.Background()); err != nil {
			t.Fatal(err)
		}
		check := func(name string, want health.Status) health.Check {
			t.Helper()
			c, ok := p.Health().Check(name)
			if !ok || c.Status != want {
				t.Errorf("check %s = %+v, want %s", name, c, want)
			}
			return c
		}
		check("buffer", health.OK)
		for range 9 {
			if _, err := p.TryPut("k", []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		if c := check("buffer", health.Degraded); c.Figures["fill"] != 0.9 {
			t.Errorf("fill = %v, want 0.9", c.Figures["fill"])
		}
		close(f.block)
		_ = p.Flush(context.Background())
		if c := check("failures", health.Failing); c.Figures["failed"] != 9 || c.Figures["rate"] != 1 {
			t.Errorf("failures figures %v, want 9 failed, rate 1", c.Figures)
		}
		if h := p.Health(); h.Status != health.Failing || !h.Live {
			t.Errorf("report %+v, want failing and live", h)
		}
		f.mu.Lock()
		f.inject = nil
		f.mu.Unlock()
		time.Sleep(11 * time.Second) // the failures leave the window
		if _, err := p.PutSync(context.Background(), "k", []byte("x")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(11 * time.Second)
		check("failures", health.OK)
		closeProducer(t, p)
		if h := p.Health(); h.Live {
			t.Errorf("a closed producer reports live: %+v", h)
		}
	})
}
