// Package shardprom exports Shardline's metrics to Prometheus through client_golang, on a
// registry the caller owns. Its import path is github.com/shardline/kinesis/metrics/prometheus;
// its name is shardprom, so that it never collides with client_golang's package prometheus
// (franz-go names its plugin kprom for the same reason).
//
//	import (
//		"github.com/prometheus/client_golang/prometheus"
//		"github.com/prometheus/client_golang/prometheus/promhttp"
//		shardprom "github.com/shardline/kinesis/metrics/prometheus"
//	)
//
//	reg := prometheus.NewRegistry()
//	collector, err := shardprom.New(reg,
//		shardprom.WithNamespace("shop"),
//		shardprom.WithConstLabels(prometheus.Labels{"consumer_group": "billing"}),
//	)
//	if err != nil {
//		return err
//	}
//	p, err := producer.New(client, "orders", producer.WithMetrics(collector))
//	// ... and serve reg on your own server:
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// New registers one counter, gauge or histogram vec for every entry of metrics.Catalog, with
// the catalog's HELP text and label names, as a single prometheus.Collector so that registration
// either fully succeeds or leaves the registry untouched. Series appear in the exposition once
// they are first written. The package never starts an HTTP server and never registers with the
// global registry on its own; pass prometheus.DefaultRegisterer to New to use that one.
//
// Several collectors share one registry when their namespaces or const labels differ; with
// equal ones New returns an error wrapping prometheus.AlreadyRegisteredError. Call
// [Collector.Unregister] to free a namespace.
//
// Calls for names outside the catalog, calls of the wrong kind and values Prometheus cannot
// take (negative counter deltas, NaN, infinities) are ignored rather than panicking. Histogram
// buckets follow the metric's unit and can be replaced per metric with [WithBuckets].
//
// A call costs one map lookup for the name and one for the label set (children are cached
// per label set, which saves client_golang's hashing and UTF-8 validation of label values on
// every call) and allocates nothing once the series exists.
package shardprom
