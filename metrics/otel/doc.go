// Package shardotel records Shardline's metrics with OpenTelemetry, through a MeterProvider
// the caller owns.
//
//	// sdkmetric is go.opentelemetry.io/otel/sdk/metric; exp is any exporter or reader
//	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
//	defer mp.Shutdown(ctx)
//
//	collector, err := shardotel.New(mp,
//		shardotel.WithNamespace("shop"),
//		shardotel.WithConstAttributes(attribute.String("consumer_group", "billing")),
//	)
//	if err != nil {
//		return err
//	}
//	// Give collector to the producer or consumer.
//
// New creates one instrument for every entry of metrics.Catalog, once: a Float64Counter for a
// counter, a synchronous Float64Gauge for a gauge, a Float64Histogram for a histogram. Each
// is named after the entry, described by its help text and carries its unit in UCUM ("s",
// "ms", "By", "{record}"; see [Unit]). Measurements carry the labels the catalog declares for
// the metric as attributes (stream_name, shard_id, error_type, operation; never a partition
// key) plus any [WithConstAttributes]. Histograms advise bucket boundaries that suit their
// unit, which [WithBuckets] replaces per metric and a View on the MeterProvider overrides.
//
// The package uses the MeterProvider it is given and nothing else: it never reads or sets the
// global one (pass otel.GetMeterProvider() to New to use that), and starts no goroutine,
// exporter or server. It imports only the OpenTelemetry API (go.opentelemetry.io/otel/metric
// and /attribute), not the SDK, and the core packages import none of it: only programs that
// import this package link OpenTelemetry in.
//
// Calls for names outside the catalog, calls of the wrong kind and values a counter cannot
// take (negative deltas, NaN, infinities) are ignored rather than panicking. A call costs one
// map lookup for the name and one for the label set: the attribute set of each series is
// built once and cached (bounded per instrument), so this package allocates nothing per call
// on a known series.
//
// # Package name
//
// The directory is metrics/otel, but the package is called shardotel: a user's code almost
// always imports go.opentelemetry.io/otel too, and two packages named otel would force one of
// them to be renamed at every import. franz-go's plugins (kotel, kprom) avoid the same
// collision; kotel itself is taken by franz-go, and a service that bridges Kafka and Kinesis
// may import both.
package shardotel
