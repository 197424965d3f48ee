package consumer

import (
	"context"
	"crypto/md5"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/shardline/kinesis/aggregation"
	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/internal/shardmap"
	"github.com/shardline/kinesis/metrics"
)

// Guards against throttling or transient read errors killing a shard reader: the reader backs
// off, counts the errors by code, and delivers everything.
func TestThrottlingAndTransientErrorsRecovered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 2)
		p := newProducer(f)
		p.plain(600, 20)
		var calls atomic.Int64
		f.getRecordsFault = func(string) error {
			switch n := calls.Add(1); {
			case n%3 == 0:
				return &types.ProvisionedThroughputExceededException{Message: aws.String("Rate exceeded")}
			case n%7 == 0:
				return errInjected // a connection error
			}
			return nil
		}
		m := metrics.NewMemory()
		s := newSink()
		stop := run(t, newTestConsumer(t, f, checkpoint.NewMemory(), WithMetrics(m), WithMaxRecords(25)), s.handler("w"))
		waitFor(t, time.Minute, "every record", func() bool { return s.unique() == 600 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if dups := s.check(t, p.counter); dups != 0 {
			t.Errorf("%d duplicates", dups)
		}
		var throttles, conn float64
		for _, id := range f.open() {
			throttles += m.Counter(metrics.ConsumerErrors, metrics.Labels{Stream: testStream, Shard: id, ErrorType: "ProvisionedThroughputExceededException"})
			conn += m.Counter(metrics.ConsumerErrors, metrics.Labels{Stream: testStream, Shard: id, ErrorType: "connection"})
		}
		if throttles == 0 || conn == 0 {
			t.Errorf("errors counted: %v throttles, %v connection; want both > 0", throttles, conn)
		}
	})
}

// Guards against ExpiredIteratorException stopping a reader or restarting it from the start
// position: a handler slower than the 5-minute iterator life resumes after the last record
// read, without loss or duplicates.
func TestExpiredIteratorResumesAfterLastRecord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 1)
		p := newProducer(f)
		p.plain(300, 10)
		s := newSink()
		var slow sync.Once
		h := func(ctx context.Context, b *Batch) error {
			s.accept("w", b)
			slow.Do(func() { time.Sleep(6 * time.Minute) })
			return nil
		}
		m := metrics.NewMemory()
		stop := run(t, newTestConsumer(t, f, checkpoint.NewMemory(), WithMetrics(m), WithMaxRecords(50),
			WithLeaseDuration(time.Hour)), h)
		waitFor(t, 10*time.Minute, "every record", func() bool { return s.unique() == 300 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if dups := s.check(t, p.counter); dups != 0 {
			t.Errorf("%d duplicates after an expired iterator", dups)
		}
		if n := m.Counter(metrics.ConsumerErrors, metrics.Labels{Stream: testStream, Shard: f.open()[0], ErrorType: "ExpiredIteratorException"}); n != 1 {
			t.Errorf("ExpiredIteratorException counted %v times, want 1", n)
		}
	})
}

// malformedAggregate returns data with the KPL magic and a valid MD5 over bytes that are not a
// valid AggregatedRecord (a record whose key index points past the key table).
func malformedAggregate() []byte {
	var rec []byte
	rec = protowire.AppendTag(rec, 1, protowire.VarintType)
	rec = protowire.AppendVarint(rec, 7) // no key at index 7
	rec = protowire.AppendTag(rec, 3, protowire.BytesType)
	rec = protowire.AppendBytes(rec, []byte("poison"))
	var body []byte
	body = protowire.AppendTag(body, 1, protowire.BytesType)
	body = protowire.AppendString(body, "k")
	body = protowire.AppendTag(body, 3, protowire.BytesType)
	body = protowire.AppendBytes(body, rec)
	sum := md5.Sum(body)
	out := append(aggregation.Magic[:], body...)
	return append(out, sum[:]...)
}

// Guards against a poison record stalling a shard (or silently vanishing): each decode policy
// does what it says.
func TestDecodePolicies(t *testing.T) {
	for _, tc := range []struct {
		policy    DecodePolicy
		delivered int
		wantErr   bool
	}{
		{DecodeSkip, 20, false},
		{DecodeDeliverRaw, 21, false},
		{DecodeStop, 0, true},
	} {
		t.Run(map[DecodePolicy]string{DecodeSkip: "skip", DecodeDeliverRaw: "raw", DecodeStop: "stop"}[tc.policy], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeKinesis(testStream, 1)
				p := newProducer(f)
				p.plain(10, 2)
				f.put("k0", "", malformedAggregate())
				p.plain(10, 2)
				m := metrics.NewMemory()
				var got atomic.Int64
				c := newTestConsumer(t, f, checkpoint.NewMemory(), WithMetrics(m), WithDecodePolicy(tc.policy))
				ctx, cancel := context.WithCancel(context.Background())
				errc := make(chan error, 1)
				go func() {
					errc <- c.Run(ctx, func(_ context.Context, b *Batch) error { got.Add(int64(len(b.Records))); return nil })
				}()
				if tc.wantErr {
					err := <-errc
					cancel()
					var de *DecodeError
					if !errors.As(err, &de) || de.SequenceNumber != "11" {
						t.Fatalf("Run = %v, want a *DecodeError at sequence 11", err)
					}
					return
				}
				waitFor(t, time.Minute, "delivery", func() bool { return got.Load() == int64(tc.delivered) })
				time.Sleep(5 * time.Second)
				cancel()
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
				if got.Load() != int64(tc.delivered) {
					t.Errorf("delivered %d records, want %d", got.Load(), tc.delivered)
				}
				skipped := m.Counter(metrics.ConsumerRecordsSkipped, metrics.Labels{Stream: testStream, Shard: f.open()[0], ErrorType: "decode"})
				if want := map[bool]float64{true: 1, false: 0}[tc.policy == DecodeSkip]; skipped != want {
					t.Errorf("skipped decode = %v, want %v", skipped, want)
				}
			})
		})
	}
}

// Guards against delivering user records of an aggregate that Kinesis routed to a shard not
// owning their hash key (a stale producer map): the KCL drops them, and so must we, counting
// them; the records of the shard's own range are delivered.
func TestOutOfRangeUserRecordsDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 2)
		m0 := newProducer(f).shardMap()
		b := aggregation.NewBuilder(0)
		own, foreign := 0, 0
		for i := 0; own < 5 || foreign < 5; i++ {
			key := "key" + string(rune('a'+i%26)) + string(rune('a'+i/26))
			e, _ := m0.Lookup(shardmap.HashKey(key))
			if e.ID == m0.Entries()[0].ID && own < 5 {
				own++
				b.Add(key, "", []byte(key+":1"))
			} else if e.ID != m0.Entries()[0].ID && foreign < 5 {
				foreign++
				b.Add(key, "", []byte(key+":1"))
			}
		}
		f.put("x", m0.Entries()[0].Range.Start.String(), b.AppendTo(nil))
		m := metrics.NewMemory()
		var got atomic.Int64
		stop := run(t, newTestConsumer(t, f, checkpoint.NewMemory(), WithMetrics(m)), func(_ context.Context, b *Batch) error {
			got.Add(int64(len(b.Records)))
			return nil
		})
		time.Sleep(5 * time.Second)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if got.Load() != 5 {
			t.Errorf("delivered %d records, want the 5 in the shard's range", got.Load())
		}
		if n := m.Counter(metrics.ConsumerRecordsSkipped, metrics.Labels{Stream: testStream, Shard: m0.Entries()[0].ID, ErrorType: "hash_key_out_of_range"}); n != 5 {
			t.Errorf("out-of-range skips counted %v, want 5", n)
		}
	})
}

// Guards against a failing handler losing records (checkpointing past a batch it did not
// accept): under StopOnFailure, after the retries Run stops with a *HandlerError and the
// checkpoint stays before the failed batch.
func TestHandlerFailureStopsWithoutCheckpointing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 1)
		p := newProducer(f)
		p.plain(30, 3)
		mem := checkpoint.NewMemory()
		var calls atomic.Int64
		boom := errors.New("boom")
		c := newTestConsumer(t, f, mem, WithMaxRecords(10), WithHandlerRetries(2), WithFailurePolicy(StopOnFailure))
		err := c.Run(context.Background(), func(_ context.Context, b *Batch) error {
			if calls.Add(1) > 1 {
				return boom
			}
			return nil
		})
		var he *HandlerError
		if !errors.As(err, &he) || !errors.Is(err, boom) || he.Attempts != 3 || he.SequenceNumber != "11" {
			t.Fatalf("Run = %v, want *HandlerError after 3 attempts at sequence 11 wrapping boom", err)
		}
		l, _ := mem.GetLease(context.Background(), checkpoint.ShardKey{Group: "shardline", Stream: testStream, Shard: f.open()[0]})
		if l.Checkpoint.SequenceNumber != "10" || l.Held() {
			t.Errorf("lease after the failure = %+v, want released at the first batch's end (10)", l)
		}
	})
}

// Guards against a reader that spins on a stream that does not exist: Run stops with a
// FatalError.
func TestMissingStreamIsFatal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 1)
		c, err := New(f, "no-such-stream", checkpoint.NewMemory(), WithGroup("g"))
		if err != nil {
			t.Fatal(err)
		}
		err = c.Run(context.Background(), func(context.Context, *Batch) error { return nil })
		var fe *FatalError
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &fe) || !errors.As(err, &nf) || IsRetryable(err) {
			t.Fatalf("Run = %v, want a FatalError wrapping ResourceNotFoundException", err)
		}
	})
}

// Guards against start positions being ignored: LATEST skips what was there before the
// consumer started, AT_TIMESTAMP starts at the first record at or after the time, and a
// checkpoint wins over both.
func TestStartPositions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 1)
		p := newProducer(f)
		p.plain(10, 1)
		time.Sleep(time.Minute)
		mid := time.Now()
		p.plain(10, 1)

		latest := newSink()
		stop := run(t, newTestConsumer(t, f, checkpoint.NewMemory(), WithStartPosition(Latest)), latest.handler("l"))
		time.Sleep(2 * time.Second) // the reader takes its LATEST iterator
		p.plain(5, 1)
		waitFor(t, time.Minute, "latest", func() bool { return latest.unique() == 5 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if latest.last["k0"] != 25 || latest.total != 5 {
			t.Errorf("LATEST delivered %d records ending at %d, want 21..25", latest.total, latest.last["k0"])
		}

		at := newSink()
		mem := checkpoint.NewMemory()
		stop = run(t, newTestConsumer(t, f, mem, WithStartTimestamp(mid)), at.handler("a"))
		waitFor(t, time.Minute, "at timestamp", func() bool { return at.unique() == 15 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if at.total != 15 {
			t.Errorf("AT_TIMESTAMP delivered %d records, want 15 (11..25)", at.total)
		}
		// The checkpoint from that run wins over LATEST now.
		p.plain(3, 1)
		again := newSink()
		stop = run(t, newTestConsumer(t, f, mem, WithStartPosition(Latest)), again.handler("b"))
		waitFor(t, time.Minute, "resume", func() bool { return again.unique() == 3 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// Guards against manual mode checkpointing on its own, and against a shard being marked
// finished before the handler checkpointed its last record (children would start early).
func TestManualCheckpointing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 1)
		p := newProducer(f)
		p.plain(40, 2)
		shard := f.open()[0]
		f.split(shard)
		mem := checkpoint.NewMemory()
		var kept []*Batch
		var mu sync.Mutex
		got := 0
		h := func(_ context.Context, b *Batch) error {
			mu.Lock()
			defer mu.Unlock()
			got += len(b.Records)
			kept = append(kept, b) // acknowledged later
			return nil
		}
		c := newTestConsumer(t, f, mem, WithCheckpointMode(CheckpointManual), WithMaxRecords(10))
		stop := run(t, c, h)
		waitFor(t, time.Minute, "delivery", func() bool { mu.Lock(); defer mu.Unlock(); return got == 40 })
		time.Sleep(10 * time.Second)
		key := checkpoint.ShardKey{Group: "shardline", Stream: testStream, Shard: shard}
		l, _ := mem.GetLease(context.Background(), key)
		if !l.Checkpoint.IsZero() {
			t.Fatalf("manual mode wrote checkpoint %v on its own", l.Checkpoint)
		}
		// Acknowledge through the last batch handle the handler kept.
		mu.Lock()
		last := kept[len(kept)-1]
		mu.Unlock()
		if err := last.CheckpointRecord(context.Background(), last.Records[len(last.Records)-1]); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "shard end", func() bool {
			l, _ := mem.GetLease(context.Background(), key)
			return l.Checkpoint.ShardEnd
		})
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// Guards against configurations that cannot work being accepted (and failing later, or
// hammering Kinesis): each is refused by New with a ConfigError naming the option at fault,
// which matches ErrInvalidConfig (issue 15: one convention in every package).
func TestInvalidConfig(t *testing.T) {
	f := newFakeKinesis(testStream, 1)
	store := checkpoint.NewMemory()
	for _, tc := range []struct {
		name   string
		opts   []Option
		option string
	}{
		{"empty group", []Option{WithGroup("")}, "WithGroup"},
		{"no group", nil, "WithGroup"},
		{"poll under 200ms", []Option{WithPollInterval(100 * time.Millisecond)}, "WithPollInterval"},
		{"idle below poll", []Option{WithIdleInterval(100 * time.Millisecond)}, "WithIdleInterval"},
		{"limit 0", []Option{WithMaxRecords(0)}, "WithMaxRecords"},
		{"limit 10001", []Option{WithMaxRecords(10001)}, "WithMaxRecords"},
		{"tiny lease", []Option{WithLeaseDuration(time.Millisecond)}, "WithLeaseDuration"},
		{"renew not below lease", []Option{WithLeaseDuration(time.Second), WithRenewInterval(time.Second)}, "WithRenewInterval"},
		{"negative renew", []Option{WithRenewInterval(-time.Second)}, "WithRenewInterval"},
		{"negative balance interval", []Option{WithBalanceInterval(-time.Second)}, "WithBalanceInterval"},
		{"negative shard sync", []Option{WithShardSyncInterval(-time.Second)}, "WithShardSyncInterval"},
		{"unknown start position", []Option{WithStartPosition(StartPosition(9))}, "WithStartPosition"},
		{"timestamp unset", []Option{WithStartPosition(AtTimestamp)}, "WithStartTimestamp"},
		{"unknown checkpoint mode", []Option{WithCheckpointMode(CheckpointMode(9))}, "WithCheckpointMode"},
		{"zero interval", []Option{WithCheckpointInterval(0)}, "WithCheckpointInterval"},
		{"negative steals", []Option{WithMaxStealsPerRun(-1)}, "WithMaxStealsPerRun"},
		{"negative lease cap", []Option{WithMaxLeases(-1)}, "WithMaxLeases"},
		{"no backoff", []Option{WithBackoff(0, time.Second)}, "WithBackoff"},
		{"backoff cap below base", []Option{WithBackoff(time.Second, time.Millisecond)}, "WithBackoff"},
		{"negative retries", []Option{WithHandlerRetries(-1)}, "WithHandlerRetries"},
		{"nil metrics", []Option{WithMetrics(nil)}, "WithMetrics"},
		{"nil logger", []Option{WithLogger(nil)}, "WithLogger"},
		{"nil listener", []Option{WithListener(nil)}, "WithListener"},
		{"negative health threshold", []Option{WithHealthThresholds(HealthThresholds{ReadGap: -time.Second})}, "WithHealthThresholds"},
		{"unknown decode policy", []Option{WithDecodePolicy(DecodePolicy(9))}, "WithDecodePolicy"},
		{"unknown failure policy", []Option{WithFailurePolicy(FailurePolicy(9))}, "WithFailurePolicy"},
		{"dead letter without fn", []Option{WithFailurePolicy(DeadLetterOnFailure)}, "WithDeadLetter"},
		{"nil dead letter fn", []Option{WithDeadLetter(nil)}, "WithDeadLetter"},
		{"negative outage limit", []Option{WithMaxStoreOutage(-time.Second)}, "WithMaxStoreOutage"},
		{"no shutdown timeout", []Option{WithShutdownTimeout(0)}, "WithShutdownTimeout"},
		{"no call timeout", []Option{WithCallTimeout(0)}, "WithCallTimeout"},
		{"nil option", []Option{nil}, "opts[1]"},
	} {
		opts := tc.opts
		if tc.name != "no group" {
			opts = append([]Option{WithGroup("g")}, opts...) // each case fails for its own reason
		}
		_, err := New(f, testStream, store, opts...)
		var ce *ConfigError
		if !errors.Is(err, ErrInvalidConfig) || !errors.As(err, &ce) || ce.Option != tc.option || ce.Package != "consumer" ||
			!strings.HasPrefix(err.Error(), "consumer: invalid "+tc.option+": ") {
			t.Errorf("%s: New = %v, want a ConfigError for %s", tc.name, err, tc.option)
		}
	}
	if _, err := New(f, testStream, store, WithGroup("g")); err != nil {
		t.Errorf("New with only a group = %v, want nil: the cases above must fail for their own reason", err)
	}
	for _, tc := range []struct {
		name   string
		client API
		stream string
		store  checkpoint.Store
		option string
	}{
		{"nil client", nil, testStream, store, "client"},
		{"empty stream", f, "", store, "stream"},
		{"nil store", f, testStream, nil, "store"},
	} {
		_, err := New(tc.client, tc.stream, tc.store, WithGroup("g"))
		var ce *ConfigError
		if !errors.Is(err, ErrInvalidConfig) || !errors.As(err, &ce) || ce.Option != tc.option {
			t.Errorf("%s: New = %v, want a ConfigError for %s", tc.name, err, tc.option)
		}
	}
	c, _ := New(f, testStream, store, WithGroup("g"))
	if err := c.Run(context.Background(), nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Run(nil handler) = %v", err)
	}
}

// Guards against two Run loops sharing one Consumer's state.
func TestRunTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(testStream, 1)
		c := newTestConsumer(t, f, checkpoint.NewMemory())
		stop := run(t, c, func(context.Context, *Batch) error { return nil })
		time.Sleep(time.Second)
		if err := c.Run(context.Background(), func(context.Context, *Batch) error { return nil }); !errors.Is(err, ErrAlreadyRunning) {
			t.Errorf("second Run = %v, want ErrAlreadyRunning", err)
		}
		if st := c.Status(); len(st.Shards) != 1 || st.Shards[0].State != ShardReading || st.LiveWorkers != 1 {
			t.Errorf("Status = %+v, want one shard reading and one live worker", st)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}
