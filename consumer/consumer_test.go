package consumer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shardline/kinesis/aggregation"
	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/metrics"
)

const testStream = "orders"

func newTestConsumer(t *testing.T, f *fakeKinesis, store checkpoint.Store, opts ...Option) *Consumer {
	t.Helper()
	opts = append([]Option{WithGroup("shardline"), WithLeaseDuration(3 * time.Second), WithMaxRecords(100)}, opts...)
	c, err := New(f, f.stream, store, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return track(c)
}

// Guards against lost or reordered records in the basic path: plain and aggregated records on
// four shards, all delivered once, in per-key order, checkpointed at each shard's last record,
// leases released at shutdown, and GetRecords kept within 5 calls/s per shard.
func TestConsumeAllInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 4)
		p := newProducer(f)
		p.plain(400, 40)
		p.aggregated(1600, 40, 25)
		p.plain(400, 40)
		store := checkpoint.NewMemory()
		m := metrics.NewMemory()
		s := newSink()
		c := newTestConsumer(t, f, store, WithMetrics(m), WithWorkerID("w1"))
		stop := run(t, c, s.handler("w1"))
		waitFor(t, time.Minute, "all records", func() bool { return s.unique() == 2400 })
		if err := stop(); err != nil {
			t.Fatalf("Run = %v", err)
		}
		if dups := s.check(t, p.counter); dups != 0 {
			t.Errorf("%d duplicates in a run without failures", dups)
		}
		rows, _ := store.ListLeases(context.Background(), "shardline", testStream)
		if len(rows) != 4 {
			t.Fatalf("%d lease rows, want 4", len(rows))
		}
		for _, l := range rows {
			if l.Held() {
				t.Errorf("lease %s still held by %s after shutdown", l.Shard, l.Owner)
			}
			recs := f.byID[l.Shard].records
			if got, want := l.Checkpoint.SequenceNumber, *recs[len(recs)-1].SequenceNumber; got != want {
				t.Errorf("shard %s checkpoint %s, want its last record %s", l.Shard, got, want)
			}
		}
		if n := f.maxCallsPerSecond(); n > 5 {
			t.Errorf("a shard got %d GetRecords calls within a second, Kinesis allows 5", n)
		}
		// Every metric is checked against what the fake holds and the sink saw, shard by shard.
		for _, l := range rows {
			labels := metrics.Labels{Stream: testStream, Shard: l.Shard}
			recs := f.byID[l.Shard].records
			bytes, users := 0, 0
			for _, r := range recs {
				bytes += len(r.Data)
			}
			for _, r := range recs {
				if n, ok := userRecords(r.Data); ok {
					users += n
				} else {
					users++
				}
			}
			for _, c := range []struct {
				name metrics.Name
				want float64
			}{
				{metrics.ConsumerRecordsReceived, float64(len(recs))},
				{metrics.ConsumerBytesReceived, float64(bytes)},
				{metrics.ConsumerUserRecords, float64(users)},
				{metrics.ConsumerLeaseAcquired, 1},
				{metrics.ConsumerLeaseReleased, 1},
				{metrics.ConsumerLeaseLost, 0},
				{metrics.ConsumerCheckpointFailure, 0},
			} {
				if got := m.Counter(c.name, labels); got != c.want {
					t.Errorf("%s{shard=%s} = %v, want %v", c.name, l.Shard, got, c.want)
				}
			}
			// One checkpoint per batch the handler accepted (at most 100 Kinesis records each).
			batches := m.Histogram(metrics.ConsumerProcessingTime, labels).Count
			if got := m.Counter(metrics.ConsumerCheckpointSuccess, labels); got != float64(batches) || batches < uint64((len(recs)+99)/100) {
				t.Errorf("consumer_checkpoint_success_total{shard=%s} = %v for %d batches of %d Kinesis records", l.Shard, got, batches, len(recs))
			}
			if got := m.Gauge(metrics.ConsumerLagRecords, labels); got != 0 {
				t.Errorf("consumer_lag_records{shard=%s} = %v after every checkpoint, want 0", l.Shard, got)
			}
		}
		stream := metrics.Labels{Stream: testStream}
		for _, g := range []struct {
			name metrics.Name
			want float64
		}{
			{metrics.StreamShardsActive, 4}, {metrics.StreamShardsClosed, 0}, {metrics.ConsumerLeasesHeld, 0},
			{metrics.ConsumerQueueSize, 0}, {metrics.ConsumerWorkersLive, 1},
		} {
			if got := m.Gauge(g.name, stream); got != g.want {
				t.Errorf("%s = %v, want %v", g.name, got, g.want)
			}
		}
	})
}

// userRecords returns the user records in a KPL aggregate, or false for a plain record.
func userRecords(data []byte) (int, bool) {
	var p aggregation.Parser
	if p.Parse(data) != aggregation.Aggregated {
		return 0, false
	}
	return p.Len(), true
}

// Guards against re-reading from the start (or skipping) after a restart: a second consumer
// of the same group resumes exactly after the first one's checkpoints, aggregated records
// included (sub-sequence numbers).
func TestRestartResumesFromCheckpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 2)
		p := newProducer(f)
		p.aggregated(500, 20, 7)
		store := checkpoint.NewMemory()
		s := newSink()
		stop := run(t, newTestConsumer(t, f, store), s.handler("first"))
		waitFor(t, time.Minute, "first run", func() bool { return s.unique() == 500 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		p.aggregated(300, 20, 7)
		p.plain(100, 20)
		stop = run(t, newTestConsumer(t, f, store), s.handler("second"))
		waitFor(t, time.Minute, "second run", func() bool { return s.unique() == 900 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if dups := s.check(t, p.counter); dups != 0 {
			t.Errorf("%d records delivered again after a graceful restart", dups)
		}
		if got := s.byOwner["second"]; got != 400 {
			t.Errorf("second run got %d records, want the 400 new ones", got)
		}
	})
}

// Guards against losing records when a worker crashes, and against unbounded re-delivery:
// after a crash (store unreachable, handler frozen) another worker takes the shards after the
// lease duration and re-delivers at most the batch per shard that was not checkpointed.
func TestCrashRedeliversAtMostOneBatchPerShard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 3)
		p := newProducer(f)
		p.plain(1500, 30)
		mem := checkpoint.NewMemory()
		crashStore := &cuttableStore{Store: mem}
		s := newSink()
		frozen := make(chan struct{})
		var crashed atomic.Bool
		crashing := func(_ context.Context, b *Batch) error {
			if s.unique() >= 400 {
				crashStore.setCut(true) // the process is gone: nothing it writes lands
				crashed.Store(true)
			}
			if crashed.Load() {
				<-frozen
				return errors.New("crashed")
			}
			s.accept("a", b)
			return nil
		}
		stopA := run(t, newTestConsumer(t, f, crashStore, WithWorkerID("a"), WithMaxRecords(50), WithShutdownTimeout(time.Second)), crashing)
		waitFor(t, time.Minute, "crash", func() bool { crashStore.mu.Lock(); defer crashStore.mu.Unlock(); return crashStore.cut })
		before := s.unique()
		stopB := run(t, newTestConsumer(t, f, mem, WithWorkerID("b"), WithMaxRecords(50)), s.handler("b"))
		took := waitFor(t, time.Minute, "takeover", func() bool { return held(t, mem, "shardline", testStream)["b"] == 3 })
		if took > 2*3*time.Second {
			t.Errorf("takeover after a crash took %v, want within 2 lease durations", took)
		}
		waitFor(t, time.Minute, "every record", func() bool { return s.unique() == 1500 })
		if err := stopB(); err != nil {
			t.Fatal(err)
		}
		close(frozen)
		_ = stopA()
		dups := s.check(t, p.counter)
		if dups > 3*50 {
			t.Errorf("%d duplicates after a crash, want at most one batch (50) per shard (3)", dups)
		}
		t.Logf("crash after %d records: %d re-delivered, takeover in %v", before, dups, took)
	})
}

// Guards against log lines an operator cannot attribute (issue 10, item 2): every line of a
// consumer carries stream, group and worker, every line about a shard carries shard, and
// errors always go under the key "err".
func TestLogLinesCarryContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 2)
		newProducer(f).plain(100, 10)
		var buf safeBuffer
		logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		store := &cuttableStore{Store: checkpoint.NewMemory()}
		s := newSink()
		stop := run(t, newTestConsumer(t, f, store, WithLogger(logger), WithWorkerID("w1")), s.handler("w1"))
		waitFor(t, time.Minute, "records", func() bool { return s.unique() == 100 })
		store.setCut(true) // warnings with errors
		time.Sleep(5 * time.Second)
		store.setCut(false)
		time.Sleep(2 * time.Second)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		shardLines, errLines := 0, 0
		for _, line := range lines {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("not JSON: %q", line)
			}
			if rec["stream"] != testStream || rec["group"] != "shardline" || rec["worker"] != "w1" {
				t.Errorf("line without stream, group and worker: %s", line)
			}
			if _, ok := rec["error"]; ok {
				t.Errorf("error under the key \"error\", want \"err\": %s", line)
			}
			if _, ok := rec["shard"]; ok {
				shardLines++
			}
			if _, ok := rec["err"]; ok {
				errLines++
			}
		}
		if shardLines == 0 || errLines == 0 {
			t.Errorf("%d lines, %d with a shard and %d with an error: the run should have logged both", len(lines), shardLines, errLines)
		}
	})
}

// safeBuffer is a bytes.Buffer safe for concurrent writers.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Guards against a Status that every user must map by hand before serving it (issue 15):
// it marshals with snake_case keys, errors as their messages and a typed state.
func TestStatusJSON(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 1)
		newProducer(f).plain(10, 2)
		boom := errors.New("boom")
		failing := true
		var mu sync.Mutex
		c := newTestConsumer(t, f, checkpoint.NewMemory(), WithWorkerID("w1"))
		stop := run(t, c, func(context.Context, *Batch) error {
			mu.Lock()
			defer mu.Unlock()
			if failing {
				return boom
			}
			return nil
		})
		waitFor(t, time.Minute, "the failure shown", func() bool {
			st := c.Status()
			return len(st.Shards) == 1 && st.Shards[0].LastError != nil
		})
		b, err := json.Marshal(c.Status())
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			WorkerID     string  `json:"worker_id"`
			LiveWorkers  int     `json:"live_workers"`
			BalanceError *string `json:"balance_error"`
			Shards       []struct {
				ShardID   string `json:"shard_id"`
				State     string `json:"state"`
				LastError string `json:"last_error"`
			} `json:"shards"`
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got.WorkerID != "w1" || got.LiveWorkers != 1 || got.BalanceError != nil || len(got.Shards) != 1 ||
			got.Shards[0].State != "reading" || got.Shards[0].LastError != "boom" {
			t.Errorf("Status as JSON = %s", b)
		}
		mu.Lock()
		failing = false
		mu.Unlock()
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}
