package consumer

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/localstack"
	"github.com/shardline/kinesis/producer"
)

// produce puts n records "key:counter" over keys with Shardline's producer (aggregation on)
// and waits until every one is confirmed.
func produce(t *testing.T, stream string, counter map[string]int, n, keys int) {
	t.Helper()
	p, err := producer.New(localstack.Kinesis(t), stream)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := 0; i < n; i++ {
		key := "key-" + strconv.Itoa(i%keys)
		counter[key]++
		if _, err := p.Put(ctx, key, []byte(key+":"+strconv.Itoa(counter[key]))); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("producer Close: %v", err)
	}
	if st := p.Stats(); st.Delivered != int64(n) || st.Failed != 0 {
		t.Fatalf("producer delivered %d and failed %d of %d", st.Delivered, st.Failed, n)
	}
}

// Guards against the consumer losing or reordering what Shardline's producer wrote (KPL
// aggregates per predicted shard, sub-sequence numbers) and against a restart re-reading more
// than the unacknowledged batch: 20,000 records over 1,000 keys on four shards, consumed by
// one worker with Redis leases that crashes midway; the restarted worker resumes from the
// checkpoints and re-delivers at most one batch per shard.
func TestIntegrationProducedByShardline(t *testing.T) {
	stream := localstack.NewStream(t, localstack.Kinesis(t), 4)
	prefix := localstack.RedisPrefix(t, localstack.Redis(t))
	counter := map[string]int{}
	produce(t, stream, counter, 20000, 1000)

	s := newSink()
	// Small GetRecords batches (aggregates of ~400 user records each) so the crash falls
	// between checkpoints of a shard that has more to read.
	const limit = 2
	crashStore := &cuttableStore{Store: redisStore(t, prefix)}
	frozen := make(chan struct{})
	var crashed atomic.Bool
	var maxBatch atomic.Int64
	a, err := New(localstack.Kinesis(t), stream, crashStore, itOptions("first", WithMaxRecords(limit))...)
	if err != nil {
		t.Fatal(err)
	}
	stopA := run(t, track(a), func(_ context.Context, b *Batch) error {
		if s.unique() >= 8000 {
			crashStore.setCut(true) // the process dies: nothing it writes from now on lands
			crashed.Store(true)
		}
		if crashed.Load() {
			<-frozen
			return errors.New("crashed")
		}
		if n := int64(len(b.Records)); n > maxBatch.Load() {
			maxBatch.Store(n)
		}
		s.accept("first", b)
		return nil
	})
	realWait(t, time.Minute, "the crash", func() bool { return crashed.Load() })
	before := s.unique()

	b, err := New(localstack.Kinesis(t), stream, redisStore(t, prefix), itOptions("second", WithMaxRecords(limit))...)
	if err != nil {
		t.Fatal(err)
	}
	stopB := run(t, track(b), func(_ context.Context, batch *Batch) error {
		if n := int64(len(batch.Records)); n > maxBatch.Load() {
			maxBatch.Store(n)
		}
		s.accept("second", batch)
		return nil
	})
	realWait(t, 2*time.Minute, "every record", func() bool { return s.unique() == 20000 })
	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	close(frozen)
	_ = stopA()
	dups := s.check(t, counter)
	t.Logf("first worker handled %d records before crashing; %d re-delivered after the restart (largest batch %d)", before, dups, maxBatch.Load())
	if bound := 4 * int(maxBatch.Load()); dups > bound {
		t.Errorf("%d records re-delivered after a crash, want at most one batch per shard (%d)", dups, bound)
	}
	if s.byOwner["second"] == 0 {
		t.Error("the restarted worker delivered nothing")
	}
	var _ checkpoint.Store = crashStore
}
