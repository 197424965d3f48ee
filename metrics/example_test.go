package metrics_test

import (
	"fmt"
	"os"

	"github.com/shardline/kinesis/metrics"
)

func ExampleMemory() {
	mem := metrics.NewMemory()
	var c metrics.Collector = mem // what a producer or consumer is given

	orders := metrics.Labels{Stream: "orders"}
	c.Add(metrics.ProducerRecordsSent, 3, orders)
	c.Add(metrics.ProducerRecordsSent, 2, orders)
	c.Set(metrics.ProducerQueueSize, 12, orders)
	for _, seconds := range []float64{0.25, 0.125, 0.5, 1} {
		c.Observe(metrics.ProducerFlushDuration, seconds, orders)
	}

	fmt.Println(mem.Counter(metrics.ProducerRecordsSent, orders))
	h := mem.Histogram(metrics.ProducerFlushDuration, orders)
	fmt.Printf("count=%d min=%v p50=%v max=%v\n", h.Count, h.Min, h.P50, h.Max)
	_ = mem.WriteJSON(os.Stdout)
	// Output:
	// 5
	// count=4 min=0.125 p50=0.25 max=1
	// {"counters":{"producer_records_sent_total{stream_name=orders}":5},"gauges":{"producer_queue_size{stream_name=orders}":12},"histograms":{"producer_flush_duration_seconds{stream_name=orders}":{"count":4,"sum":1.875,"min":0.125,"max":1,"mean":0.46875,"p50":0.25,"p95":1,"p99":1}}}
}

func ExampleMemory_SnapshotAndReset() {
	mem := metrics.NewMemory()
	l := metrics.Labels{Stream: "orders"}
	key := metrics.Key(metrics.ProducerRecordsSent, l)

	mem.Add(metrics.ProducerRecordsSent, 10, l)
	first := mem.SnapshotAndReset() // the first interval
	mem.Add(metrics.ProducerRecordsSent, 4, l)
	second := mem.SnapshotAndReset() // the second one

	fmt.Println(first.Counters[key], second.Counters[key], mem.Counter(metrics.ProducerRecordsSent, l))
	// Output: 10 4 0
}

func ExampleKey() {
	// Labels the catalog does not declare for a metric are left out; the rest come sorted.
	fmt.Println(metrics.Key(metrics.ProducerRecordsSent, metrics.Labels{Stream: "orders", Shard: "shardId-000000000000"}))
	fmt.Println(metrics.Key(metrics.ConsumerErrors, metrics.Labels{Stream: "orders", Shard: "shardId-000000000000", ErrorType: "ExpiredIteratorException"}))
	// Output:
	// producer_records_sent_total{stream_name=orders}
	// consumer_errors_total{error_type=ExpiredIteratorException,shard_id=shardId-000000000000,stream_name=orders}
}

func ExampleFanout() {
	dashboard, status := metrics.NewMemory(), metrics.NewMemory()
	c := metrics.Fanout(dashboard, nil, metrics.Nop{}, status) // nil and Nop are skipped

	c.Add(metrics.StreamReshardingEvents, 1, metrics.Labels{Stream: "orders"})
	fmt.Println(dashboard.Counter(metrics.StreamReshardingEvents, metrics.Labels{Stream: "orders"}),
		status.Counter(metrics.StreamReshardingEvents, metrics.Labels{Stream: "orders"}))
	// Output: 1 1
}
