// Package metrics defines how Shardline reports what it does: the [Collector] interface that
// producers, consumers and checkpoint stores call, the [Catalog] of every metric they emit, and
// two collectors that need nothing beyond the standard library.
//
//	mem := metrics.NewMemory()
//	var c metrics.Collector = mem // hand c to the producer's or consumer's metrics option
//
//	c.Add(metrics.ProducerRecordsSent, 1, metrics.Labels{Stream: "orders"})
//	c.Observe(metrics.ProducerPutLatency, 0.012, metrics.Labels{Stream: "orders"})
//
//	sent := mem.Counter(metrics.ProducerRecordsSent, metrics.Labels{Stream: "orders"}) // 1
//	p95 := mem.Histogram(metrics.ProducerPutLatency, metrics.Labels{Stream: "orders"}).P95
//	err := mem.WriteJSON(os.Stdout)
//	// {"counters":{"producer_records_sent_total{stream_name=orders}":1},"gauges":{},...}
//
// # Collectors
//
//   - [Nop] does nothing and allocates nothing. It is the default wherever a Collector is
//     optional, so hot paths never test for nil.
//   - [Memory] keeps counters, gauges and histograms (with exact count, sum, min and max and
//     sampled percentiles) in memory. It can be read as a [Snapshot] or as JSON at any time and
//     reset at runtime; reading never resets. It suits tests, debugging and services that ship
//     their numbers through their own channel.
//   - Package shardprom (import path github.com/shardline/kinesis/metrics/prometheus) exports
//     the catalog to a Prometheus registry that the caller owns, and package shardotel
//     (github.com/shardline/kinesis/metrics/otel) records it through an OpenTelemetry
//     MeterProvider. They live in packages of their own so that only their users import
//     client_golang or OpenTelemetry, and are named so that they never collide with those.
//   - [Fanout] sends every call to several collectors, for example Prometheus for production
//     dashboards and Memory for a status page.
//
// Any other backend (StatsD, OpenTelemetry, Datadog) is a type with the three methods of
// Collector. Implementations must be safe for concurrent use and must not block: they run on
// the producer's and consumer's hot paths.
//
// # Names and labels
//
// Every metric Shardline emits is in [Catalog], with its kind, its label names and a help text;
// [Lookup] finds one entry. Labels are the small fixed set of [Labels]: stream, shard, error
// type and operation, never a partition key or a sequence number, so the number of series stays
// bounded by streams × shards × error codes.
package metrics
