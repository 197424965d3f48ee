package shardotel_test

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/shardline/kinesis/metrics"
	shardotel "github.com/shardline/kinesis/metrics/otel"
)

func ExampleNew() {
	ctx := context.Background()
	// In production the reader is a PeriodicReader around an exporter (OTLP, Prometheus).
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(ctx) }()

	c, err := shardotel.New(mp, shardotel.WithNamespace("shop"))
	if err != nil {
		fmt.Println(err)
		return
	}

	var collector metrics.Collector = c // hand it to a producer or consumer
	collector.Add(metrics.ProducerRecordsSent, 42, metrics.Labels{Stream: "orders"})
	collector.Observe(metrics.ProducerFlushDuration, 0.012, metrics.Labels{Stream: "orders"})

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		fmt.Println(err)
		return
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch data := m.Data.(type) {
			case metricdata.Sum[float64]:
				p := data.DataPoints[0]
				fmt.Printf("%s [%s] {%s} monotonic=%v %v\n", m.Name, m.Unit,
					p.Attributes.Encoded(attribute.DefaultEncoder()), data.IsMonotonic, p.Value)
			case metricdata.Histogram[float64]:
				p := data.DataPoints[0]
				fmt.Printf("%s [%s] {%s} count=%d sum=%v\n", m.Name, m.Unit,
					p.Attributes.Encoded(attribute.DefaultEncoder()), p.Count, p.Sum)
			}
		}
	}
	// Output:
	// shop.producer_records_sent_total [{record}] {stream_name=orders} monotonic=true 42
	// shop.producer_flush_duration_seconds [s] {stream_name=orders} count=1 sum=0.012
}
