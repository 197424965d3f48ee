package producer

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/shardline/kinesis/events"
	"github.com/shardline/kinesis/metrics"
)

// Guards against a producer_* metric of the catalog that is never emitted, or emitted with a
// value that does not mean what its Help says.
func TestMetricsEveryProducerName(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(2)
		f.block = make(chan struct{})
		f.inject = unavailableThenThrottledAndRefused
		m := metrics.NewMemory()
		l := metrics.Labels{Stream: testStream}
		p := newProducer(t, f, WithMetrics(m), WithAggregation(false), WithOrdering(false))
		w := putN(t, p, 40, 40, 25)
		synctest.Wait()
		if got := m.Gauge(metrics.ProducerQueueSize, l); got != 40 {
			t.Errorf("queue size gauge %v while 40 records wait, want 40", got)
		}
		queued := 0
		for i := range w.datas {
			queued += len(w.keys[i]) + len(w.datas[i])
		}
		if got := m.Gauge(metrics.ProducerQueueBytes, l); got != float64(queued) {
			t.Errorf("queue bytes gauge %v, want %d", got, queued)
		}
		close(f.block)
		if n := flushFailing(t, p); n != 1 {
			t.Errorf("Flush reports %d failed records, want the one refused", n)
		}
		closeProducer(t, p)

		delivered, dataBytes := 0, 0
		for i, o := range w.outcomes(t) {
			if o.Err == nil {
				delivered++
				dataBytes += len(w.datas[i])
			}
		}
		st := p.Stats()
		withType := func(code string) metrics.Labels { x := l; x.ErrorType = code; return x }
		for _, c := range []struct {
			name   metrics.Name
			labels metrics.Labels
			want   float64
		}{
			{metrics.ProducerRecordsSent, l, float64(delivered)},
			{metrics.ProducerBytesSent, l, float64(dataBytes)},
			{metrics.ProducerKinesisRecordsSent, l, float64(f.kinesisRecords())},
			{metrics.ProducerErrors, withType("ServiceUnavailable"), 1},
			{metrics.ProducerErrors, withType(CodeThroughputExceeded), 1},
			{metrics.ProducerErrors, withType("Refused"), 1},
			{metrics.ProducerThrottles, l, 1},
			{metrics.ProducerRetries, l, float64(st.Retries)},
			{metrics.ProducerRecordsFailed, withType("Refused"), 1},
		} {
			if got := m.Counter(c.name, c.labels); got != c.want {
				t.Errorf("%s = %v, want %v", metrics.Key(c.name, c.labels), got, c.want)
			}
		}
		if st.Retries < 2 || delivered != 39 {
			t.Errorf("stats %+v, %d delivered: the scenario did not play out", st, delivered)
		}
		for _, h := range []struct {
			name metrics.Name
			want uint64
		}{
			{metrics.ProducerBatchSize, uint64(st.Requests)},
			{metrics.ProducerFlushDuration, uint64(st.Requests)},
			{metrics.ProducerPutLatency, uint64(delivered)},
		} {
			if got := m.Histogram(h.name, l).Count; got != h.want {
				t.Errorf("%s observed %d times, want %d", h.name, got, h.want)
			}
		}
		if got := m.Histogram(metrics.ProducerBatchSize, l).Sum; got != float64(40+40+1) {
			t.Errorf("batch sizes sum to %v, want 81 entries sent (40, all 40 again, the throttled one)", got)
		}
		for _, g := range []metrics.Name{metrics.ProducerQueueSize, metrics.ProducerQueueBytes} {
			if got := m.Gauge(g, l); got != 0 {
				t.Errorf("%s = %v after Close, want 0", g, got)
			}
		}
		snap := m.Snapshot()
		for _, d := range metrics.Catalog {
			if !strings.HasPrefix(string(d.Name), "producer_") {
				continue
			}
			found := false
			for _, series := range []map[string]float64{snap.Counters, snap.Gauges} {
				for k := range series {
					found = found || strings.HasPrefix(k, string(d.Name)+"{")
				}
			}
			for k := range snap.Histograms {
				found = found || strings.HasPrefix(k, string(d.Name)+"{")
			}
			if !found {
				t.Errorf("%s never emitted", d.Name)
			}
		}
	})
}

// The no-op default costs nothing per record; check Put stays within one allocation when
// records are only accepted (the rest of the pipeline is measured by the benchmarks).
// With a listener attached Put allocates no more than without, as long as Put's context
// carries no event attributes (a listener cost an allocation per record: a variable whose
// address only the rare branch took was moved to the heap on every call).
func TestPutAllocations(t *testing.T) {
	measure := func(opts ...Option) float64 {
		f := newFake(1)
		f.block = make(chan struct{})
		p := newProducer(t, f, append([]Option{WithBufferLimits(1_000_000, 1<<30)}, opts...)...)
		data := []byte("0123456789")
		allocs := testing.AllocsPerRun(1000, func() {
			if _, err := p.Put(context.Background(), "some-key", data); err != nil {
				t.Fatal(err)
			}
		})
		close(f.block)
		closeProducer(t, p)
		return allocs
	}
	plain := measure()
	if plain > 1.05 {
		t.Errorf("Put allocates %.2f times per record, want at most 1 (the Result)", plain)
	}
	if listened := measure(WithListener(events.NewSummary(10))); listened > plain+0.05 {
		t.Errorf("with a listener Put allocates %.2f times per record, %.2f without", listened, plain)
	}
}
