package shardotel

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/shardline/kinesis/metrics"
)

// Collector is a [metrics.Collector] that records the metrics catalog with OpenTelemetry
// instruments from a MeterProvider the caller owns. Create it with New. It is safe for
// concurrent use.
//
// Names outside [metrics.Catalog] are ignored, since there is no instrument for them; so are
// calls of the wrong kind (Add on a gauge), negative, NaN or infinite counter deltas and NaN
// or infinite gauge values and observations. None of them panics: metrics never take a
// producer or consumer down.
type Collector struct {
	byName map[metrics.Name]*instrument // read-only after New: no lock on the hot path
}

// instrument is one catalog entry and the OpenTelemetry instrument that records it; exactly
// one of counter, gauge and hist is set, and the matching options cache is used.
type instrument struct {
	desc    metrics.Desc
	keep    metrics.Labels // a field is "x" if the entry declares that label, "" if not
	consts  []attribute.KeyValue
	counter metric.Float64Counter
	gauge   metric.Float64Gauge
	hist    metric.Float64Histogram

	adds    optionCache[metric.AddOption]    // counter
	records optionCache[metric.RecordOption] // gauge and histogram
}

// maxCachedSeries bounds each instrument's options cache. The catalog's labels keep series
// counts far below it (streams × shards × error codes); should a caller exceed it anyway,
// further label sets are still recorded, at the cost of building their attribute set per
// call, and the memory the cache holds stays bounded. The SDK's own default cardinality limit
// is 2000 series per instrument.
const maxCachedSeries = 4096

// optionCache maps a label set to the measurement options that carry its attribute.Set,
// ready to pass to the instrument. Building an attribute.Set sorts and copies its attributes,
// and passing an option through a variadic interface call allocates its slice; caching the
// slice makes a call on a known series allocation-free in this package.
type optionCache[O any] struct {
	mu sync.RWMutex
	m  map[metrics.Labels][]O
}

func (c *optionCache[O]) get(k metrics.Labels) ([]O, bool) {
	c.mu.RLock()
	o, ok := c.m[k]
	c.mu.RUnlock()
	return o, ok
}

func (c *optionCache[O]) put(k metrics.Labels, o []O) {
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[metrics.Labels][]O)
	}
	if len(c.m) < maxCachedSeries {
		c.m[k] = o
	}
	c.mu.Unlock()
}

// New creates one instrument per entry of [metrics.Catalog] from a Meter of mp: a
// Float64Counter for a counter, a synchronous Float64Gauge for a gauge and a
// Float64Histogram for a histogram, named after the entry (see [WithNamespace]), with its help
// text as description and its unit in UCUM (see [Unit]). Histograms advise explicit bucket
// boundaries (see [WithBuckets]).
//
// New uses mp and nothing else: never the global MeterProvider unless mp is
// otel.GetMeterProvider(), passed explicitly. It starts no goroutine and no exporter; those
// belong to mp, which the caller configures and shuts down.
//
// New returns a [*ConfigError] matching [ErrNilMeterProvider] for a nil mp, and for bad
// options, a nil Option included, one [*ConfigError] per problem (joined); both match
// [ErrInvalidConfig]. An error mp returns while
// creating an instrument (a View that cannot apply, say) is returned wrapped. New never
// panics.
func New(mp metric.MeterProvider, opts ...Option) (*Collector, error) {
	if v := reflect.ValueOf(mp); mp == nil || v.Kind() == reflect.Pointer && v.IsNil() {
		return nil, &ConfigError{Package: pkgName, Option: "mp", Err: ErrNilMeterProvider,
			Reason: "nil MeterProvider (pass otel.GetMeterProvider() explicitly to use the global one)"}
	}
	cfg := defaultConfig()
	for i, o := range opts {
		if o == nil {
			cfg.fail(fmt.Sprintf("opts[%d]", i), "nil Option")
			continue
		}
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}

	var meterOpts []metric.MeterOption
	if cfg.meterVersion != "" {
		meterOpts = append(meterOpts, metric.WithInstrumentationVersion(cfg.meterVersion))
	}
	meter := mp.Meter(cfg.meterName, meterOpts...)

	c := &Collector{byName: make(map[metrics.Name]*instrument, len(metrics.Catalog))}
	for _, d := range metrics.Catalog {
		in := &instrument{desc: d, keep: keepMask(d.Labels), consts: cfg.attrs}
		name := string(d.Name)
		if cfg.namespace != "" {
			name = cfg.namespace + "." + name
		}
		desc, unit := metric.WithDescription(d.Help), metric.WithUnit(Unit(d.Unit))
		var err error
		switch d.Kind {
		case metrics.Counter:
			in.counter, err = meter.Float64Counter(name, desc, unit)
		case metrics.Gauge:
			in.gauge, err = meter.Float64Gauge(name, desc, unit)
		case metrics.Histogram:
			hopts := []metric.Float64HistogramOption{desc, unit}
			if b := cfg.bucketsFor(d); b != nil {
				hopts = append(hopts, metric.WithExplicitBucketBoundaries(b...))
			}
			in.hist, err = meter.Float64Histogram(name, hopts...)
		default:
			continue // a kind this package does not know: nothing to record it with
		}
		if err != nil {
			return nil, fmt.Errorf("shardotel: create %s %s: %w", d.Kind, name, err)
		}
		c.byName[d.Name] = in
	}
	return c, nil
}

// bg is the context of every measurement: the Collector interface carries none, and
// measurements need none (no span to take exemplars from).
var bg = context.Background()

// Add implements metrics.Collector for counters.
func (c *Collector) Add(name metrics.Name, delta float64, l metrics.Labels) {
	in := c.byName[name]
	if in == nil || in.counter == nil || !(delta >= 0) || math.IsInf(delta, 1) {
		return
	}
	k := in.key(l)
	o, ok := in.adds.get(k)
	if !ok {
		o = []metric.AddOption{metric.WithAttributeSet(in.attributes(k))}
		in.adds.put(k, o)
	}
	in.counter.Add(bg, delta, o...)
}

// Set implements metrics.Collector for gauges.
func (c *Collector) Set(name metrics.Name, value float64, l metrics.Labels) {
	in := c.byName[name]
	if in == nil || in.gauge == nil || math.IsNaN(value) || math.IsInf(value, 0) {
		return
	}
	in.gauge.Record(bg, value, in.recordOptions(l)...)
}

// Observe implements metrics.Collector for histograms.
func (c *Collector) Observe(name metrics.Name, value float64, l metrics.Labels) {
	in := c.byName[name]
	if in == nil || in.hist == nil || math.IsNaN(value) || math.IsInf(value, 0) {
		return
	}
	in.hist.Record(bg, value, in.recordOptions(l)...)
}

var _ metrics.Collector = (*Collector)(nil)

func (in *instrument) recordOptions(l metrics.Labels) []metric.RecordOption {
	k := in.key(l)
	o, ok := in.records.get(k)
	if !ok {
		o = []metric.RecordOption{metric.WithAttributeSet(in.attributes(k))}
		in.records.put(k, o)
	}
	return o
}

// keepMask marks the Labels fields that names declares.
func keepMask(names []string) metrics.Labels {
	var k metrics.Labels
	for _, n := range names {
		switch n {
		case metrics.LabelStream:
			k.Stream = "x"
		case metrics.LabelShard:
			k.Shard = "x"
		case metrics.LabelErrorType:
			k.ErrorType = "x"
		case metrics.LabelOperation:
			k.Operation = "x"
		}
	}
	return k
}

// key returns l with the fields the entry does not declare cleared: the cache key, so calls
// that differ only in undeclared labels share one series.
func (in *instrument) key(l metrics.Labels) metrics.Labels {
	if in.keep.Stream == "" {
		l.Stream = ""
	}
	if in.keep.Shard == "" {
		l.Shard = ""
	}
	if in.keep.ErrorType == "" {
		l.ErrorType = ""
	}
	if in.keep.Operation == "" {
		l.Operation = ""
	}
	return l
}

// attributes builds the attribute set of one series: the constant attributes and every label
// the catalog declares for the entry, empty values included, so an instrument's series all
// carry the same keys (as the Prometheus collector's do). Invalid UTF-8, which OTLP cannot
// carry and would fail a whole export on, is replaced rather than dropping the call.
func (in *instrument) attributes(k metrics.Labels) attribute.Set {
	kvs := make([]attribute.KeyValue, 0, len(in.consts)+len(in.desc.Labels))
	kvs = append(kvs, in.consts...)
	for _, n := range in.desc.Labels {
		v := k.Value(n)
		if !utf8.ValidString(v) {
			v = strings.ToValidUTF8(v, "\uFFFD")
		}
		kvs = append(kvs, attribute.String(n, v))
	}
	return attribute.NewSet(kvs...)
}
