package consumer

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/events"
	"github.com/shardline/kinesis/metrics"
)

// Guards against events and metrics telling different stories (issue 10): two workers go
// through a handoff, a split, a malformed aggregate, a poison batch sent to the dead-letter
// function, a store outage and a shutdown; each worker's event counts must equal its metric
// counts, type by type.
func TestEventsAgreeWithMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 2)
		p := newProducer(f)
		p.plain(200, 20)
		f.put("k0", "", malformedAggregate())
		f.put("k1", "", []byte("poison:1"))
		p.plain(100, 20)
		mem := checkpoint.NewMemory()
		type worker struct {
			m     *metrics.Memory
			sum   *events.Summary
			store *cuttableStore
			stop  func() error
		}
		workers := map[string]*worker{}
		start := func(id string) {
			w := &worker{m: metrics.NewMemory(), sum: events.NewSummary(10), store: &cuttableStore{Store: mem}}
			h := func(_ context.Context, b *Batch) error {
				for _, r := range b.Records {
					if string(r.Data) == "poison:1" {
						return errors.New("poison")
					}
				}
				return nil
			}
			c := newTestConsumer(t, f, w.store, WithWorkerID(id), WithMetrics(w.m), WithListener(w.sum), WithMaxRecords(20),
				WithHandlerRetries(1), WithDeadLetter(func(context.Context, *Batch, error) error { return nil }))
			w.stop = run(t, c, h)
			workers[id] = w
		}
		start("a")
		waitFor(t, time.Minute, "a holds both", func() bool { return held(t, mem, "shardline", testStream)["a"] == 2 })
		start("b")
		waitFor(t, time.Minute, "1/1", func() bool { return balancedAs(held(t, mem, "shardline", testStream), 1, 1) })
		f.split(f.open()[0])
		p.plain(100, 20)
		time.Sleep(10 * time.Second)
		workers["a"].store.setCut(true)
		time.Sleep(2 * time.Second)
		workers["a"].store.setCut(false)
		time.Sleep(10 * time.Second)
		for _, w := range workers {
			if err := w.stop(); err != nil {
				t.Fatal(err)
			}
		}
		shards := []string{}
		for _, s := range f.shards {
			shards = append(shards, s.id)
		}
		for id, w := range workers {
			sum := func(name metrics.Name, errType string) float64 {
				var n float64
				for _, s := range shards {
					n += w.m.Counter(name, metrics.Labels{Stream: testStream, Shard: s, ErrorType: errType})
				}
				return n
			}
			snap := w.sum.Snapshot()
			for _, c := range []struct {
				ev     events.Type
				metric float64
			}{
				{events.LeaseAcquired, sum(metrics.ConsumerLeaseAcquired, "")},
				{events.LeaseStolen, sum(metrics.ConsumerLeaseStolen, "")},
				{events.LeaseLost, sum(metrics.ConsumerLeaseLost, "")},
				{events.LeaseReleased, sum(metrics.ConsumerLeaseReleased, "")},
				{events.CheckpointWritten, sum(metrics.ConsumerCheckpointSuccess, "")},
				{events.CheckpointFailed, sum(metrics.ConsumerCheckpointFailure, "")},
				{events.HandlerFailed, sum(metrics.ConsumerErrors, "handler")},
				{events.RecordSkipped, sum(metrics.ConsumerRecordsSkipped, "decode") + sum(metrics.ConsumerRecordsSkipped, "hash_key_out_of_range")},
			} {
				if got := float64(snap.ByType[c.ev]); got != c.metric {
					t.Errorf("worker %s: %d %s events, metrics say %v", id, snap.ByType[c.ev], c.ev, c.metric)
				}
			}
			if snap.ByType[events.WorkerStarted] != 1 || snap.ByType[events.WorkerStopped] != 1 {
				t.Errorf("worker %s: started %d, stopped %d, want 1 and 1", id, snap.ByType[events.WorkerStarted], snap.ByType[events.WorkerStopped])
			}
		}
		total := func(ty events.Type) (n int64) {
			for _, w := range workers {
				n += w.sum.Count(ty)
			}
			return n
		}
		for _, ty := range []events.Type{events.LeaseAcquired, events.LeaseStolen, events.HandoffRequested, events.HandoffCompleted,
			events.ShardStarted, events.ShardFinished, events.ReshardDetected, events.CheckpointWritten, events.HandlerFailed,
			events.HandlerRetried, events.DeadLettered, events.RecordSkipped, events.StoreUnavailable, events.StoreRecovered} {
			if total(ty) == 0 {
				t.Errorf("no %s event in a run that went through it", ty)
			}
		}
		var dead float64
		for _, w := range workers {
			for _, s := range shards {
				dead += w.m.Counter(metrics.ConsumerDeadLettered, metrics.Labels{Stream: testStream, Shard: s})
			}
		}
		if dead == 0 {
			t.Error("nothing dead-lettered")
		}
	})
}

// Guards against a panicking or stuck listener hurting the consumer: records keep flowing,
// panics and drops are counted.
func TestListenerCannotHurtTheConsumer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 2)
		newProducer(f).plain(3000, 50)
		m := metrics.NewMemory()
		stuck := make(chan struct{})
		var once sync.Once
		s := newSink()
		c := newTestConsumer(t, f, checkpoint.NewMemory(), WithMetrics(m), WithMaxRecords(2),
			WithListener(events.ListenerFunc(func(events.Event) { panic("listener bug") })),
			WithListener(events.ListenerFunc(func(e events.Event) {
				if e.Type == events.CheckpointWritten {
					once.Do(func() { <-stuck })
				}
			})))
		stop := run(t, c, s.handler("w"))
		waitFor(t, 10*time.Minute, "every record with a stuck listener", func() bool { return s.unique() == 3000 })
		close(stuck)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		labels := metrics.Labels{Stream: testStream}
		if m.Counter(metrics.EventsListenerPanics, labels) == 0 || m.Counter(metrics.EventsDropped, labels) == 0 {
			t.Errorf("panics %v and drops %v counted, want both", m.Counter(metrics.EventsListenerPanics, labels), m.Counter(metrics.EventsDropped, labels))
		}
	})
}

// Guards against per-call telemetry that is not there or does not count what happened (issue
// 10, item 3): every Kinesis and store operation the consumer makes is timed by operation
// (and shard where it is about one), and failed GetRecords calls are counted by error type,
// as many as were injected; the call log lists them.
func TestPerCallTelemetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 1)
		newProducer(f).plain(50, 5)
		shard := f.open()[0]
		var mu sync.Mutex
		injected := 0
		f.getRecordsFault = func(string) error {
			mu.Lock()
			defer mu.Unlock()
			if injected < 3 {
				injected++
				return errInjected
			}
			return nil
		}
		m := metrics.NewMemory(metrics.WithCallLog(time.Hour, 10))
		s := newSink()
		stop := run(t, newTestConsumer(t, f, checkpoint.NewMemory(), WithMetrics(m), WithMaxRecords(10)), s.handler("w"))
		waitFor(t, time.Minute, "records", func() bool { return s.unique() == 50 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		call := func(name metrics.Name, shard, op string) uint64 {
			return m.Histogram(name, metrics.Labels{Stream: testStream, Shard: shard, Operation: op}).Count
		}
		for _, c := range []struct {
			name      metrics.Name
			shard, op string
		}{
			{metrics.KinesisCallDuration, shard, "GetRecords"},
			{metrics.KinesisCallDuration, shard, "GetShardIterator"},
			{metrics.KinesisCallDuration, "", "ListShards"},
			{metrics.StoreCallDuration, shard, "TakeLease"},
			{metrics.StoreCallDuration, shard, "Checkpoint"},
			{metrics.StoreCallDuration, shard, "ReleaseLease"},
			{metrics.StoreCallDuration, "", "Heartbeat"},
			{metrics.StoreCallDuration, "", "ListLeases"},
		} {
			if call(c.name, c.shard, c.op) == 0 {
				t.Errorf("%s{shard=%q, operation=%s} never observed", c.name, c.shard, c.op)
			}
		}
		// One checkpoint per accepted batch of 10: five.
		if n := call(metrics.StoreCallDuration, shard, "Checkpoint"); n != 5 {
			t.Errorf("%d Checkpoint calls timed, want 5", n)
		}
		failed := m.Counter(metrics.KinesisCallErrors, metrics.Labels{Stream: testStream, Shard: shard, Operation: "GetRecords", ErrorType: "connection"})
		if failed != 3 || len(m.FailedCalls()) != 3 || m.FailedCalls()[0].Operation != "GetRecords" {
			t.Errorf("GetRecords errors counted %v, logged %+v; want the 3 injected", failed, m.FailedCalls())
		}
	})
}
