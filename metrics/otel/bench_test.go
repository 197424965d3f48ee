package shardotel_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/shardline/kinesis/metrics"
	shardotel "github.com/shardline/kinesis/metrics/otel"
)

// benchLabels is what a consumer passes per shard, as in the other collectors' benchmarks.
var benchLabels = metrics.Labels{Stream: "orders", Shard: "shardId-000000000001"}

// benchCollector keeps calls going through the interface, as producers and consumers make them.
var benchCollector metrics.Collector

// newBench returns a Collector over an SDK MeterProvider with a ManualReader: the SDK's
// aggregation cost included, no export.
func newBench(b *testing.B) metrics.Collector {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	c, err := shardotel.New(mp)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	return c
}

func BenchmarkOTelAdd(b *testing.B) {
	benchCollector = newBench(b)
	for b.Loop() {
		benchCollector.Add(metrics.ConsumerRecordsReceived, 1, benchLabels)
	}
}

func BenchmarkOTelSet(b *testing.B) {
	benchCollector = newBench(b)
	for b.Loop() {
		benchCollector.Set(metrics.ConsumerLagRecords, 1, benchLabels)
	}
}

func BenchmarkOTelObserve(b *testing.B) {
	benchCollector = newBench(b)
	for b.Loop() {
		benchCollector.Observe(metrics.ConsumerProcessingTime, 0.012, benchLabels)
	}
}

// BenchmarkOTelAddParallel measures contention: every goroutine adds to the same series.
func BenchmarkOTelAddParallel(b *testing.B) {
	c := newBench(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Add(metrics.ConsumerRecordsReceived, 1, benchLabels)
		}
	})
}

// BenchmarkOTelAddNoopProvider is this package's own cost: the SDK replaced by the API's
// no-op provider.
func BenchmarkOTelAddNoopProvider(b *testing.B) {
	c, err := shardotel.New(noop.NewMeterProvider())
	if err != nil {
		b.Fatal(err)
	}
	benchCollector = c
	b.ReportAllocs()
	for b.Loop() {
		benchCollector.Add(metrics.ConsumerRecordsReceived, 1, benchLabels)
	}
}

// BenchmarkOTelCounterDirect is the baseline without Collector: a hand-written exporter
// calling the SDK counter with metric.WithAttributes per call, as its documentation shows.
func BenchmarkOTelCounterDirect(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	counter, err := mp.Meter("bench").Float64Counter("x_total")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		counter.Add(ctx, 1, metric.WithAttributes(
			attribute.String(metrics.LabelStream, benchLabels.Stream),
			attribute.String(metrics.LabelShard, benchLabels.Shard)))
	}
}
