package shardotel

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"runtime/debug"
	"slices"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"

	"github.com/shardline/kinesis/internal/cfgerr"
	"github.com/shardline/kinesis/metrics"
)

// pkgName is how errors name this package.
const pkgName = "shardotel"

// ErrInvalidConfig is matched (errors.Is) by every error New returns for a bad option or
// argument. It is one value shared by every Shardline package (producer.ErrInvalidConfig,
// consumer.ErrInvalidConfig and the others are the same).
var ErrInvalidConfig = cfgerr.ErrInvalidConfig

// ConfigError is the error New returns for each bad option or argument: Package
// ("shardotel"), Option ("mp", "WithNamespace", "WithBuckets", "opts[2]" for a nil Option,
// ...) and Reason. It matches [ErrInvalidConfig], and is the same type in every Shardline
// package. When several options are bad, New returns one per problem, joined with
// errors.Join.
type ConfigError = cfgerr.ConfigError

// ErrNilMeterProvider is matched by the error New returns when it is given no MeterProvider
// (a [*ConfigError] for "mp", which matches [ErrInvalidConfig] too). New never falls back to
// the global one: pass otel.GetMeterProvider() explicitly to use it.
var ErrNilMeterProvider = errors.New("shardotel: nil MeterProvider")

// Option configures a Collector; see New.
type Option func(*config)

// ScopeName is the default instrumentation scope (meter) name: this package's import path, as
// OpenTelemetry recommends for instrumentation libraries.
const ScopeName = "github.com/shardline/kinesis/metrics/otel"

// modulePath is the module whose version names the default scope version.
const modulePath = "github.com/shardline/kinesis"

type config struct {
	meterName    string
	meterVersion string
	namespace    string
	attrs        []attribute.KeyValue
	buckets      map[metrics.Name][]float64
	errs         []error // option misuse found while applying, reported by validate
}

func defaultConfig() config {
	return config{
		meterName:    ScopeName,
		meterVersion: moduleVersion(),
		buckets:      map[metrics.Name][]float64{},
	}
}

// moduleVersion returns the version of the Shardline module linked into this binary, or ""
// when it is unknown.
func moduleVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	return versionIn(bi)
}

// versionIn finds Shardline's version in bi: as the main module (a build of Shardline's own
// commands) or as a dependency, through its replacement if any. A development build's
// "(devel)" and a replacement by a local directory (no version) give "".
func versionIn(bi *debug.BuildInfo) string {
	m := &bi.Main
	if m.Path != modulePath {
		m = nil
		for _, d := range bi.Deps {
			if d.Path == modulePath {
				m = d
				break
			}
		}
	}
	if m == nil {
		return ""
	}
	if m.Replace != nil {
		m = m.Replace
	}
	if m.Version == "(devel)" {
		return ""
	}
	return m.Version
}

func (c *config) fail(option string, format string, args ...any) {
	c.errs = append(c.errs, cfgerr.New(pkgName, option, format, args...))
}

// WithMeterName sets the instrumentation scope name of the Meter New asks the MeterProvider
// for. The default is [ScopeName], this package's import path. Backends show it as the scope
// (otel_scope_name in Prometheus); views can select instruments by it. name must not be empty.
func WithMeterName(name string) Option {
	return func(c *config) {
		if name == "" {
			c.fail("WithMeterName", "empty name (the default is %q)", ScopeName)
			return
		}
		c.meterName = name
	}
}

// WithMeterVersion sets the instrumentation scope version. The default is the version of the
// Shardline module in the binary's build information, or none when that is unknown.
func WithMeterVersion(version string) Option {
	return func(c *config) { c.meterVersion = version }
}

// WithNamespace prefixes every instrument name with ns and a dot, so that
// producer_records_sent_total becomes ns.producer_records_sent_total. The default is no
// prefix. OpenTelemetry's Prometheus exporter turns the dot into an underscore, which gives the
// same names as the Prometheus collector's WithNamespace(ns). ns must start with a letter and
// hold only letters, digits, '_', '.', '-' and '/', and the longest resulting name must stay
// within OpenTelemetry's 255 characters.
//
// Two collectors with different namespaces never share an instrument. Two with the same meter
// name and namespace on one MeterProvider do share them, as OpenTelemetry defines: their
// values add up unless [WithConstAttributes] tells them apart.
func WithNamespace(ns string) Option {
	return func(c *config) { c.namespace = ns }
}

// WithConstAttributes adds attributes with fixed values to every measurement, for example the
// application or the consumer group. The default is none. Keys must be non-empty valid UTF-8
// and may not be one of the catalog's own labels (stream_name, shard_id, error_type,
// operation); string values must be valid UTF-8 (OTLP cannot carry anything else). Several
// calls add up, a later value winning for the same key. For attributes of the whole process
// (service.name, host) use the MeterProvider's Resource instead.
func WithConstAttributes(attrs ...attribute.KeyValue) Option {
	a := slices.Clone(attrs)
	return func(c *config) { c.attrs = append(c.attrs, a...) }
}

// WithBuckets replaces the explicit bucket boundaries advised for one histogram of the
// catalog. A View registered on the MeterProvider still overrides them. By default boundaries
// follow the metric's unit, the same ones the Prometheus collector uses:
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
// Without these, the SDK's default boundaries (0, 5, 10, 25, … 10000, meant for milliseconds)
// would put nearly every latency in seconds into one bucket, (0, 5].
//
// bounds must be non-empty and strictly increasing, without NaN or -Inf; a final +Inf is
// allowed and dropped, since OpenTelemetry always has an overflow bucket. name must be a
// histogram of [metrics.Catalog]. The slice is copied.
func WithBuckets(name metrics.Name, bounds []float64) Option {
	b := slices.Clone(bounds)
	if len(b) > 0 && math.IsInf(b[len(b)-1], 1) {
		b = b[:len(b)-1]
	}
	return func(c *config) {
		d, ok := metrics.Lookup(name)
		switch {
		case !ok:
			c.fail("WithBuckets", "%q is not in the metrics catalog", name)
		case d.Kind != metrics.Histogram:
			c.fail("WithBuckets", "%s is a %s, not a histogram", name, d.Kind)
		default:
			c.buckets[name] = b
		}
	}
}

// validate checks every option and their combinations at once and reports all problems.
func (c *config) validate() error {
	errs := slices.Clone(c.errs)
	if c.namespace != "" {
		if err := checkName(c.namespace); err != nil {
			errs = append(errs, cfgerr.New(pkgName, "WithNamespace", "%v", err))
		} else if n := len(c.namespace) + 1 + longestName(); n > maxNameLen {
			errs = append(errs, cfgerr.New(pkgName, "WithNamespace",
				"%q makes names of up to %d characters, over OpenTelemetry's %d", c.namespace, n, maxNameLen))
		}
	}
	for _, kv := range c.attrs {
		if err := checkAttribute(kv); err != nil {
			errs = append(errs, cfgerr.New(pkgName, "WithConstAttributes", "%v", err))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.buckets)) {
		if err := checkBuckets(c.buckets[name]); err != nil {
			errs = append(errs, cfgerr.New(pkgName, "WithBuckets", "%s: %v", name, err))
		}
	}
	return errors.Join(errs...)
}

// maxNameLen is OpenTelemetry's limit on instrument names.
const maxNameLen = 255

func longestName() int {
	n := 0
	for _, d := range metrics.Catalog {
		n = max(n, len(d.Name))
	}
	return n
}

// checkName applies OpenTelemetry's instrument name syntax, which the SDK would otherwise
// report only after creating the instrument.
func checkName(s string) error {
	for i, r := range s {
		letter := 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z'
		switch {
		case i == 0 && !letter:
			return fmt.Errorf("%q does not start with a letter", s)
		case !letter && !('0' <= r && r <= '9') && r != '_' && r != '.' && r != '-' && r != '/':
			return fmt.Errorf("%q holds %q; only letters, digits, '_', '.', '-' and '/' are allowed", s, r)
		}
	}
	return nil
}

func checkAttribute(kv attribute.KeyValue) error {
	k := string(kv.Key)
	switch {
	case k == "":
		return errors.New("empty attribute key")
	case !utf8.ValidString(k):
		return fmt.Errorf("key %q is not valid UTF-8", k)
	case k == metrics.LabelStream || k == metrics.LabelShard || k == metrics.LabelErrorType || k == metrics.LabelOperation:
		return fmt.Errorf("key %q is a label of the metrics catalog", k)
	}
	switch kv.Value.Type() {
	case attribute.STRING:
		if !utf8.ValidString(kv.Value.AsString()) {
			return fmt.Errorf("value of %q is not valid UTF-8", k)
		}
	case attribute.STRINGSLICE:
		for _, s := range kv.Value.AsStringSlice() {
			if !utf8.ValidString(s) {
				return fmt.Errorf("value of %q is not valid UTF-8", k)
			}
		}
	}
	return nil
}

// checkBuckets refuses what the SDK would silently ignore (unsorted bounds) or accept and
// then export as nonsense (NaN, infinities).
func checkBuckets(b []float64) error {
	if len(b) == 0 {
		return errors.New("no finite bucket bound")
	}
	for i, v := range b {
		switch {
		case math.IsNaN(v):
			return fmt.Errorf("bound %d is NaN", i)
		case math.IsInf(v, 0):
			return fmt.Errorf("bound %d is %v; only a final +Inf is allowed", i, v)
		case i > 0 && v <= b[i-1]:
			return fmt.Errorf("bounds not strictly increasing at %d (%v after %v)", i, v, b[i-1])
		}
	}
	return nil
}

// Default boundaries by unit; see WithBuckets. Keep them equal to the Prometheus collector's.
var (
	secondsBuckets      = []float64{0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30}
	recordsBuckets      = []float64{1, 2, 5, 10, 20, 50, 100, 200, 300, 400, 500}
	bytesBuckets        = []float64{256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 5 << 20, 10 << 20}
	millisecondsBuckets = []float64{10, 50, 100, 500, 1000, 5000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000, 21_600_000, 86_400_000}
)

// bucketsFor returns the boundaries advised for the histogram d: the WithBuckets ones, or the
// default for its unit, or nil (the SDK's defaults) for a unit the catalog does not use yet.
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
	return nil
}
