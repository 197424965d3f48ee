package consumer

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/metrics"
)

// Tests of the at-least-once guarantee at its edges (issue 8): manual mode at shard end,
// retained batch handles, interval checkpoints on a quiet stream, failed final checkpoints,
// handler failure policies.

func shardKey(shard string) checkpoint.ShardKey {
	return checkpoint.ShardKey{Group: "shardline", Stream: testStream, Shard: shard}
}

func storedCheckpoint(t *testing.T, store checkpoint.Store, shard string) checkpoint.Position {
	t.Helper()
	l, err := store.GetLease(context.Background(), shardKey(shard))
	if err != nil {
		t.Fatalf("GetLease(%s): %v", shard, err)
	}
	return l.Checkpoint
}

// Guards against issue 8, item 3: in manual mode a shutdown while the reader waits at shard end
// for the handler's acknowledgement wrote SHARD_END anyway, so records never acknowledged were
// never delivered again and the children started. Now the shard stays unfinished, what was
// acknowledged is kept, and the next owner delivers the rest.
func TestManualShardEndShutdownKeepsUnacknowledged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 1)
		p := newProducer(f)
		p.plain(30, 3)
		parent := f.open()[0]
		f.split(parent)
		mem := checkpoint.NewMemory()
		var mu sync.Mutex
		var batches []*Batch
		h := func(ctx context.Context, b *Batch) error {
			mu.Lock()
			defer mu.Unlock()
			if len(batches) == 0 {
				if err := b.Checkpoint(ctx); err != nil { // acknowledge only the first batch
					return err
				}
			}
			batches = append(batches, b)
			return nil
		}
		stop := run(t, newTestConsumer(t, f, mem, WithCheckpointMode(CheckpointManual), WithMaxRecords(10)), h)
		waitFor(t, time.Minute, "every batch", func() bool { mu.Lock(); defer mu.Unlock(); return len(batches) == 3 })
		time.Sleep(5 * time.Second) // the reader waits at shard end for the other two batches
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if got := storedCheckpoint(t, mem, parent); got.ShardEnd || got.SequenceNumber != "10" {
			t.Fatalf("parent checkpoint after shutdown = %v, want 10 (the first batch), not SHARD_END", got)
		}
		// The next owner delivers the 20 unacknowledged records and then finishes the shard.
		again := newSink()
		h2 := func(ctx context.Context, b *Batch) error {
			again.accept("w2", b)
			return b.Checkpoint(ctx)
		}
		stop = run(t, newTestConsumer(t, f, mem, WithCheckpointMode(CheckpointManual), WithMaxRecords(10)), h2)
		waitFor(t, time.Minute, "shard end", func() bool { return storedCheckpoint(t, mem, parent).ShardEnd })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if again.total != 20 {
			t.Errorf("next owner delivered %d records of the parent, want the 20 never acknowledged", again.total)
		}
	})
}

// Guards against issue 8, item 4: a Batch kept by the handler and checkpointed later (the
// natural asynchronous pattern in manual mode) checkpointed whatever batch the reader held by
// then, i.e. records not processed yet, and raced with the reader. Each batch now checkpoints
// exactly its own last record, from any goroutine; a record of another shard or batch is
// refused with ErrForeignRecord; a handle of a lost tenure with ErrNotHeld.
func TestRetainedBatchCheckpointsItsOwnRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 1)
		newProducer(f).plain(50, 5)
		shard := f.open()[0]
		mem := checkpoint.NewMemory()
		kept := make(chan *Batch, 10)
		h := func(_ context.Context, b *Batch) error {
			kept <- b // processed later, elsewhere
			return nil
		}
		c := newTestConsumer(t, f, mem, WithCheckpointMode(CheckpointManual), WithMaxRecords(10))
		stop := run(t, c, h)
		var first, third *Batch
		for i := 1; i <= 5; i++ {
			b := <-kept
			switch i {
			case 1:
				first = b
			case 3:
				third = b
			}
		}
		synctest.Wait()
		// Checkpoint the first batch from another goroutine after four more were delivered.
		done := make(chan error)
		go func() { done <- first.Checkpoint(context.Background()) }()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := storedCheckpoint(t, mem, shard); got.SequenceNumber != "10" {
			t.Fatalf("checkpoint of the first batch stored %v, want its last record 10", got)
		}
		if got := first.Records[len(first.Records)-1].SequenceNumber; got != "10" {
			t.Errorf("the kept batch's records changed: last is %s, want 10", got)
		}
		if err := first.CheckpointRecord(context.Background(), third.Records[0]); !errors.Is(err, ErrForeignRecord) {
			t.Errorf("CheckpointRecord with another batch's record = %v, want ErrForeignRecord", err)
		}
		foreign := third.Records[0]
		foreign.ShardID = "shardId-000000000099"
		if err := third.CheckpointRecord(context.Background(), foreign); !errors.Is(err, ErrForeignRecord) {
			t.Errorf("CheckpointRecord with another shard's record = %v, want ErrForeignRecord", err)
		}
		if err := third.CheckpointRecord(context.Background(), third.Records[4]); err != nil {
			t.Fatal(err)
		}
		if got := storedCheckpoint(t, mem, shard); got.SequenceNumber != "25" {
			t.Errorf("CheckpointRecord stored %v, want 25", got)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		// A kept handle outlives its tenure: it must refuse, not write.
		if err := third.Checkpoint(context.Background()); !errors.Is(err, ErrNotHeld) {
			t.Errorf("Checkpoint after the lease was released = %v, want ErrNotHeld", err)
		}
		if got := storedCheckpoint(t, mem, shard); got.SequenceNumber != "25" {
			t.Errorf("checkpoint after a stale handle's attempt = %v, want 25 untouched", got)
		}
	})
}

// Guards against issue 8, item 5: with WithCheckpointInterval the checkpoint was written only
// when a later batch arrived, so a quiet stream kept nothing and a crash re-delivered
// everything since.
func TestIntervalCheckpointOnQuietStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 1)
		p := newProducer(f)
		shard := f.open()[0]
		mem := checkpoint.NewMemory()
		s := newSink()
		stop := run(t, newTestConsumer(t, f, mem, WithCheckpointInterval(5*time.Second)), s.handler("w"))
		time.Sleep(2 * time.Second)
		p.plain(10, 2)
		waitFor(t, time.Minute, "first records", func() bool { return s.unique() == 10 })
		time.Sleep(time.Second)
		p.plain(10, 2) // then the stream is quiet
		waitFor(t, time.Minute, "second records", func() bool { return s.unique() == 20 })
		time.Sleep(7 * time.Second)
		if got := storedCheckpoint(t, mem, shard); got.SequenceNumber != "20" {
			t.Errorf("checkpoint 7s after the last batch with a 5s interval = %v, want 20", got)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// Guards against issue 8, item 6: a final checkpoint that could not be written at shutdown was
// logged at a level the default logger discards and Run returned nil.
func TestFinalCheckpointFailureFailsRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 2)
		newProducer(f).plain(40, 4)
		mem := checkpoint.NewMemory()
		store := &cuttableStore{Store: mem}
		m := metrics.NewMemory()
		s := newSink()
		c := newTestConsumer(t, f, store, WithMetrics(m), WithCheckpointInterval(time.Hour), WithShutdownTimeout(3*time.Second))
		stop := run(t, c, s.handler("w"))
		waitFor(t, time.Minute, "every record", func() bool { return s.unique() == 40 })
		synctest.Wait()
		store.setCut(true)
		err := stop()
		var fe *FinalCheckpointError
		if !errors.As(err, &fe) || len(fe.Shards) != 2 || !errors.Is(err, checkpoint.ErrUnavailable) {
			t.Fatalf("Run = %v, want a *FinalCheckpointError naming both shards, matching ErrUnavailable", err)
		}
		var failed float64
		for _, id := range f.open() {
			failed += m.Counter(metrics.ConsumerCheckpointFailure, metrics.Labels{Stream: testStream, Shard: id})
		}
		if failed < 2 {
			t.Errorf("consumer_checkpoint_failure_total = %v, want at least one per shard", failed)
		}
	})
}

// Guards against issue 8, item 8: one bad record stopped the whole worker (and every worker
// that took the shard next). The default policy now retries only that shard while the others
// go on; DeadLetterOnFailure hands the batch over and goes on; StopOnFailure keeps the old
// behaviour (TestHandlerFailureStopsWithoutCheckpointing).
func TestHandlerFailurePolicies(t *testing.T) {
	t.Run("retry the shard by default", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeKinesis(testStream, 2)
			p := newProducer(f)
			p.plain(40, 4)
			poisoned := f.open()[0]
			mem := checkpoint.NewMemory()
			s := newSink()
			var healed atomic.Bool
			var failures atomic.Int64
			h := func(_ context.Context, b *Batch) error {
				if b.ShardID == poisoned && !healed.Load() {
					failures.Add(1)
					return errors.New("poison")
				}
				s.accept("w", b)
				return nil
			}
			c := newTestConsumer(t, f, mem, WithHandlerRetries(1), WithBackoff(100*time.Millisecond, time.Second))
			stop := run(t, c, h)
			other := f.open()[1]
			want := len(f.byID[other].records)
			waitFor(t, time.Minute, "the healthy shard", func() bool { return s.unique() == want })
			time.Sleep(30 * time.Second) // far past the retries: Run must still be running
			if n := failures.Load(); n < 10 {
				t.Errorf("the poisoned shard was tried %d times in 30s, want it retried on and on", n)
			}
			if got := storedCheckpoint(t, mem, poisoned); !got.IsZero() {
				t.Errorf("poisoned shard checkpointed at %v past a batch the handler never accepted", got)
			}
			if st := c.Status(); len(st.Shards) != 2 || st.Shards[0].LastError == nil && st.Shards[1].LastError == nil {
				t.Errorf("Status = %+v, want both shards held and the poisoned one's error shown", st)
			}
			healed.Store(true)
			waitFor(t, time.Minute, "every record after healing", func() bool { return s.unique() == 40 })
			if err := stop(); err != nil {
				t.Fatalf("Run = %v, want nil", err)
			}
			s.check(t, p.counter)
		})
	})
	t.Run("dead letter and go on", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeKinesis(testStream, 1)
			newProducer(f).plain(30, 3)
			shard := f.open()[0]
			mem := checkpoint.NewMemory()
			m := metrics.NewMemory()
			var dead []Record
			var mu sync.Mutex
			s := newSink()
			h := func(_ context.Context, b *Batch) error {
				if b.Records[0].SequenceNumber == "11" {
					return errors.New("poison")
				}
				s.accept("w", b)
				return nil
			}
			dlq := func(_ context.Context, b *Batch, err error) error {
				mu.Lock()
				defer mu.Unlock()
				dead = append(dead, b.Records...)
				return nil
			}
			stop := run(t, newTestConsumer(t, f, mem, WithMetrics(m), WithMaxRecords(10), WithHandlerRetries(2), WithDeadLetter(dlq)), h)
			waitFor(t, time.Minute, "the rest", func() bool { return s.unique() == 20 })
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if len(dead) != 10 || dead[0].SequenceNumber != "11" {
				t.Errorf("dead-lettered %d records starting at %v, want the 10 of the batch at 11", len(dead), dead)
			}
			if got := storedCheckpoint(t, mem, shard); got.SequenceNumber != "30" {
				t.Errorf("checkpoint = %v, want 30: past the dead-lettered batch", got)
			}
			if got := m.Counter(metrics.ConsumerDeadLettered, metrics.Labels{Stream: testStream, Shard: shard}); got != 10 {
				t.Errorf("consumer_records_dead_lettered_total = %v, want 10", got)
			}
		})
	})
}

// Guards against the every-batch bound breaking under a store hiccup: a checkpoint that failed
// was only logged and reading went on, so a crash during a store outage re-delivered every
// batch handled since. Now the reader hands out nothing new until the batch's checkpoint is
// stored, and a crash re-delivers at most one batch per shard however long the store was out.
func TestEveryBatchWaitsForItsCheckpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 1)
		p := newProducer(f)
		shard := f.open()[0]
		store := &cuttableStore{Store: checkpoint.NewMemory()}
		s := newSink()
		stop := run(t, newTestConsumer(t, f, store, WithLeaseDuration(20*time.Second), WithMaxRecords(10)), s.handler("w"))
		p.plain(10, 2)
		waitFor(t, time.Minute, "the first batch", func() bool { return s.unique() == 10 })
		synctest.Wait()
		store.setCut(true)
		p.plain(30, 2)
		time.Sleep(5 * time.Second)
		if got := s.unique(); got > 20 {
			t.Errorf("%d records handed out while the store was unreachable, want at most the one batch whose checkpoint failed (20)", got)
		}
		store.setCut(false)
		waitFor(t, time.Minute, "the rest", func() bool { return s.unique() == 40 })
		waitFor(t, time.Minute, "the last checkpoint", func() bool { return storedCheckpoint(t, store, shard).SequenceNumber == "40" })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if dups := s.check(t, p.counter); dups != 0 {
			t.Errorf("%d duplicates", dups)
		}
	})
}
