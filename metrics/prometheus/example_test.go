package shardprom_test

import (
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/shardline/kinesis/metrics"
	shardprom "github.com/shardline/kinesis/metrics/prometheus"
)

func ExampleNew() {
	reg := prometheus.NewRegistry() // or prometheus.DefaultRegisterer, passed explicitly
	c, err := shardprom.New(reg, shardprom.WithNamespace("shop"))
	if err != nil {
		fmt.Println(err)
		return
	}
	// Serve reg yourself: http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	var collector metrics.Collector = c // hand it to a producer or consumer
	collector.Add(metrics.ProducerRecordsSent, 42, metrics.Labels{Stream: "orders"})

	families, _ := reg.Gather()
	for _, mf := range families {
		_, _ = expfmt.MetricFamilyToText(os.Stdout, mf)
	}
	// Output:
	// # HELP shop_producer_records_sent_total User records the producer delivered (acknowledged by Kinesis with a sequence number).
	// # TYPE shop_producer_records_sent_total counter
	// shop_producer_records_sent_total{stream_name="orders"} 42
}
