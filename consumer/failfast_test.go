package consumer

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/metrics"
)

// Guards against issue 8, item 7: a consumer whose store could not be used retried silently
// and Run returned nil when its context ended. Misconfiguration now fails Run within seconds
// with a *FatalError that reaches the store's own error; an outage that begins later is
// retried, counted and shown in Status, and fails Run only past WithMaxStoreOutage.
func TestStoreMisconfigurationFailsFast(t *testing.T) {
	errNoTable := errors.New("table not found") // as the DynamoDB store answers: no sentinel
	for _, tc := range []struct {
		name  string
		store func(*cuttableStore)
		want  error
	}{
		{"configuration error", func(s *cuttableStore) { s.refuse = fmt.Errorf("store: %w", errNoTable) }, errNoTable},
		{"unreachable at start", func(s *cuttableStore) { s.cut = true }, checkpoint.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeKinesis(testStream, 1)
				store := &cuttableStore{Store: checkpoint.NewMemory()}
				tc.store(store)
				c := newTestConsumer(t, f, store)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				start := time.Now()
				err := c.Run(ctx, func(context.Context, *Batch) error { return nil })
				took := time.Since(start)
				var fe *FatalError
				if !errors.As(err, &fe) || !errors.Is(err, tc.want) {
					t.Fatalf("Run = %v, want a *FatalError wrapping %v", err, tc.want)
				}
				if took > 5*time.Second {
					t.Errorf("Run failed after %v, want within seconds", took)
				}
			})
		})
	}
}

func TestStoreOutageMidRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 1)
		p := newProducer(f)
		store := &cuttableStore{Store: checkpoint.NewMemory()}
		m := metrics.NewMemory()
		s := newSink()
		c := newTestConsumer(t, f, store, WithMetrics(m), WithMaxStoreOutage(20*time.Second))
		errc := make(chan error, 1)
		go func() { errc <- c.Run(context.Background(), s.handler("w")) }()
		p.plain(10, 2)
		waitFor(t, time.Minute, "records", func() bool { return s.unique() == 10 })
		store.setCut(true)
		cut := time.Now()
		time.Sleep(10 * time.Second)
		select {
		case err := <-errc:
			t.Fatalf("Run returned %v 10s into an outage bounded at 20s", err)
		default:
		}
		st := c.Status()
		if st.StoreUnavailableSince.IsZero() || !errors.Is(st.StoreError, checkpoint.ErrUnavailable) {
			t.Errorf("Status during the outage: since %v, error %v; want the outage shown", st.StoreUnavailableSince, st.StoreError)
		}
		if n := m.Counter(metrics.ConsumerStoreErrors, metrics.Labels{Stream: testStream, Operation: "Heartbeat", ErrorType: "connection"}); n < 1 {
			t.Errorf("consumer_store_errors_total{operation=Heartbeat} = %v during the outage, want counted: %v", n, m.Snapshot().Counters)
		}
		err := <-errc
		took := time.Since(cut)
		var fe *FatalError
		if !errors.As(err, &fe) || !errors.Is(err, checkpoint.ErrUnavailable) {
			t.Fatalf("Run = %v, want a *FatalError matching ErrUnavailable", err)
		}
		if took < 20*time.Second || took > 25*time.Second {
			t.Errorf("Run stopped %v into the outage, want soon after the 20s bound", took)
		}
	})
}

// Guards against an outage that heals being mistaken for a dead consumer: the worker keeps its
// shard (or takes it back) and goes on delivering, and Status clears.
func TestStoreOutageRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 1)
		p := newProducer(f)
		store := &cuttableStore{Store: checkpoint.NewMemory()}
		s := newSink()
		c := newTestConsumer(t, f, store)
		stop := run(t, c, s.handler("w"))
		p.plain(10, 2)
		waitFor(t, time.Minute, "records", func() bool { return s.unique() == 10 })
		store.setCut(true)
		time.Sleep(10 * time.Second)
		store.setCut(false)
		p.plain(10, 2)
		waitFor(t, time.Minute, "records after the outage", func() bool { return s.unique() == 20 })
		waitFor(t, time.Minute, "status clears", func() bool { return c.Status().StoreError == nil })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}
