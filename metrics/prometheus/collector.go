package shardprom

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardline/kinesis/internal/cfgerr"
	"github.com/shardline/kinesis/metrics"
)

// Collector is a [metrics.Collector] that exports the metrics catalog to a Prometheus
// registry. Create it with New. It is safe for concurrent use.
//
// Names outside [metrics.Catalog] are ignored, since there is no HELP text or label list to
// register them with; so are calls of the wrong kind (Add on a gauge), negative, NaN or
// infinite counter deltas and NaN or infinite gauge values and observations. None of them
// panics: metrics never take a producer or consumer down.
type Collector struct {
	reg    prometheus.Registerer
	vecs   vecs
	byName map[metrics.Name]*family // read-only after New: no lock on the hot path
}

// family is one catalog entry and the vec that exports it; exactly one vec field is set, and
// the matching children cache.
type family struct {
	desc    metrics.Desc
	keep    metrics.Labels // a field is "x" if the entry declares that label, "" if not
	counter *prometheus.CounterVec
	gauge   *prometheus.GaugeVec
	hist    *prometheus.HistogramVec

	counters  children[prometheus.Counter]
	gauges    children[prometheus.Gauge]
	observers children[prometheus.Observer]
}

// children caches a vec's children by label set. A vec finds a child by validating the label
// values as UTF-8 and hashing them byte by byte on every call; a map keyed by the Labels
// struct skips both (BenchmarkPrometheusAdd against BenchmarkPrometheusVecDirect: about a
// third cheaper with two labels). It holds one entry per series, as the vec does.
type children[T any] struct {
	mu sync.RWMutex
	m  map[metrics.Labels]T
}

func (c *children[T]) get(k metrics.Labels) (T, bool) {
	c.mu.RLock()
	t, ok := c.m[k]
	c.mu.RUnlock()
	return t, ok
}

func (c *children[T]) put(k metrics.Labels, t T) {
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[metrics.Labels]T)
	}
	c.m[k] = t
	c.mu.Unlock()
}

// key returns l with the fields the family does not declare cleared: the cache key.
func (f *family) key(l metrics.Labels) metrics.Labels {
	if f.keep.Stream == "" {
		l.Stream = ""
	}
	if f.keep.Shard == "" {
		l.Shard = ""
	}
	if f.keep.ErrorType == "" {
		l.ErrorType = ""
	}
	if f.keep.Operation == "" {
		l.Operation = ""
	}
	return l
}

// vecs is what New registers: one prometheus.Collector holding every vec, so registration is all or
// nothing and needs no rollback.
type vecs []prometheus.Collector

func (v vecs) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range v {
		c.Describe(ch)
	}
}

func (v vecs) Collect(ch chan<- prometheus.Metric) {
	for _, c := range v {
		c.Collect(ch)
	}
}

// New creates one vec per entry of [metrics.Catalog] (a CounterVec, GaugeVec or HistogramVec
// with the entry's HELP text and label names) and registers them with reg, as one
// prometheus.Collector. It never starts an HTTP server and never touches the global registry unless
// reg is prometheus.DefaultRegisterer: expose reg with promhttp.HandlerFor on a server you own.
//
// New returns a [*ConfigError] matching [ErrNilRegisterer] for a nil reg, and for bad options,
// a nil Option included, one [*ConfigError] per problem (joined); both match
// [ErrInvalidConfig]. If reg already holds a Collector with the same namespace and const labels, New
// returns an error wrapping the prometheus.AlreadyRegisteredError reg returned (use errors.As to get
// it); any other registration conflict, such as a metric of the same name registered by other
// code with different labels, comes back wrapped as well. New never panics.
func New(reg prometheus.Registerer, opts ...Option) (*Collector, error) {
	if r, ok := reg.(*prometheus.Registry); reg == nil || ok && r == nil {
		return nil, &ConfigError{Package: pkgName, Option: "reg", Err: ErrNilRegisterer,
			Reason: "nil Registerer (pass prometheus.DefaultRegisterer explicitly to use the global registry)"}
	}
	cfg := defaultConfig()
	for i, o := range opts {
		if o == nil {
			cfg.errs = append(cfg.errs, cfgerr.New(pkgName, fmt.Sprintf("opts[%d]", i), "nil Option"))
			continue
		}
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}

	c := &Collector{reg: reg, byName: make(map[metrics.Name]*family, len(metrics.Catalog))}
	for _, d := range metrics.Catalog {
		f := &family{desc: d, keep: keepMask(d.Labels)}
		name := string(d.Name)
		switch d.Kind {
		case metrics.Counter:
			f.counter = prometheus.NewCounterVec(prometheus.CounterOpts{
				Namespace: cfg.namespace, Name: name, Help: d.Help, ConstLabels: cfg.constLabels,
			}, d.Labels)
			c.vecs = append(c.vecs, f.counter)
		case metrics.Gauge:
			f.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Namespace: cfg.namespace, Name: name, Help: d.Help, ConstLabels: cfg.constLabels,
			}, d.Labels)
			c.vecs = append(c.vecs, f.gauge)
		case metrics.Histogram:
			f.hist = prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Namespace: cfg.namespace, Name: name, Help: d.Help, ConstLabels: cfg.constLabels,
				Buckets: cfg.bucketsFor(d),
			}, d.Labels)
			c.vecs = append(c.vecs, f.hist)
		default:
			continue // a kind this package does not know: nothing to export it as
		}
		c.byName[d.Name] = f
	}
	if err := reg.Register(c.vecs); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return nil, fmt.Errorf("shardprom: metrics with namespace %q and these const labels are already registered: %w",
				cfg.namespace, err)
		}
		return nil, fmt.Errorf("shardprom: register: %w", err)
	}
	return c, nil
}

// Unregister removes the collector's metrics from the registry New registered them with,
// so that a new Collector with the same namespace can take their place. It reports whether
// they were registered. Calls made after Unregister still update the vecs, which nothing
// exports any more.
func (c *Collector) Unregister() bool {
	return c.reg.Unregister(c.vecs)
}

// Add implements metrics.Collector for counters.
func (c *Collector) Add(name metrics.Name, delta float64, l metrics.Labels) {
	f := c.byName[name]
	if f == nil || f.counter == nil || !(delta >= 0) || math.IsInf(delta, 1) {
		return
	}
	k := f.key(l)
	m, ok := f.counters.get(k)
	if !ok {
		var buf [4]string
		var err error
		if m, err = f.counter.GetMetricWithLabelValues(f.values(&buf, k)...); err != nil {
			return
		}
		f.counters.put(k, m)
	}
	m.Add(delta)
}

// Set implements metrics.Collector for gauges.
func (c *Collector) Set(name metrics.Name, value float64, l metrics.Labels) {
	f := c.byName[name]
	if f == nil || f.gauge == nil || math.IsNaN(value) || math.IsInf(value, 0) {
		return
	}
	k := f.key(l)
	m, ok := f.gauges.get(k)
	if !ok {
		var buf [4]string
		var err error
		if m, err = f.gauge.GetMetricWithLabelValues(f.values(&buf, k)...); err != nil {
			return
		}
		f.gauges.put(k, m)
	}
	m.Set(value)
}

// Observe implements metrics.Collector for histograms.
func (c *Collector) Observe(name metrics.Name, value float64, l metrics.Labels) {
	f := c.byName[name]
	if f == nil || f.hist == nil || math.IsNaN(value) || math.IsInf(value, 0) {
		return
	}
	k := f.key(l)
	m, ok := f.observers.get(k)
	if !ok {
		var buf [4]string
		var err error
		if m, err = f.hist.GetMetricWithLabelValues(f.values(&buf, k)...); err != nil {
			return
		}
		f.observers.put(k, m)
	}
	m.Observe(value)
}

var _ metrics.Collector = (*Collector)(nil)

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

// values fills buf with the label values of l in the order the catalog declares them.
// Invalid UTF-8 (which client_golang refuses) is replaced rather than dropping the call.
func (f *family) values(buf *[4]string, l metrics.Labels) []string {
	lvs := buf[:0]
	for _, n := range f.desc.Labels {
		v := l.Value(n)
		if !utf8.ValidString(v) {
			v = strings.ToValidUTF8(v, "\uFFFD")
		}
		lvs = append(lvs, v)
	}
	return lvs
}
