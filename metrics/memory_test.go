package metrics

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"sync"
	"testing"
	"time"
)

// TestMemoryConcurrentAccounting guards against lost or double-counted writes when writers
// race with snapshots and resets: every delta added must show up in exactly one of the
// SnapshotAndReset results or the final Snapshot, and no snapshot may show a half-written
// histogram.
func TestMemoryConcurrentAccounting(t *testing.T) {
	const (
		writers = 8
		perG    = 5000
	)
	m := NewMemory()
	streams := []Labels{
		{Stream: "a"},
		{Stream: "b", Shard: "undeclared-for-this-metric"},
		{Stream: "c", Operation: "PutRecords"},
	}

	var (
		writing  sync.WaitGroup
		readers  sync.WaitGroup
		done     = make(chan struct{})
		mu       sync.Mutex
		counted  float64
		observed uint64
		resets   int
	)
	tally := func(s Snapshot) {
		mu.Lock()
		defer mu.Unlock()
		for _, v := range s.Counters {
			counted += v
		}
		for _, h := range s.Histograms {
			observed += h.Count
		}
	}
	for g := range writers {
		writing.Go(func() {
			for i := range perG {
				l := streams[(g+i)%len(streams)]
				m.Add(ProducerRecordsSent, 1, l)
				m.Set(ProducerQueueSize, float64(i), l)
				m.Observe(ProducerFlushDuration, 1, l)
			}
		})
	}
	// One goroutine cuts intervals; one reads without resetting; one checks consistency of each
	// snapshot it sees.
	readers.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			s := m.SnapshotAndReset()
			checkWhole(t, s)
			tally(s)
			mu.Lock()
			resets++
			mu.Unlock()
		}
	})
	readers.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			checkWhole(t, m.Snapshot())
			_ = m.Counter(ProducerRecordsSent, streams[0])
			_ = m.Histogram(ProducerFlushDuration, streams[1])
		}
	})
	writing.Wait()
	close(done)
	readers.Wait()
	final := m.Snapshot()
	checkWhole(t, final)
	tally(final)

	const want = writers * perG
	if counted != want {
		t.Errorf("counters summed over %d resets + final = %v, want %d", resets, counted, want)
	}
	if observed != want {
		t.Errorf("histogram counts summed over %d resets + final = %d, want %d", resets, observed, want)
	}
	if resets == 0 {
		t.Log("no reset overlapped the writers; the test proved less than it should")
	}
}

// checkWhole fails if a snapshot shows a histogram whose aggregates disagree: every value
// observed in TestMemoryConcurrentAccounting is 1, so Sum must equal Count, and only the three
// stream series (with undeclared labels folded away) may exist.
func checkWhole(t *testing.T, s Snapshot) {
	t.Helper()
	for k, h := range s.Histograms {
		if h.Sum != float64(h.Count) || h.Min != 1 || h.Max != 1 || h.P99 != 1 {
			t.Errorf("torn histogram %s: %+v", k, h)
		}
	}
	for k, v := range s.Counters {
		if v != math.Trunc(v) || v <= 0 {
			t.Errorf("counter %s = %v, want a positive whole number", k, v)
		}
	}
	if len(s.Counters) > 3 || len(s.Gauges) > 3 || len(s.Histograms) > 3 {
		t.Errorf("more than 3 series per kind: %v", s.Counters)
	}
}

// TestMemoryReadingDoesNotReset guards against stats that reset when read, the trap STYLE.md
// warns about, and against snapshots that share maps with the collector.
func TestMemoryReadingDoesNotReset(t *testing.T) {
	m := NewMemory()
	l := Labels{Stream: "s"}
	m.Add(ProducerRecordsSent, 3, l)
	m.Observe(ProducerPutLatency, 0.25, l)

	first := m.Snapshot()
	first.Counters[Key(ProducerRecordsSent, l)] = 100 // must not reach the collector
	_ = m.Counter(ProducerRecordsSent, l)
	_ = m.Histogram(ProducerPutLatency, l)
	if err := m.WriteJSON(new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	second := m.Snapshot()
	if got := second.Counters[Key(ProducerRecordsSent, l)]; got != 3 {
		t.Errorf("after reads counter = %v, want 3", got)
	}
	if got := second.Histograms[Key(ProducerPutLatency, l)].Count; got != 1 {
		t.Errorf("after reads histogram count = %v, want 1", got)
	}

	m.Add(ProducerRecordsSent, 1, l)
	if got := second.Counters[Key(ProducerRecordsSent, l)]; got != 3 {
		t.Errorf("snapshot changed after a later write: %v", got)
	}
}

// TestMemoryReset guards against a Reset that leaves series behind or breaks the collector
// for later writes.
func TestMemoryReset(t *testing.T) {
	m := NewMemory()
	l := Labels{Stream: "s", Shard: "shardId-0"}
	m.Add(ConsumerRecordsReceived, 5, l)
	m.Set(ConsumerIteratorAge, 1200, l)
	m.Observe(ConsumerProcessingTime, 0.1, l)

	m.Reset()
	s := m.Snapshot()
	if len(s.Counters)+len(s.Gauges)+len(s.Histograms) != 0 {
		t.Fatalf("after Reset snapshot = %+v, want empty", s)
	}
	if m.Counter(ConsumerRecordsReceived, l) != 0 || m.Gauge(ConsumerIteratorAge, l) != 0 ||
		m.Histogram(ConsumerProcessingTime, l).Count != 0 {
		t.Fatal("readers still see data after Reset")
	}

	m.Add(ConsumerRecordsReceived, 2, l)
	m.Observe(ConsumerProcessingTime, 0.3, l)
	if got := m.Counter(ConsumerRecordsReceived, l); got != 2 {
		t.Errorf("counter after Reset and Add(2) = %v, want 2", got)
	}
	if got := m.Histogram(ConsumerProcessingTime, l); got.Count != 1 || got.Min != 0.3 {
		t.Errorf("histogram after Reset = %+v, want one 0.3 (old min must be gone)", got)
	}

	cut := m.SnapshotAndReset()
	if got := cut.Counters[Key(ConsumerRecordsReceived, l)]; got != 2 {
		t.Errorf("SnapshotAndReset counter = %v, want 2", got)
	}
	if got := m.Counter(ConsumerRecordsReceived, l); got != 0 {
		t.Errorf("counter after SnapshotAndReset = %v, want 0", got)
	}
}

// TestMemoryPercentilesExact guards against off-by-one ranks and floating-point rank errors
// (0.95*n computed in floats can round up to the next sample) while every value is kept.
func TestMemoryPercentilesExact(t *testing.T) {
	m := NewMemory()
	l := Labels{Stream: "s"}
	for _, v := range rand.Perm(1000) {
		m.Observe(ProducerBatchSize, float64(v+1), l)
	}
	got := m.Histogram(ProducerBatchSize, l)
	want := HistogramSummary{Count: 1000, Sum: 500500, Min: 1, Max: 1000, Mean: 500.5, P50: 500, P95: 950, P99: 990}
	if got != want {
		t.Errorf("summary of 1..1000 = %+v\nwant %+v", got, want)
	}

	m.Observe(ProducerPutLatency, 7, l)
	if got := m.Histogram(ProducerPutLatency, l); got.P50 != 7 || got.P99 != 7 || got.Mean != 7 {
		t.Errorf("summary of one value = %+v", got)
	}
}

// TestMemoryPercentilesSampled guards against a biased reservoir (keeping the first or the
// last values) and against unbounded growth: 100000 ascending values must give percentiles
// near the true ones from at most ReservoirSize samples. Tolerances are five standard errors
// of a 1024-sample quantile, so a correct reservoir fails about once in a million runs.
func TestMemoryPercentilesSampled(t *testing.T) {
	const n = 100_000
	m := NewMemory()
	l := Labels{Stream: "s"}
	for i := 1; i <= n; i++ {
		m.Observe(ProducerPutLatency, float64(i), l)
	}
	got := m.Histogram(ProducerPutLatency, l)
	if got.Count != n || got.Min != 1 || got.Max != n || got.Sum != n*(n+1)/2 {
		t.Errorf("exact aggregates wrong: %+v", got)
	}
	for _, c := range []struct {
		name      string
		got, want float64
		tol       float64 // fraction of n
	}{
		{"p50", got.P50, 0.50 * n, 5 * 0.0157},
		{"p95", got.P95, 0.95 * n, 5 * 0.0069},
		{"p99", got.P99, 0.99 * n, 5 * 0.0032},
	} {
		if math.Abs(c.got-c.want) > c.tol*n {
			t.Errorf("%s = %v, want %v ± %v", c.name, c.got, c.want, c.tol*n)
		}
	}

	m.mu.RLock()
	size := len(m.histograms[key(ProducerPutLatency, l)].d.sample)
	m.mu.RUnlock()
	if size != ReservoirSize {
		t.Errorf("reservoir holds %d samples, want %d", size, ReservoirSize)
	}
}

// TestMemoryJSONRoundTrip guards against a JSON form that loses data or does not decode back
// into a Snapshot, and against field names drifting from the documented lowercase layout.
func TestMemoryJSONRoundTrip(t *testing.T) {
	m := NewMemory()
	l := Labels{Stream: "orders", Shard: "shardId-000000000001", ErrorType: "ThrottlingException"}
	m.Add(ConsumerErrors, 2, l)
	m.Set(ConsumerLagRecords, 42, l)
	m.Observe(ConsumerProcessingTime, 0.5, l)
	m.Observe(ConsumerProcessingTime, 1.5, l)

	var buf bytes.Buffer
	if err := m.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	want := `{"counters":{"consumer_errors_total{error_type=ThrottlingException,shard_id=shardId-000000000001,stream_name=orders}":2},` +
		`"gauges":{"consumer_lag_records{shard_id=shardId-000000000001,stream_name=orders}":42},` +
		`"histograms":{"consumer_processing_time_seconds{shard_id=shardId-000000000001,stream_name=orders}":` +
		`{"count":2,"sum":2,"min":0.5,"max":1.5,"mean":1,"p50":0.5,"p95":1.5,"p99":1.5}}}` + "\n"
	if buf.String() != want {
		t.Errorf("WriteJSON =\n%s\nwant\n%s", buf.String(), want)
	}

	var back Snapshot
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if snap := m.Snapshot(); !reflect.DeepEqual(back, snap) {
		t.Errorf("round trip = %+v\nwant %+v", back, snap)
	}

	var empty bytes.Buffer
	if err := NewMemory().WriteJSON(&empty); err != nil || empty.String() != `{"counters":{},"gauges":{},"histograms":{}}`+"\n" {
		t.Errorf("empty WriteJSON = %q, %v; want empty objects, not null", empty.String(), err)
	}
}

// TestMemoryDropsInvalidValues guards against NaN, infinities and negative deltas getting in:
// they would make WriteJSON fail (encoding/json refuses NaN) and poison sums and minimums.
func TestMemoryDropsInvalidValues(t *testing.T) {
	m := NewMemory()
	l := Labels{Stream: "s"}
	m.Add(ProducerRecordsSent, -1, l)
	m.Add(ProducerRecordsSent, math.NaN(), l)
	m.Add(ProducerRecordsSent, math.Inf(1), l)
	m.Set(ProducerQueueSize, math.NaN(), l)
	m.Set(ProducerQueueSize, math.Inf(-1), l)
	m.Observe(ProducerPutLatency, math.NaN(), l)
	m.Observe(ProducerPutLatency, math.Inf(1), l)
	s := m.Snapshot()
	if len(s.Counters)+len(s.Gauges)+len(s.Histograms) != 0 {
		t.Errorf("invalid values recorded: %+v", s)
	}
	m.Add(ProducerRecordsSent, 0, l) // zero is a valid delta: it creates the series
	m.Set(ProducerQueueSize, -3, l)  // gauges may go negative
	if err := m.WriteJSON(new(bytes.Buffer)); err != nil {
		t.Errorf("WriteJSON: %v", err)
	}
	if _, ok := m.Snapshot().Counters[Key(ProducerRecordsSent, l)]; !ok || m.Gauge(ProducerQueueSize, l) != -3 {
		t.Error("valid zero delta or negative gauge dropped")
	}
}

// TestMemoryRecordsCallKind guards against Memory hiding an emitter's mistake: a call lands
// under the kind of the call, so a test can see Add used on a gauge name.
func TestMemoryRecordsCallKind(t *testing.T) {
	m := NewMemory()
	l := Labels{Stream: "s"}
	m.Add(ProducerQueueSize, 1, l)
	m.Observe(ProducerRecordsSent, 2, l)
	s := m.Snapshot()
	if _, ok := s.Counters[Key(ProducerQueueSize, l)]; !ok {
		t.Error("Add on a gauge name not under Counters")
	}
	if _, ok := s.Histograms[Key(ProducerRecordsSent, l)]; !ok {
		t.Error("Observe on a counter name not under Histograms")
	}
}

// TestHotPathsDoNotAllocate guards against an allocation sneaking into a call that producers
// and consumers make per record or per batch (a formatted key, a boxed label struct).
func TestHotPathsDoNotAllocate(t *testing.T) {
	l := Labels{Stream: "orders", Shard: "shardId-000000000001"}
	m := NewMemory()
	for i := range ReservoirSize { // let the reservoir reach its final size first
		m.Observe(ConsumerProcessingTime, float64(i), l)
	}
	m.Add(ConsumerRecordsReceived, 1, l)
	m.Set(ConsumerLagRecords, 1, l)
	for _, c := range []struct {
		name string
		c    Collector
	}{{"Nop", Nop{}}, {"Memory", m}, {"Fanout", Fanout(m, NewMemory())}} {
		if c.name == "Fanout" {
			c.c.Observe(ConsumerProcessingTime, 1, l) // create the second member's series
			c.c.Add(ConsumerRecordsReceived, 1, l)
			c.c.Set(ConsumerLagRecords, 1, l)
			for range ReservoirSize {
				c.c.Observe(ConsumerProcessingTime, 1, l)
			}
		}
		for _, call := range []struct {
			name string
			f    func()
		}{
			{"Add", func() { c.c.Add(ConsumerRecordsReceived, 1, l) }},
			{"Set", func() { c.c.Set(ConsumerLagRecords, 2, l) }},
			{"Observe", func() { c.c.Observe(ConsumerProcessingTime, 0.01, l) }},
		} {
			if n := testing.AllocsPerRun(200, call.f); n != 0 {
				t.Errorf("%s.%s allocates %v times per call, want 0", c.name, call.name, n)
			}
		}
	}
}

// Guards against a call log that forgets what operators look for, or grows without bound:
// slow and failed calls are kept with their labels, the last N only, and Reset clears them.
func TestMemoryCallLog(t *testing.T) {
	m := NewMemory(WithCallLog(100*time.Millisecond, 2))
	l := Labels{Stream: "s", Shard: "shard-1", Operation: "GetRecords"}
	m.Observe(KinesisCallDuration, 0.05, l) // fast: not kept
	m.Observe(KinesisCallDuration, 0.5, l)
	m.Observe(ProducerFlushDuration, 9, l) // not a call metric
	m.Observe(StoreCallDuration, 0.2, Labels{Stream: "s", Operation: "Checkpoint"})
	m.Observe(KinesisCallDuration, 0.3, Labels{Stream: "s", Operation: "PutRecords"})
	slow := m.SlowCalls()
	if len(slow) != 2 || slow[0].Operation != "Checkpoint" || slow[1].Operation != "PutRecords" || slow[1].Duration != 300*time.Millisecond {
		t.Errorf("slow calls = %+v, want the last two slow ones, oldest first", slow)
	}
	fl := l
	fl.ErrorType = "ProvisionedThroughputExceededException"
	m.Add(KinesisCallErrors, 1, fl)
	m.Add(ProducerRetries, 1, l) // not a call metric
	failed := m.FailedCalls()
	if len(failed) != 1 || failed[0].ErrorType != fl.ErrorType || failed[0].Shard != "shard-1" || failed[0].Time.IsZero() {
		t.Errorf("failed calls = %+v", failed)
	}
	m.Reset()
	if len(m.SlowCalls()) != 0 || len(m.FailedCalls()) != 0 {
		t.Error("Reset kept the call log")
	}
	if NewMemory().SlowCalls() != nil {
		t.Error("a Memory without a call log lists calls")
	}
}

// Guards against a README that forgets a metric: its metrics table names every catalog entry.
func TestREADMEListsCatalog(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range Catalog {
		if !bytes.Contains(readme, []byte("| `"+string(d.Name)+"` | "+d.Kind.String())) {
			t.Errorf("README's metrics table lacks %s", d.Name)
		}
	}
}
