package producer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shardline/kinesis/aggregation"
)

const testStream = "test-stream"

func newProducer(t testing.TB, api API, opts ...Option) *Producer {
	t.Helper()
	p, err := New(api, testStream, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func closeProducer(t testing.TB, p *Producer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func flush(t testing.TB, p *Producer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := p.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// flushFailing flushes where records are expected to fail, and returns how many Flush
// reported (0 for nil).
func flushFailing(t testing.TB, p *Producer) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	err := p.Flush(ctx)
	var failed *FailedError
	switch {
	case err == nil:
		return 0
	case !errors.As(err, &failed) || failed.Op != "flush" || failed.First == nil || errors.Is(err, ErrClosed):
		t.Fatalf("Flush: %v, want nil or a *FailedError", err)
	}
	return failed.Count
}

// workload is what a test put: records over keys, with data "key:counter:" padded to a size.
type workload struct {
	keys    []string // key of each record, in Put order
	datas   []string
	results []*Result
	want    map[string][]string // per key, data in Put order
}

func recordData(key string, i, size int) string {
	d := fmt.Sprintf("%s:%06d:", key, i)
	if len(d) < size {
		d += strings.Repeat("x", size-len(d))
	}
	return d
}

// putN puts n records round-robin over nkeys keys (key-0 …), each of size bytes at least.
func putN(t testing.TB, p *Producer, n, nkeys, size int) *workload {
	t.Helper()
	w := &workload{want: map[string][]string{}}
	w.add(t, p, n, nkeys, size)
	return w
}

func (w *workload) add(t testing.TB, p *Producer, n, nkeys, size int) {
	t.Helper()
	for i := range n {
		key := fmt.Sprintf("key-%d", i%nkeys)
		data := recordData(key, len(w.want[key]), size)
		r, err := p.Put(context.Background(), key, []byte(data))
		if err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
		w.keys = append(w.keys, key)
		w.datas = append(w.datas, data)
		w.results = append(w.results, r)
		w.want[key] = append(w.want[key], data)
	}
}

// outcomes returns every result's outcome, failing the test for one that is not known.
func (w *workload) outcomes(t testing.TB) []Outcome {
	t.Helper()
	out := make([]Outcome, len(w.results))
	for i, r := range w.results {
		o, ok := r.Outcome()
		if !ok {
			t.Fatalf("record %d (%s) has no outcome", i, w.datas[i])
		}
		out[i] = o
	}
	return out
}

// checkOutcomes asserts every record was delivered, and that its outcome names where a
// consumer finds it: shard, sequence number and sub-sequence number.
func checkOutcomes(t testing.TB, f *fakeKinesis, w *workload) {
	t.Helper()
	recs, _ := f.read(t)
	at := map[string]userRecord{}
	for _, r := range recs {
		at[fmt.Sprintf("%s/%d", r.seq, r.sub)] = r
	}
	for i, o := range w.outcomes(t) {
		if o.Err != nil {
			t.Errorf("record %s failed: %v", w.datas[i], o.Err)
			continue
		}
		r, ok := at[fmt.Sprintf("%s/%d", o.SequenceNumber, o.SubSequence)]
		if !ok || r.data != w.datas[i] || r.shard != o.ShardID {
			t.Errorf("record %s: outcome %+v points at %+v", w.datas[i], o, r)
		}
	}
}

// Guards against lost, duplicated, reordered or misrouted records on the normal path, and
// against outcomes that do not say where the record is (wrong shard, sequence or
// sub-sequence number).
func TestDeliversEveryRecordOnItsShard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(4)
		p := newProducer(t, f)
		w := putN(t, p, 3000, 200, 100)
		flush(t, p)
		checkDelivered(t, f, w.want)
		checkOutcomes(t, f, w)
		for i, o := range w.outcomes(t) {
			if want := f.shardOf(w.keys[i]); o.ShardID != want {
				t.Fatalf("record %s on %s, want %s", w.datas[i], o.ShardID, want)
			}
		}
		if n := f.kinesisRecords(); n > 40 {
			t.Errorf("%d Kinesis records for 3000 small records: aggregation is not working", n)
		}
		st := p.Stats()
		if st.Accepted != 3000 || st.Delivered != 3000 || st.Failed != 0 || st.Buffered != 0 || st.BufferedBytes != 0 {
			t.Errorf("stats %+v", st)
		}
		if st.KinesisRecords != int64(f.kinesisRecords()) {
			t.Errorf("stats count %d Kinesis records, the stream holds %d", st.KinesisRecords, f.kinesisRecords())
		}
		closeProducer(t, p)
	})
}

// Guards against sending a one-record aggregate (costs the consumer a deaggregation and the
// magic, and is not what the KPL does): it must go plain under its own key.
func TestSingleRecordSentPlain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(2)
		p := newProducer(t, f)
		r, err := p.Put(context.Background(), "only", []byte("payload"))
		if err != nil {
			t.Fatal(err)
		}
		o, err := r.Wait(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if o.Aggregated || o.SubSequence != 0 || o.Attempts != 1 {
			t.Errorf("outcome %+v, want plain, first attempt", o)
		}
		f.mu.Lock()
		s := f.stored[0]
		f.mu.Unlock()
		if string(s.data) != "payload" || s.pk != "only" || s.ehk != "" {
			t.Errorf("stored %+v, want the record as is", s)
		}
		closeProducer(t, p)
	})
}

// Guards against WithAggregation(false) being ignored: every record must be its own Kinesis
// record, with its own key and no explicit hash key.
func TestAggregationOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(4)
		p := newProducer(t, f, WithAggregation(false))
		w := putN(t, p, 200, 20, 50)
		flush(t, p)
		checkDelivered(t, f, w.want)
		checkOutcomes(t, f, w)
		f.mu.Lock()
		for _, s := range f.stored {
			if aggregation.IsAggregated(s.data) || s.ehk != "" || !strings.HasPrefix(string(s.data), s.pk+":") {
				t.Errorf("stored %s/%q under %q (ehk %q), want plain", s.seq, s.data[:12], s.pk, s.ehk)
			}
		}
		f.mu.Unlock()
		if n := f.kinesisRecords(); n != 200 {
			t.Errorf("%d Kinesis records, want 200", n)
		}
		closeProducer(t, p)
	})
}

// Guards against a record too large to share an aggregate being dropped, split, or sent out
// of order with the small records of its key around it.
func TestLargeRecordsGoPlainInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		p := newProducer(t, f)
		w := &workload{want: map[string][]string{}}
		for i := range 30 {
			size := 40
			if i%5 == 2 {
				size = DefaultAggregationMaxSize + 1000 // does not fit an aggregate
			}
			w.add(t, p, 1, 1, size)
		}
		flush(t, p)
		checkDelivered(t, f, w.want)
		checkOutcomes(t, f, w)
		for i, o := range w.outcomes(t) {
			if big := len(w.datas[i]) > DefaultAggregationMaxSize; big && o.Aggregated {
				t.Errorf("record %d of %d bytes was aggregated", i, len(w.datas[i]))
			}
		}
		closeProducer(t, p)
	})
}

// Guards against records of different keys sharing an aggregate being stored on a shard a
// consumer reads them from only by accident: records with explicit hash keys must route by
// them, inside aggregates too.
func TestExplicitHashKeyRoutes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(4)
		p := newProducer(t, f)
		last := f.shards[3]
		want := map[string][]string{}
		for i := range 50 {
			key := fmt.Sprintf("k%d", i)
			data := recordData(key, 0, 20)
			// Every record goes to the last shard whatever its key hashes to.
			_, err := p.PutRecord(context.Background(), Record{PartitionKey: key, ExplicitHashKey: last.rng.End.String(), Data: []byte(data)})
			if err != nil {
				t.Fatal(err)
			}
			want[key] = []string{data}
		}
		flush(t, p)
		recs, dropped := f.read(t)
		if dropped != 0 || len(recs) != 50 {
			t.Fatalf("consumer reads %d records and drops %d, want 50 and 0", len(recs), dropped)
		}
		for _, r := range recs {
			if r.shard != last.id {
				t.Errorf("record %s on %s, want %s", r.data, r.shard, last.id)
			}
		}
		if n := f.kinesisRecords(); n != 1 {
			t.Errorf("%d Kinesis records, want one aggregate", n)
		}
		closeProducer(t, p)
	})
}

// Guards against the linger time not being honoured: a lone record must wait for it (to
// share a request), and not much longer.
func TestLingerHoldsRecordsUntilDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(2)
		p := newProducer(t, f, WithLinger(250*time.Millisecond))
		start := time.Now()
		r, err := p.Put(context.Background(), "k", []byte("v"))
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(249 * time.Millisecond)
		synctest.Wait()
		if put, _ := f.calls(); put != 0 {
			t.Fatalf("PutRecords called %d times before the linger time", put)
		}
		if _, err := r.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 250*time.Millisecond {
			t.Errorf("delivered after %v, want the 250ms linger", took)
		}
		closeProducer(t, p)
	})
}

// Guards against a full batch waiting for the linger time: 500 entries or 5 MiB leave at once.
func TestFullBatchLeavesBeforeLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		p := newProducer(t, f, WithAggregation(false), WithOrdering(false), WithShardRateLimit(0, 0), WithLinger(time.Hour))
		synctest.Wait() // the shard map
		w := putN(t, p, 500, 500, 10)
		synctest.Wait()
		for i, o := range w.outcomes(t) {
			if o.Err != nil {
				t.Fatalf("record %d: %v", i, o.Err)
			}
		}
		f.mu.Lock()
		reqs := len(f.requests)
		f.mu.Unlock()
		if reqs != 1 {
			t.Errorf("%d requests, want 1 full one", reqs)
		}
		closeProducer(t, p)
	})
}

// Guards against requests over the PutRecords limits (500 entries, 5 MiB counting keys),
// which Kinesis refuses whole, and against needlessly small ones.
func TestBatchLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		p := newProducer(t, f, WithAggregation(false), WithOrdering(false), WithShardRateLimit(0, 0))
		w := putN(t, p, 1200, 100, 10)
		w.add(t, p, 60, 6, 200<<10) // 25 of these fill 5 MiB
		flush(t, p)
		checkDeliveredAnyOrder(t, f, w.want)
		checkOutcomes(t, f, w)
		f.mu.Lock()
		defer f.mu.Unlock()
		maxEntries, maxBytes := 0, 0
		for _, r := range f.requests {
			if r.entries > MaxBatchRecords || r.bytes > MaxBatchBytes {
				t.Errorf("request of %d entries and %d bytes", r.entries, r.bytes)
			}
			maxEntries, maxBytes = max(maxEntries, r.entries), max(maxBytes, r.bytes)
		}
		if maxEntries != MaxBatchRecords || maxBytes < MaxBatchBytes-(200<<10) {
			t.Errorf("largest request: %d entries, %d bytes; want full requests", maxEntries, maxBytes)
		}
		p.Close(context.Background())
	})
}

// Guards against aggregates exceeding the configured size, and the option being ignored.
func TestAggregationMaxSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		p := newProducer(t, f, WithAggregationMaxSize(1000))
		w := putN(t, p, 400, 10, 50)
		flush(t, p)
		checkDelivered(t, f, w.want)
		f.mu.Lock()
		for _, s := range f.stored {
			if len(s.data) > 1000 {
				t.Errorf("aggregate of %d bytes, limit 1000", len(s.data))
			}
		}
		n := len(f.stored)
		f.mu.Unlock()
		if n < 400*50/1000 {
			t.Errorf("%d Kinesis records: aggregates are smaller than they could be", n)
		}
		closeProducer(t, p)
	})
}

// Guards against the per-shard token buckets letting bursts through or not refilling: 300
// records at 100 records/s take the first 100 at once and 2 s for the rest.
func TestShardRateLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opt   Option
		size  int
		n     int
		takes time.Duration
	}{
		{"records", WithShardRateLimit(100, 0), 10, 300, 2 * time.Second},
		// The byte bucket holds at least the largest record: keep that at the rate here.
		{"bytes", func(c *config) { WithShardRateLimit(0, 10_000)(c); WithMaxRecordSize(10_000)(c) }, 1000, 30, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFake(1)
				p := newProducer(t, f, WithAggregation(false), WithOrdering(false), tc.opt, WithLinger(0))
				synctest.Wait()
				start := time.Now()
				w := putN(t, p, tc.n, 10, tc.size)
				flush(t, p)
				took := time.Since(start)
				checkDeliveredAnyOrder(t, f, w.want)
				if took < tc.takes || took > tc.takes+100*time.Millisecond {
					t.Errorf("took %v, want %v", took, tc.takes)
				}
				closeProducer(t, p)
			})
		})
	}
}

// Guards against the hot path corrupting data it does not own: Put must not modify the
// caller's slice.
func TestPutLeavesDataAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		p := newProducer(t, f)
		data := []byte("immutable payload")
		orig := bytes.Clone(data)
		r, err := p.Put(context.Background(), "k", data)
		if err != nil {
			t.Fatal(err)
		}
		p.Put(context.Background(), "k2", []byte("other"))
		if _, err := r.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, orig) {
			t.Errorf("data changed to %q", data)
		}
		closeProducer(t, p)
	})
}
