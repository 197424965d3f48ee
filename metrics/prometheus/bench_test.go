package shardprom_test

import (
	"testing"

	prom "github.com/prometheus/client_golang/prometheus"

	"github.com/shardline/kinesis/metrics"
	shardprom "github.com/shardline/kinesis/metrics/prometheus"
)

var benchLabels = metrics.Labels{Stream: "orders", Shard: "shardId-000000000001"}

// benchCollector keeps calls going through the interface, as producers and consumers make them.
var benchCollector metrics.Collector

func newBench(b *testing.B) metrics.Collector {
	c, err := shardprom.New(prom.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	return c
}

func BenchmarkPrometheusAdd(b *testing.B) {
	benchCollector = newBench(b)
	for b.Loop() {
		benchCollector.Add(metrics.ConsumerRecordsReceived, 1, benchLabels)
	}
}

func BenchmarkPrometheusSet(b *testing.B) {
	benchCollector = newBench(b)
	for b.Loop() {
		benchCollector.Set(metrics.ConsumerLagRecords, 1, benchLabels)
	}
}

func BenchmarkPrometheusObserve(b *testing.B) {
	benchCollector = newBench(b)
	for b.Loop() {
		benchCollector.Observe(metrics.ConsumerProcessingTime, 0.012, benchLabels)
	}
}

// BenchmarkPrometheusAddParallel measures contention: every goroutine adds to the same series.
func BenchmarkPrometheusAddParallel(b *testing.B) {
	c := newBench(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Add(metrics.ConsumerRecordsReceived, 1, benchLabels)
		}
	})
}

// BenchmarkFanoutPrometheusMemory measures the production-plus-status-page setup.
func BenchmarkFanoutPrometheusMemory(b *testing.B) {
	benchCollector = metrics.Fanout(newBench(b), metrics.NewMemory())
	for b.Loop() {
		benchCollector.Add(metrics.ConsumerRecordsReceived, 1, benchLabels)
	}
}

// BenchmarkPrometheusVecDirect is the baseline without Collector's children cache: the same
// counter updated through client_golang's WithLabelValues, as a hand-written exporter would.
func BenchmarkPrometheusVecDirect(b *testing.B) {
	vec := prom.NewCounterVec(prom.CounterOpts{Name: "x_total", Help: "x"}, []string{metrics.LabelStream, metrics.LabelShard})
	b.ReportAllocs()
	for b.Loop() {
		vec.WithLabelValues(benchLabels.Stream, benchLabels.Shard).Add(1)
	}
}
