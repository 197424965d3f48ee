package consumer

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/health"
)

func wantCheck(t *testing.T, c *Consumer, name string, want health.Status) health.Check {
	t.Helper()
	got, ok := c.Health().Check(name)
	if !ok || got.Status != want {
		t.Errorf("check %s = %+v, want %s", name, got, want)
	}
	return got
}

// Guards against a health report that does not move (issue 10): each check of the consumer
// reaches each of its states.
func TestHealthRunningStoreCheckpoints(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 1)
		p := newProducer(f)
		store := &cuttableStore{Store: checkpoint.NewMemory()}
		s := newSink()
		c := newTestConsumer(t, f, store, WithLeaseDuration(5*time.Minute))
		wantCheck(t, c, "running", health.Failing)
		stop := run(t, c, s.handler("w"))
		p.plain(10, 2)
		waitFor(t, time.Minute, "records", func() bool { return s.unique() == 10 })
		if h := c.Health(); h.Status != health.OK || !h.Live {
			t.Fatalf("healthy consumer reports %+v", h)
		}
		store.setCut(true)
		p.plain(10, 2) // a batch whose checkpoint fails
		time.Sleep(5 * time.Second)
		wantCheck(t, c, "store", health.Degraded)
		wantCheck(t, c, "checkpoints", health.Degraded)
		time.Sleep(65 * time.Second)
		wantCheck(t, c, "checkpoints", health.Failing)
		time.Sleep(9 * time.Minute) // two lease durations
		if got := wantCheck(t, c, "store", health.Failing); got.Figures["unavailable_seconds"] < 600 {
			t.Errorf("store figures %v", got.Figures)
		}
		store.setCut(false)
		waitFor(t, time.Minute, "recovery", func() bool { return c.Health().Status == health.OK })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if h := c.Health(); h.Live {
			t.Errorf("a consumer whose Run returned reports live: %+v", h)
		}
	})
}

func TestHealthReadsAndIteratorAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 1)
		newProducer(f).plain(100, 2)
		time.Sleep(2 * time.Minute) // the records wait: the reader starts 2 minutes behind
		release := make(chan struct{})
		c := newTestConsumer(t, f, checkpoint.NewMemory(), WithMaxRecords(1))
		stop := run(t, c, func(ctx context.Context, b *Batch) error {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		})
		waitFor(t, time.Minute, "the first batch", func() bool { return len(c.Status().Shards) == 1 && c.Status().Shards[0].MillisBehindLatest > 0 })
		wantCheck(t, c, "iterator_age", health.Degraded)
		time.Sleep(35 * time.Second) // the handler holds the reader: no read
		wantCheck(t, c, "reads", health.Degraded)
		time.Sleep(90 * time.Second)
		wantCheck(t, c, "reads", health.Failing)
		close(release)
		f.mu.Lock()
		f.getRecordsFault = nil
		f.mu.Unlock()
		waitFor(t, time.Minute, "reading again", func() bool {
			got, _ := c.Health().Check("reads")
			return got.Status == health.OK
		})
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestHealthLeases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lease = 3 * time.Second
		f := newFakeKinesis(testStream, 2)
		newProducer(f).plain(20, 4)
		mem := checkpoint.NewMemory()
		stuck := func(ctx context.Context, b *Batch) error { <-ctx.Done(); return ctx.Err() }
		stopA := run(t, newTestConsumer(t, f, mem, WithWorkerID("a"), WithLeaseDuration(lease)), stuck)
		waitFor(t, time.Minute, "a holds both", func() bool { return held(t, mem, "shardline", testStream)["a"] == 2 })
		b := newTestConsumer(t, f, mem, WithWorkerID("b"), WithLeaseDuration(lease))
		stopB := run(t, b, func(context.Context, *Batch) error { return nil })
		waitFor(t, time.Minute, "b's first balancing run", func() bool { return !b.Status().LastBalance.IsZero() })
		if got := wantCheck(t, b, "leases", health.Degraded); got.Figures["share"] != 1 || got.Figures["held"] != 0 {
			t.Errorf("leases figures %v, want 0 held of a share of 1", got.Figures)
		}
		waitFor(t, time.Minute, "the forced handoff", func() bool {
			got, _ := b.Health().Check("leases")
			return got.Status == health.OK
		})
		if err := stopB(); err != nil {
			t.Fatal(err)
		}
		_ = stopA()
	})
}
