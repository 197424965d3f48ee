package shardotel

import (
	"context"
	"strconv"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/shardline/kinesis/metrics"
)

// TestCacheIsBounded guards against the options cache growing without limit when a caller
// feeds unbounded label values, and against series past the bound being dropped.
func TestCacheIsBounded(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithCardinalityLimit(0))
	defer func() {
		if err := mp.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	c, err := New(mp)
	if err != nil {
		t.Fatal(err)
	}
	const extra = 10
	for i := range maxCachedSeries + extra {
		l := metrics.Labels{Stream: "s", Shard: "shardId-" + strconv.Itoa(i)}
		c.Add(metrics.ConsumerRecordsReceived, 1, l)
		c.Set(metrics.ConsumerLagRecords, 1, l)
	}
	in := c.byName[metrics.ConsumerRecordsReceived]
	if n := len(in.adds.m); n != maxCachedSeries {
		t.Errorf("counter cache holds %d series, want the bound %d", n, maxCachedSeries)
	}
	if n := len(c.byName[metrics.ConsumerLagRecords].records.m); n != maxCachedSeries {
		t.Errorf("gauge cache holds %d series, want the bound %d", n, maxCachedSeries)
	}

	// A series past the bound is still recorded, and recorded again on a second call.
	last := metrics.Labels{Stream: "s", Shard: "shardId-" + strconv.Itoa(maxCachedSeries+extra-1)}
	c.Add(metrics.ConsumerRecordsReceived, 1, last)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if m.Name != string(metrics.ConsumerRecordsReceived) {
			continue
		}
		s := m.Data.(metricdata.Sum[float64])
		if len(s.DataPoints) != maxCachedSeries+extra {
			t.Errorf("%d series exported, want %d", len(s.DataPoints), maxCachedSeries+extra)
		}
		for _, p := range s.DataPoints {
			if v, _ := p.Attributes.Value(metrics.LabelShard); v.AsString() == last.Shard && p.Value != 2 {
				t.Errorf("uncached series = %v, want 2", p.Value)
			}
		}
		return
	}
	t.Errorf("%s not exported", metrics.ConsumerRecordsReceived)
}
