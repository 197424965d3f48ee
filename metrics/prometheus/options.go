package shardprom

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardline/kinesis/internal/cfgerr"
	"github.com/shardline/kinesis/metrics"
)

// pkgName is how errors name this package.
const pkgName = "shardprom"

// ErrInvalidConfig is matched (errors.Is) by every error New returns for a bad option or
// argument. It is one value shared by every Shardline package (producer.ErrInvalidConfig,
// consumer.ErrInvalidConfig and the others are the same).
var ErrInvalidConfig = cfgerr.ErrInvalidConfig

// ConfigError is the error New returns for each bad option or argument: Package
// ("shardprom"), Option ("reg", "WithNamespace", "WithConstLabels", "WithBuckets", "opts[2]"
// for a nil Option) and Reason. It matches [ErrInvalidConfig], and is the same type in every
// Shardline package. When several options are bad, New returns one per problem, joined with
// errors.Join.
type ConfigError = cfgerr.ConfigError

// ErrNilRegisterer is matched by the error New returns when it is given no Registerer (a
// [*ConfigError] for "reg", which matches [ErrInvalidConfig] too). New never falls back to
// the global registry: pass prometheus.DefaultRegisterer explicitly to use it.
var ErrNilRegisterer = errors.New("shardprom: nil Registerer")

// Option configures a Collector; see New.
type Option func(*config)

type config struct {
	namespace   string
	constLabels prometheus.Labels
	buckets     map[metrics.Name][]float64
	errs        []error // option misuse found while applying (*ConfigError), reported by validate
}

func defaultConfig() config {
	return config{buckets: map[metrics.Name][]float64{}}
}

// WithNamespace prefixes every metric name with ns and an underscore, so that
// producer_records_sent_total becomes ns_producer_records_sent_total. The default is no prefix.
// ns must match [a-zA-Z_][a-zA-Z0-9_]*. Two collectors with different namespaces never clash on
// one registry; this is how one process exports several producers or consumers separately
// (const labels are the other way).
func WithNamespace(ns string) Option {
	return func(c *config) { c.namespace = ns }
}

// WithConstLabels adds labels with fixed values to every metric, for example the application
// or the consumer group. The default is none. Label names must be valid Prometheus label names
// not starting with "__", and may not be one of the catalog's own labels (stream_name,
// shard_id, error_type, operation); values must be valid UTF-8. Several calls merge, a later
// value winning for the same name. The map is copied.
func WithConstLabels(labels prometheus.Labels) Option {
	return func(c *config) {
		if c.constLabels == nil {
			c.constLabels = prometheus.Labels{}
		}
		for k, v := range labels {
			c.constLabels[k] = v
		}
	}
}

// WithBuckets replaces the bucket upper bounds of one histogram of the catalog. By default
// buckets follow the metric's unit:
//
//   - seconds (producer_flush_duration_seconds, producer_put_latency_seconds,
//     consumer_processing_time_seconds): 1, 2 and 5 steps from 1 ms to 30 s, which covers a
//     PutRecords round trip on one end and a put that waited through linger, backoff and
//     retries on the other;
//   - records (producer_batch_size): 1, 2, 5, 10, 20, 50, 100, 200, 300, 400 and 500, the
//     PutRecords entry limit, so full batches are told apart from nearly full ones;
//   - bytes: powers of four from 256 B to 4 MiB, then 5 and 10 MiB (record size limits);
//   - milliseconds: 10 ms to one day.
//
// buckets must be non-empty and strictly increasing, without NaN; a final +Inf is allowed
// and implied anyway. name must be a histogram of [metrics.Catalog]. The slice is copied.
func WithBuckets(name metrics.Name, buckets []float64) Option {
	b := append([]float64(nil), buckets...)
	return func(c *config) {
		d, ok := metrics.Lookup(name)
		switch {
		case !ok:
			c.errs = append(c.errs, cfgerr.New(pkgName, "WithBuckets", "%q is not in the metrics catalog", name))
		case d.Kind != metrics.Histogram:
			c.errs = append(c.errs, cfgerr.New(pkgName, "WithBuckets", "%s is a %s, not a histogram", name, d.Kind))
		default:
			c.buckets[name] = b
		}
	}
}

var namespaceRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// validate checks every option and their combinations at once and reports all problems, one
// *ConfigError each.
func (c *config) validate() error {
	errs := append([]error(nil), c.errs...)
	bad := func(opt, format string, args ...any) {
		errs = append(errs, cfgerr.New(pkgName, opt, format, args...))
	}
	if c.namespace != "" && !namespaceRE.MatchString(c.namespace) {
		bad("WithNamespace", "%q does not match [a-zA-Z_][a-zA-Z0-9_]*", c.namespace)
	}
	for _, name := range slices.Sorted(maps.Keys(c.constLabels)) {
		switch value := c.constLabels[name]; {
		case !namespaceRE.MatchString(name) || strings.HasPrefix(name, "__"):
			bad("WithConstLabels", "%q is not a valid label name", name)
		case name == metrics.LabelStream || name == metrics.LabelShard ||
			name == metrics.LabelErrorType || name == metrics.LabelOperation:
			bad("WithConstLabels", "%q is a label of the metrics catalog", name)
		case !utf8.ValidString(value):
			bad("WithConstLabels", "value of %q is not valid UTF-8", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.buckets)) {
		if err := checkBuckets(c.buckets[name]); err != nil {
			bad("WithBuckets", "%s: %v", name, err)
		}
	}
	return errors.Join(errs...)
}

// checkBuckets catches what client_golang would panic on.
func checkBuckets(b []float64) error {
	if len(b) == 0 || len(b) == 1 && math.IsInf(b[0], 1) {
		return errors.New("no finite bucket bound")
	}
	for i, v := range b {
		switch {
		case math.IsNaN(v):
			return fmt.Errorf("bound %d is NaN", i)
		case math.IsInf(v, 1) && i != len(b)-1:
			return fmt.Errorf("+Inf is bound %d, not the last", i)
		case i > 0 && v <= b[i-1]:
			return fmt.Errorf("bounds not strictly increasing at %d (%v after %v)", i, v, b[i-1])
		}
	}
	return nil
}

// Default buckets by unit; see WithBuckets.
var (
	secondsBuckets      = []float64{0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30}
	recordsBuckets      = []float64{1, 2, 5, 10, 20, 50, 100, 200, 300, 400, 500}
	bytesBuckets        = []float64{256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 5 << 20, 10 << 20}
	millisecondsBuckets = []float64{10, 50, 100, 500, 1000, 5000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000, 21_600_000, 86_400_000}
)

// bucketsFor returns the buckets of the histogram d: the WithBuckets ones, or the default
// for its unit, or client_golang's defaults for a unit the catalog does not use yet.
func (c *config) bucketsFor(d metrics.Desc) []float64 {
	if b, ok := c.buckets[d.Name]; ok {
		return b
	}
	switch d.Unit {
	case "seconds":
		return secondsBuckets
	case "records":
		return recordsBuckets
	case "bytes":
		return bytesBuckets
	case "milliseconds":
		return millisecondsBuckets
	}
	return prometheus.DefBuckets
}
