package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
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
		stopProducing := trickle(p, 30, 60) // records keep flowing while the fleet changes
		fl := newFleet(t, f, WithLeaseDuration(lease), WithMaxRecords(50))

		fl.start("w1")
		waitFor(t, time.Minute, "w1 holds all 6", func() bool { return fl.held()["w1"] == 6 })
		fl.start("w2")
		fl.start("w3")
		took := waitFor(t, time.Minute, "2/2/2", func() bool { return balancedAs(fl.held(), 2, 2, 2) })
		t.Logf("balanced 2/2/2 %v after two workers joined", took)
		if took > 2*lease {
			t.Errorf("joining workers balanced after %v, want within 2 lease durations (%v)", took, 2*lease)
		}

		fl.crash("w3")
		took = waitFor(t, time.Minute, "3/3 after a crash", func() bool {
			c := fl.held()
			return c["w1"] == 3 && c["w2"] == 3
		})
		t.Logf("crashed worker's shards moved %v after the crash", took)
		if took > 2*lease {
			t.Errorf("crash takeover took %v, want within 2 lease durations (%v)", took, 2*lease)
		}

		fl.start("w4")
		took = waitFor(t, time.Minute, "2/2/2 after a late join", func() bool {
			c := fl.held()
			return c["w1"] == 2 && c["w2"] == 2 && c["w4"] == 2
		})
		t.Logf("late joiner got its share %v after joining", took)
		if took > 2*lease {
			t.Errorf("late joiner balanced after %v, want within 2 lease durations (%v)", took, 2*lease)
		}

		total := stopProducing()
		waitFor(t, time.Minute, "every record", func() bool { return fl.s.unique() == total })
		fl.stopAll()
		dups := fl.s.check(t, p.counter)
		t.Logf("%d records, %d re-delivered", total, dups)
		// w3 crashed holding 2 shards, each with at most one batch of 50 handled and not
		// checkpointed; graceful handoffs re-deliver nothing.
		if dups > 2*50 {
			t.Errorf("%d duplicates, want at most one batch per shard the crashed worker held (100)", dups)
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

// Guards against children left unread for a whole shard sync when the engine names no
// ChildShards at a shard's end (kinesalite): the worker that finished the parent lists the
// shards at its next balancing run and starts the children.
func TestReshardWithoutChildShards(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 1)
		f.noChildShards = true
		p := newProducer(f)
		mem := checkpoint.NewMemory()
		s := newSink()
		stop := run(t, newTestConsumer(t, f, mem, WithShardSyncInterval(time.Hour)), s.handler("w"))
		time.Sleep(time.Second)
		p.plain(100, 10)
		a, b := f.split(f.open()[0])
		p.plain(100, 10)
		start := time.Now()
		waitFor(t, time.Minute, "every record", func() bool { return s.unique() == 200 })
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("the children %s and %s were read %v after the split, want within a few balancing runs (1.5 s each)", a, b, took)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if dups := s.check(t, p.counter); dups != 0 {
			t.Errorf("%d duplicates", dups)
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

// Guards against issue 8, item 2: two live processes with one worker ID took "their" leases
// from each other forever. The one that started later now stops with ErrDuplicateWorker
// within a lease duration, and the other ends up holding every shard.
func TestDuplicateWorkerIDDetected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lease = 3 * time.Second
		f := newFakeKinesis(testStream, 4)
		p := newProducer(f)
		p.plain(200, 20)
		mem := checkpoint.NewMemory()
		s := newSink()
		stopA := run(t, newTestConsumer(t, f, mem, WithWorkerID("same"), WithLeaseDuration(lease)), s.handler("a"))
		waitFor(t, time.Minute, "a holds all", func() bool { return held(t, mem, "shardline", testStream)["same"] == 4 })
		time.Sleep(time.Second)
		b := newTestConsumer(t, f, mem, WithWorkerID("same"), WithLeaseDuration(lease))
		start := time.Now()
		err := b.Run(context.Background(), s.handler("b"))
		took := time.Since(start)
		var de *DuplicateWorkerError
		if !errors.Is(err, ErrDuplicateWorker) || !errors.As(err, &de) || de.WorkerID != "same" {
			t.Fatalf("second process's Run = %v, want a *DuplicateWorkerError", err)
		}
		if took > lease {
			t.Errorf("duplicate detected after %v, want within a lease duration (%v)", took, lease)
		}
		waitFor(t, 2*lease, "a holds all again", func() bool { return held(t, mem, "shardline", testStream)["same"] == 4 })
		p.plain(100, 20)
		waitFor(t, time.Minute, "every record", func() bool { return s.unique() == 300 })
		if err := stopA(); err != nil {
			t.Fatalf("first process's Run = %v", err)
		}
		s.check(t, p.counter)
	})
}

// Guards against the duplicate check slowing down the common case it must not touch: a worker
// restarted with its ID after a crash takes its old leases in its first balancing run, and
// sees no duplicate.
func TestRestartedWorkerTakesOwnLeasesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lease = 10 * time.Second
		f := newFakeKinesis(testStream, 2)
		mem := checkpoint.NewMemory()
		crashed := &cuttableStore{Store: mem}
		stopOld := run(t, newTestConsumer(t, f, crashed, WithWorkerID("w"), WithLeaseDuration(lease)),
			func(context.Context, *Batch) error { return nil })
		waitFor(t, time.Minute, "w holds both", func() bool { return held(t, mem, "shardline", testStream)["w"] == 2 })
		crashed.setCut(true) // the old process is gone: it writes nothing more
		start := time.Now()
		restarted := newTestConsumer(t, f, mem, WithWorkerID("w"), WithLeaseDuration(lease))
		stop := run(t, restarted, func(context.Context, *Batch) error { return nil })
		took := waitFor(t, time.Minute, "the restarted worker reads both", func() bool { return len(restarted.Status().Shards) == 2 })
		if took > time.Second {
			t.Errorf("restarted worker took its own leases after %v, want at once (lease %v)", took, lease)
		}
		time.Sleep(2 * lease)
		if err := stop(); err != nil {
			t.Fatalf("restarted worker's Run = %v after %v", err, time.Since(start))
		}
		_ = stopOld()
	})
}

// Guards against issue 14's data loss and duplicates (failures 1-3) with three workers whose
// topologies go stale (no periodic listing): a split, a crash of the worker holding one child,
// a replacement, a merge of that child with the other original shard. Every record is
// delivered, no key's records are first delivered out of order, and duplicates come only from
// the crashed worker's unacknowledged batches.
func TestReshardWithStaleTopologiesAndCrash(t *testing.T) {
	for _, crashAt := range []time.Duration{4 * time.Second, 7 * time.Second} {
		t.Run(fmt.Sprint("crash at ", crashAt), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { reshardAndCrash(t, crashAt) })
		})
	}
}

func reshardAndCrash(t *testing.T, crashAt time.Duration) {
	const batch = 50
	f := newFakeKinesis(testStream, 2)
	p := newProducer(f)
	stopProducing := trickle(p, 40, 200) // 400 records/s
	fl := newFleet(t, f, WithLeaseDuration(4*time.Second), WithMaxRecords(batch), WithShardSyncInterval(time.Hour))
	for _, id := range []string{"w1", "w2", "w3"} {
		fl.start(id)
	}
	time.Sleep(3 * time.Second)
	orig := f.open()
	_, child3 := f.split(orig[0])
	time.Sleep(crashAt - 3*time.Second)
	var victim string
	waitFor(t, time.Minute, "the split's second child held", func() bool {
		l, err := fl.mem.GetLease(context.Background(), shardKey(child3))
		victim = l.Owner
		return err == nil && l.Owner != ""
	})
	fl.crash(victim)
	fl.start("w4")
	time.Sleep(3 * time.Second)
	merged := f.merge(child3, orig[1])
	time.Sleep(5 * time.Second)
	total := stopProducing()
	waitFor(t, 2*time.Minute, "every record", func() bool { return fl.s.unique() == total })
	fl.stopAll()
	dups := fl.s.check(t, p.counter)
	// The crashed worker held at most the three shards open at the crash; each had at most
	// one batch handled and not checkpointed.
	if dups > 3*batch {
		t.Errorf("%d duplicates, want at most %d (one batch per shard the crashed worker held)", dups, 3*batch)
	}
	for _, id := range []string{orig[0], orig[1], child3} {
		if !storedCheckpoint(t, fl.mem, id).ShardEnd {
			t.Errorf("closed shard %s not finished", id)
		}
	}
	if storedCheckpoint(t, fl.mem, merged).ShardEnd {
		t.Errorf("open shard %s marked finished", merged)
	}
	t.Logf("crash of %s at %v: %d records, %d duplicates", victim, crashAt, total, dups)
}

// balanceTime starts workers on a stream of n shards and returns how long the fleet takes to
// reach fair shares (every worker within one lease of the others, every shard held) after
// each change: 1 -> 3 workers, 3 -> 4, a graceful leave 4 -> 3, and a crash 4 -> 3.
func balanceTime(t *testing.T, n int) (join3, join4, leave, crash time.Duration) {
	const lease = 4 * time.Second
	fl := newFleet(t, newFakeKinesis(testStream, n), WithLeaseDuration(lease))
	fair := func(workers ...string) func() bool {
		return func() bool {
			h := fl.held()
			lo, hi, sum := n, 0, 0
			for _, w := range workers {
				lo, hi, sum = min(lo, h[w]), max(hi, h[w]), sum+h[w]
			}
			return sum == n && hi-lo <= 1
		}
	}
	fl.start("w1")
	waitFor(t, time.Minute, "w1 holds all", fair("w1"))
	fl.start("w2")
	fl.start("w3")
	join3 = waitFor(t, time.Minute, "1 -> 3", fair("w1", "w2", "w3"))
	fl.start("w4")
	join4 = waitFor(t, time.Minute, "3 -> 4", fair("w1", "w2", "w3", "w4"))
	if err := fl.stop("w4"); err != nil {
		t.Fatal(err)
	}
	leave = waitFor(t, time.Minute, "4 -> 3 (leave)", fair("w1", "w2", "w3"))
	fl.start("w5")
	waitFor(t, time.Minute, "3 -> 4 again", fair("w1", "w2", "w3", "w5"))
	fl.crash("w5")
	crash = waitFor(t, time.Minute, "4 -> 3 (crash)", fair("w1", "w2", "w3"))
	fl.stopAll()
	for _, d := range []time.Duration{join3, join4, leave, crash} {
		if d > 2*lease {
			t.Errorf("%d shards: fair shares after %v, want within 2 lease durations (%v)", n, d, 2*lease)
		}
	}
	return join3, join4, leave, crash
}

// Guards against issue 14, failure 4: balancing one lease at a time took several lease
// durations, growing with the shard count. Prints the table README quotes:
//
//	go test -run TestBalancingTimes -v ./consumer
func TestBalancingTimes(t *testing.T) {
	t.Log("shards   1->3 join   3->4 join   4->3 leave   4->3 crash   (lease 4s, fake Kinesis, memory store, synctest clock)")
	for _, n := range []int{4, 16, 32, 64} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				j3, j4, l, c := balanceTime(t, n)
				t.Logf("%6d   %9v   %9v   %10v   %10v", n, j3, j4, l, c)
			})
		})
	}
}

// Guards against a child shard being read only by the worker that finished its parent (or
// not at all when that worker is at its WithMaxLeases cap): with one lease each, the parent's
// worker takes one child and the other worker the other, parents before children, per-key
// order kept, and no worker ever holds more than its cap.
func TestChildTakenByAnotherWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 1)
		p := newProducer(f)
		p.plain(300, 30)
		fl := newFleet(t, f, WithMaxLeases(1), WithMaxRecords(40))
		a := fl.start("a")
		waitFor(t, time.Minute, "a reads the shard", func() bool { return fl.held()["a"] == 1 })
		b := fl.start("b")
		parent := f.open()[0]
		c1, c2 := f.split(parent)
		p.plain(300, 30)
		capped := true
		waitFor(t, time.Minute, "every record", func() bool {
			capped = capped && len(a.Status().Shards) <= 1 && len(b.Status().Shards) <= 1
			return fl.s.unique() == 600
		})
		fl.stopAll()
		if dups := fl.s.check(t, p.counter); dups != 0 {
			t.Errorf("%d duplicates", dups)
		}
		if !capped {
			t.Error("a worker held more leases than WithMaxLeases(1)")
		}
		readers := func(id string) string { return fmt.Sprint(sortedKeys(fl.s.readers[id])) }
		if readers(parent) != "[a]" || readers(c1) == readers(c2) {
			t.Errorf("parent read by %s, children by %s and %s: want the children read by different workers",
				readers(parent), readers(c1), readers(c2))
		}
	})
}

// Guards against a group that starts on a stream resharded long before: every closed shard is
// read before its children, from TRIM_HORIZON, and under Latest the closed lineage is skipped.
func TestStartOnReshardedStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 2)
		p := newProducer(f)
		p.plain(200, 20)
		orig := f.open()
		a, b := f.split(orig[0])
		p.plain(200, 20)
		m := f.merge(b, orig[1])
		p.plain(200, 20)
		fl := newFleet(t, f, WithMaxRecords(30))
		fl.start("w1")
		fl.start("w2")
		waitFor(t, time.Minute, "every record", func() bool { return fl.s.unique() == 600 })
		fl.stopAll()
		if dups := fl.s.check(t, p.counter); dups != 0 {
			t.Errorf("%d duplicates", dups)
		}
		for _, id := range []string{orig[0], orig[1], b} {
			if !storedCheckpoint(t, fl.mem, id).ShardEnd {
				t.Errorf("closed shard %s not finished", id)
			}
		}

		// A new group under Latest reads only what arrives from now on, on the open shards.
		latest := newSink()
		stop := run(t, newTestConsumer(t, f, checkpoint.NewMemory(), WithGroup("late"), WithStartPosition(Latest)), latest.handler("l"))
		time.Sleep(2 * time.Second)
		before := len(p.counter)
		p.plain(50, 20)
		waitFor(t, time.Minute, "new records", func() bool { return latest.unique() == 50 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if len(p.counter) != before || latest.total != 50 {
			t.Errorf("Latest delivered %d records, want the 50 put after it started", latest.total)
		}
		for shard := range latest.readers {
			if shard != a && shard != m {
				t.Errorf("Latest read closed shard %s", shard)
			}
		}
	})
}

// Guards against a lineage stuck on a parent that left retention: its child is read (its
// parent's records are gone), and the finished parent's row is deleted once a listing lacks
// the shard, never before.
func TestParentPastRetention(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 1)
		p := newProducer(f)
		p.plain(100, 10)
		parent := f.open()[0]
		f.split(parent)
		mem := checkpoint.NewMemory()
		s := newSink()
		stop := run(t, newTestConsumer(t, f, mem, WithShardSyncInterval(5*time.Second)), s.handler("w"))
		waitFor(t, time.Minute, "the parent", func() bool {
			l, err := mem.GetLease(context.Background(), shardKey(parent))
			return err == nil && l.Checkpoint.ShardEnd
		})
		time.Sleep(20 * time.Second)
		if _, err := mem.GetLease(context.Background(), shardKey(parent)); err != nil {
			t.Fatalf("the finished parent's row was deleted while the shard is listed: %v", err)
		}
		f.expire(parent)
		waitFor(t, time.Minute, "the parent's row deleted after it left retention", func() bool {
			_, err := mem.GetLease(context.Background(), shardKey(parent))
			return errors.Is(err, checkpoint.ErrNotFound)
		})
		p.plain(100, 10)
		waitFor(t, time.Minute, "every record", func() bool { return s.unique() == 200 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		s.check(t, p.counter)

		// A new group meets the children with their parent gone: it reads them at once.
		late := newSink()
		stop = run(t, newTestConsumer(t, f, checkpoint.NewMemory(), WithGroup("new")), late.handler("n"))
		waitFor(t, time.Minute, "the children's records", func() bool { return late.unique() == 100 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// Guards issue 15, item 8: the logs of a handoff and a shutdown say what happened. The
// claimant's "lease taken" names the worker that handed the lease over, and every "lease
// released" names the position the store holds afterwards, not "" when nothing was new.
func TestLogsSayWhatHappened(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 2)
		p := newProducer(f)
		p.plain(200, 10)
		mem := checkpoint.NewMemory()
		var logA, logB safeBuffer
		logger := func(b *safeBuffer) *slog.Logger { return slog.New(slog.NewJSONHandler(b, nil)) }
		s := newSink()
		stopA := run(t, newTestConsumer(t, f, mem, WithWorkerID("a"), WithLogger(logger(&logA))), s.handler("a"))
		waitFor(t, time.Minute, "a holds both, every record", func() bool {
			return held(t, mem, "shardline", testStream)["a"] == 2 && s.unique() == 200
		})
		time.Sleep(2 * time.Second) // a's checkpoints are stored: its releases have nothing new
		stopB := run(t, newTestConsumer(t, f, mem, WithWorkerID("b"), WithLogger(logger(&logB))), s.handler("b"))
		waitFor(t, time.Minute, "1/1", func() bool { return balancedAs(held(t, mem, "shardline", testStream), 1, 1) })
		if err := stopA(); err != nil {
			t.Fatal(err)
		}
		if err := stopB(); err != nil {
			t.Fatal(err)
		}
		lines := func(b *safeBuffer, msg string) (out []map[string]any) {
			for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("not JSON: %q", line)
				}
				if rec["msg"] == msg {
					out = append(out, rec)
				}
			}
			return out
		}
		handedOver := 0
		for _, rec := range lines(&logB, "consumer: lease taken") {
			if rec["how"] == "handed over" {
				handedOver++
				if rec["previous_owner"] != "a" {
					t.Errorf("b took a handed-over lease naming previous_owner %q, want \"a\"", rec["previous_owner"])
				}
			}
		}
		if handedOver != 1 {
			t.Errorf("b logged %d handed-over takes, want 1", handedOver)
		}
		released := lines(&logA, "consumer: lease released")
		if len(released) != 2 {
			t.Fatalf("a logged %d releases, want 2 (the handoff and the shutdown)", len(released))
		}
		stored := map[string]string{}
		for _, id := range f.open() {
			l, err := mem.GetLease(context.Background(), checkpoint.ShardKey{Group: "shardline", Stream: testStream, Shard: id})
			if err != nil {
				t.Fatal(err)
			}
			stored[id] = l.Checkpoint.String()
		}
		for _, rec := range released {
			shard, _ := rec["shard"].(string)
			if rec["checkpoint"] == "" || rec["checkpoint"] != stored[shard] {
				t.Errorf("a released %s logging checkpoint %q; the store holds %q", shard, rec["checkpoint"], stored[shard])
			}
		}
	})
}
