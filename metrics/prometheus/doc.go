// Package prometheus exports Shardline's metrics to Prometheus through client_golang, on a
// registry the caller owns.
//
//	reg := prom.NewRegistry() // prom is github.com/prometheus/client_golang/prometheus
//	collector, err := prometheus.New(reg,
//		prometheus.WithNamespace("shop"),
//		prometheus.WithConstLabels(prom.Labels{"consumer_group": "billing"}),
//	)
//	if err != nil {
//		return err
//	}
//	// Give collector to the producer or consumer, and serve reg on your own server:
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// New registers one counter, gauge or histogram vec for every entry of metrics.Catalog, with
// the catalog's HELP text and label names, as a single prom.Collector so that registration
// either fully succeeds or leaves the registry untouched. Series appear in the exposition once
// they are first written. The package never starts an HTTP server and never registers with the
// global registry on its own; pass prom.DefaultRegisterer to New to use that one.
//
// Several collectors share one registry when their namespaces or const labels differ; with
// equal ones New returns an error wrapping prom.AlreadyRegisteredError. Call
// [Collector.Unregister] to free a namespace.
//
// Calls for names outside the catalog, calls of the wrong kind and values Prometheus cannot
// take (negative counter deltas, NaN, infinities) are ignored rather than panicking. Histogram
// buckets follow the metric's unit and can be replaced per metric with [WithBuckets].
//
// A call costs one map lookup for the name and one for the label set (children are cached
// per label set, which saves client_golang's hashing and UTF-8 validation of label values on
// every call) and allocates nothing once the series exists.
package prometheus
