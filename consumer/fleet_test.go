package consumer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/metrics"
)

func balancedAs(counts map[string]int, want ...int) bool {
	if len(counts) != len(want) {
		return false
	}
	for _, w := range want {
		found := false
		for id, n := range counts {
			if n == w {
				delete(counts, id)
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Guards against the balancing bugs peers have (every worker reading every shard, a joiner
// that never gets work, a dead worker's shards stuck): three workers on six shards settle at
// 2/2/2; a crashed worker's shards move within two lease durations; a late joiner gets its
// share by stealing; records keep flowing throughout and none is lost.
func TestFleetBalancesAndRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lease = 3 * time.Second
		f := newFakeKinesis(testStream, 6)
		p := newProducer(f)
		mem := checkpoint.NewMemory()
		s := newSink()
		var pmu sync.Mutex
		produce := func(n int) {
			pmu.Lock()
			p.plain(n, 60)
			pmu.Unlock()
		}
		// A steady trickle of records while the fleet changes.
		ctx, stopProducing := context.WithCancel(context.Background())
		var prodWG sync.WaitGroup
		prodWG.Go(func() {
			for ctx.Err() == nil {
				produce(30)
				time.Sleep(100 * time.Millisecond)
			}
		})

		stores := map[string]*cuttableStore{}
		stops := map[string]func() error{}
		frozen := make(chan struct{})
		var frozenIDs sync.Map
		start := func(id string) {
			stores[id] = &cuttableStore{Store: mem}
			c := newTestConsumer(t, f, stores[id], WithWorkerID(id), WithLeaseDuration(lease), WithMaxRecords(50))
			stops[id] = run(t, c, func(ctx context.Context, b *Batch) error {
				if _, ok := frozenIDs.Load(id); ok {
					<-frozen
					return errors.New("frozen")
				}
				s.accept(id, b)
				return nil
			})
		}
		counts := func() map[string]int { return held(t, mem, "shardline", testStream) }

		start("w1")
		waitFor(t, time.Minute, "w1 holds all 6", func() bool { return counts()["w1"] == 6 })
		start("w2")
		start("w3")
		took := waitFor(t, time.Minute, "2/2/2", func() bool { return balancedAs(counts(), 2, 2, 2) })
		t.Logf("balanced 2/2/2 %v after two workers joined", took)
		if took > 2*lease {
			t.Errorf("joining workers balanced after %v, want within 2 lease durations (%v)", took, 2*lease)
		}

		// w3 crashes: it stops renewing and processing, and writes nothing more.
		frozenIDs.Store("w3", true)
		stores["w3"].setCut(true)
		took = waitFor(t, time.Minute, "3/3 after a crash", func() bool {
			c := counts()
			return c["w1"] == 3 && c["w2"] == 3
		})
		t.Logf("crashed worker's shards moved %v after the crash", took)
		if took > 2*lease {
			t.Errorf("crash takeover took %v, want within 2 lease durations (%v)", took, 2*lease)
		}

		start("w4")
		took = waitFor(t, time.Minute, "2/2/2 after a late join", func() bool {
			c := counts()
			return c["w1"] == 2 && c["w2"] == 2 && c["w4"] == 2
		})
		t.Logf("late joiner got its share %v after joining", took)
		if took > 2*lease {
			t.Errorf("late joiner balanced after %v, want within 2 lease durations (%v)", took, 2*lease)
		}

		stopProducing()
		prodWG.Wait()
		pmu.Lock()
		total := 0
		for _, n := range p.counter {
			total += n
		}
		pmu.Unlock()
		waitFor(t, time.Minute, "every record", func() bool { return s.unique() == total })
		for _, id := range []string{"w1", "w2", "w4"} {
			if err := stops[id](); err != nil {
				t.Errorf("%s: Run = %v", id, err)
			}
		}
		close(frozen)
		_ = stops["w3"]()
		dups := s.check(t, p.counter)
		t.Logf("%d records, %d re-delivered", total, dups)
		if dups > 6*50 {
			t.Errorf("%d duplicates, want at most one batch per shard moved", dups)
		}
	})
}

// Guards against children read before their parents (per-key order broken across a reshard)
// and against records lost at a split or merge: parents are drained and marked finished
// before any child is read, and ChildShards lets children start without a new listing.
func TestReshardParentsBeforeChildren(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 2)
		p := newProducer(f)
		mem := checkpoint.NewMemory()
		m := metrics.NewMemory()
		s := newSink()
		// A long shard sync interval: children must be found through ChildShards.
		stop := run(t, newTestConsumer(t, f, mem, WithMetrics(m), WithShardSyncInterval(time.Hour), WithMaxRecords(40)), s.handler("w"))
		time.Sleep(time.Second) // the consumer lists the two original shards
		p.plain(300, 30)
		p.aggregated(300, 30, 9)
		// Split while the parents still hold unread records.
		open := f.open()
		a, b := f.split(open[0])
		p.plain(300, 30)
		c := f.merge(a, b)
		p.aggregated(300, 30, 9)
		d1, d2 := f.split(open[1])
		p.plain(300, 30)
		waitFor(t, time.Minute, "every record", func() bool { return s.unique() == 1500 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if dups := s.check(t, p.counter); dups != 0 {
			t.Errorf("%d duplicates", dups)
		}
		rows, _ := mem.ListLeases(context.Background(), "shardline", testStream)
		ended := map[string]bool{}
		for _, l := range rows {
			ended[l.Shard] = l.Checkpoint.ShardEnd
		}
		for _, id := range []string{open[0], open[1], a, b} {
			if !ended[id] {
				t.Errorf("closed shard %s not marked SHARD_END", id)
			}
		}
		for _, id := range []string{c, d1, d2} {
			if ended[id] {
				t.Errorf("open shard %s marked SHARD_END", id)
			}
		}
		if got := m.Counter(metrics.StreamReshardingEvents, metrics.Labels{Stream: testStream}); got != 3 {
			t.Errorf("stream_resharding_events_total = %v, want 3 (split, merge, split)", got)
		}
	})
}

// Guards against the unconditional-write bug: a worker whose lease is stolen while a batch is
// in its handler must not write its checkpoint over the new owner's, and must stop.
func TestStolenMidBatchCannotCheckpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 1)
		p := newProducer(f)
		p.plain(100, 5)
		mem := checkpoint.NewMemory()
		m := metrics.NewMemory()
		inHandler := make(chan struct{})
		release := make(chan struct{})
		var once sync.Once
		h := func(ctx context.Context, b *Batch) error {
			once.Do(func() { close(inHandler) })
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		}
		// Renewals far apart, so the stolen lease is noticed at the checkpoint, not before.
		c := newTestConsumer(t, f, mem, WithMetrics(m), WithWorkerID("victim"),
			WithLeaseDuration(time.Minute), WithRenewInterval(50*time.Second))
		stop := run(t, c, h)
		<-inHandler
		key := checkpoint.ShardKey{Group: "shardline", Stream: testStream, Shard: f.open()[0]}
		cur, err := mem.GetLease(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		thief, err := mem.TakeLease(context.Background(), key, "thief", cur.Counter)
		if err != nil {
			t.Fatal(err)
		}
		close(release)
		labels := metrics.Labels{Stream: testStream, Shard: key.Shard}
		waitFor(t, time.Minute, "the failed checkpoint", func() bool {
			return m.Counter(metrics.ConsumerCheckpointFailure, labels) >= 1
		})
		got, _ := mem.GetLease(context.Background(), key)
		if got.Owner != "thief" || got.Token != thief.Token || !got.Checkpoint.IsZero() {
			t.Errorf("row after the stolen worker's checkpoint = %+v, want the thief's untouched row", got)
		}
		if n := m.Counter(metrics.ConsumerLeaseLost, labels); n != 1 {
			t.Errorf("consumer_lease_lost_total = %v, want 1", n)
		}
		waitFor(t, time.Minute, "the reader to stop", func() bool { return len(c.Status().Shards) == 0 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// Guards against the fleet fighting over leases: many workers starting at once end with every
// shard held exactly once.
func TestManyWorkersStartTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 8)
		mem := checkpoint.NewMemory()
		var stops []func() error
		for i := range 4 {
			c := newTestConsumer(t, f, mem, WithWorkerID("w"+strconv.Itoa(i)))
			stops = append(stops, run(t, c, func(context.Context, *Batch) error { return nil }))
		}
		waitFor(t, time.Minute, "2/2/2/2", func() bool { return balancedAs(held(t, mem, "shardline", testStream), 2, 2, 2, 2) })
		for i, stop := range stops {
			if err := stop(); err != nil {
				t.Errorf("w%d: %v", i, err)
			}
		}
		if h := held(t, mem, "shardline", testStream); len(h) != 0 {
			t.Errorf("leases still held after every worker stopped: %v", h)
		}
		workers, _ := mem.ListWorkers(context.Background(), "shardline", testStream)
		if len(workers) != 0 {
			t.Errorf("%d worker rows left after graceful shutdowns: %v", len(workers), fmt.Sprint(workers))
		}
	})
}

// Guards against a balancing deadlock: an owner whose handler never returns cannot finish a
// graceful handoff, so the claimant must take the lease by force after a lease duration (and
// count it as stolen), and the stuck handler's context must be cancelled.
func TestHandoffIgnoredIsForced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lease = 3 * time.Second
		f := newFakeKinesis(testStream, 2)
		newProducer(f).plain(20, 4)
		mem := checkpoint.NewMemory()
		m := metrics.NewMemory()
		var cancelled atomic.Int64
		stuck := func(ctx context.Context, b *Batch) error {
			<-ctx.Done() // never finishes a batch on its own
			cancelled.Add(1)
			return ctx.Err()
		}
		stopA := run(t, newTestConsumer(t, f, mem, WithWorkerID("a"), WithLeaseDuration(lease), WithMetrics(m)), stuck)
		waitFor(t, time.Minute, "a holds both", func() bool { return held(t, mem, "shardline", testStream)["a"] == 2 })
		stopB := run(t, newTestConsumer(t, f, mem, WithWorkerID("b"), WithLeaseDuration(lease), WithMetrics(m)),
			func(context.Context, *Batch) error { return nil })
		took := waitFor(t, time.Minute, "1/1", func() bool { return balancedAs(held(t, mem, "shardline", testStream), 1, 1) })
		if took < lease || took > 3*lease {
			t.Errorf("forced takeover after %v, want after one lease duration and within three", took)
		}
		waitFor(t, time.Minute, "the stuck handler cancelled", func() bool { return cancelled.Load() == 1 })
		var stolen, lost float64
		for _, id := range f.open() {
			stolen += m.Counter(metrics.ConsumerLeaseStolen, metrics.Labels{Stream: testStream, Shard: id})
			lost += m.Counter(metrics.ConsumerLeaseLost, metrics.Labels{Stream: testStream, Shard: id})
		}
		if stolen != 1 || lost != 1 {
			t.Errorf("stolen %v and lost %v, want 1 and 1", stolen, lost)
		}
		if err := stopB(); err != nil {
			t.Fatal(err)
		}
		_ = stopA()
	})
}

// Guards against a graceful handoff going unrecorded or turning into a loss: when a joiner
// asks for a lease, the owner finishes its batch, checkpoints and releases it (released, not
// lost), and the joiner's take counts as a steal.
func TestGracefulHandoffCountsAsSteal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 2)
		p := newProducer(f)
		p.plain(200, 10)
		mem := checkpoint.NewMemory()
		ma, mb := metrics.NewMemory(), metrics.NewMemory()
		s := newSink()
		stopA := run(t, newTestConsumer(t, f, mem, WithWorkerID("a"), WithMetrics(ma)), s.handler("a"))
		waitFor(t, time.Minute, "a holds both", func() bool { return held(t, mem, "shardline", testStream)["a"] == 2 })
		stopB := run(t, newTestConsumer(t, f, mem, WithWorkerID("b"), WithMetrics(mb)), s.handler("b"))
		waitFor(t, time.Minute, "1/1", func() bool { return balancedAs(held(t, mem, "shardline", testStream), 1, 1) })
		sum := func(m *metrics.Memory, name metrics.Name) (n float64) {
			for _, id := range f.open() {
				n += m.Counter(name, metrics.Labels{Stream: testStream, Shard: id})
			}
			return n
		}
		if got := sum(mb, metrics.ConsumerLeaseStolen); got != 1 {
			t.Errorf("claimant's consumer_lease_stolen_total = %v, want 1", got)
		}
		if got := sum(ma, metrics.ConsumerLeaseReleased); got != 1 {
			t.Errorf("owner's consumer_lease_released_total = %v, want 1", got)
		}
		if got := sum(ma, metrics.ConsumerLeaseLost); got != 0 {
			t.Errorf("owner's consumer_lease_lost_total = %v, want 0 for a graceful handoff", got)
		}
		p.plain(100, 10)
		waitFor(t, time.Minute, "every record", func() bool { return s.unique() == 300 })
		if err := stopB(); err != nil {
			t.Fatal(err)
		}
		if err := stopA(); err != nil {
			t.Fatal(err)
		}
		if dups := s.check(t, p.counter); dups != 0 {
			t.Errorf("%d duplicates across a graceful handoff", dups)
		}
	})
}
