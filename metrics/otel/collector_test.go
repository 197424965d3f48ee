package shardotel_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/shardline/kinesis/metrics"
	shardotel "github.com/shardline/kinesis/metrics/otel"
)

// every carries all four labels, so each metric gets exactly what the catalog declares.
var every = metrics.Labels{
	Stream:    "orders",
	Shard:     "shardId-000000000001",
	ErrorType: "InternalFailure",
	Operation: "PutRecords",
}

// Values emitAll records, one per kind, so a mix-up of kinds shows as a wrong value.
const (
	counterValue   = 3
	gaugeValue     = 7
	histogramValue = 0.25
)

// emitAll sends one call of the right kind for every catalog entry.
func emitAll(c metrics.Collector) {
	for _, d := range metrics.Catalog {
		switch d.Kind {
		case metrics.Counter:
			c.Add(d.Name, counterValue, every)
		case metrics.Gauge:
			c.Set(d.Name, gaugeValue, every)
		case metrics.Histogram:
			c.Observe(d.Name, histogramValue, every)
		}
	}
}

// newProvider returns an SDK MeterProvider read by a ManualReader, shut down with the test.
func newProvider(t *testing.T, opts ...sdkmetric.Option) (*sdkmetric.MeterProvider, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(append([]sdkmetric.Option{sdkmetric.WithReader(reader)}, opts...)...)
	t.Cleanup(func() {
		if err := mp.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return mp, reader
}

func newCollector(t *testing.T, mp metric.MeterProvider, opts ...shardotel.Option) *shardotel.Collector {
	t.Helper()
	c, err := shardotel.New(mp, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// collected is one instrument as a reader exported it.
type collected struct {
	scope metricdata.ScopeMetrics
	metricdata.Metrics
}

// collect reads every metric of reader by instrument name; a name exported twice fails.
func collect(t *testing.T, reader *sdkmetric.ManualReader) map[string]collected {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]collected{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if _, dup := out[m.Name]; dup {
				t.Errorf("%s exported by two scopes", m.Name)
			}
			out[m.Name] = collected{scope: sm, Metrics: m}
		}
	}
	return out
}

// sumOf returns the only data point of a float64 counter.
func sumOf(t *testing.T, m collected) metricdata.DataPoint[float64] {
	t.Helper()
	s, ok := m.Data.(metricdata.Sum[float64])
	if !ok || len(s.DataPoints) != 1 {
		t.Fatalf("%s: data %T, want a float64 Sum with one point", m.Name, m.Data)
	}
	return s.DataPoints[0]
}

// wantAttrs is the attribute set a metric should carry for labels l: its declared labels
// plus extra.
func wantAttrs(d metrics.Desc, l metrics.Labels, extra ...attribute.KeyValue) attribute.Set {
	kvs := slices.Clone(extra)
	for _, n := range d.Labels {
		kvs = append(kvs, attribute.String(n, l.Value(n)))
	}
	return attribute.NewSet(kvs...)
}

// TestWholeCatalog guards against a catalog entry that is not recorded, or recorded as the
// wrong instrument kind, with the wrong unit, description, attributes or value, as an
// OpenTelemetry reader actually exports it.
func TestWholeCatalog(t *testing.T) {
	mp, reader := newProvider(t)
	app := attribute.String("app", "checkout")
	c := newCollector(t, mp, shardotel.WithNamespace("shop"), shardotel.WithConstAttributes(app))
	emitAll(c)
	got := collect(t, reader)

	for _, d := range metrics.Catalog {
		name := "shop." + string(d.Name)
		m, ok := got[name]
		if !ok {
			t.Errorf("%s not exported", name)
			continue
		}
		if m.scope.Scope.Name != shardotel.ScopeName {
			t.Errorf("%s: scope %q, want %q", name, m.scope.Scope.Name, shardotel.ScopeName)
		}
		if m.Description != d.Help {
			t.Errorf("%s: description %q, want %q", name, m.Description, d.Help)
		}
		if m.Unit != wantUnit[d.Unit] {
			t.Errorf("%s: unit %q, want %q", name, m.Unit, wantUnit[d.Unit])
		}
		want := wantAttrs(d, every, app)
		switch d.Kind {
		case metrics.Counter:
			s, ok := m.Data.(metricdata.Sum[float64])
			if !ok || !s.IsMonotonic || s.Temporality != metricdata.CumulativeTemporality || len(s.DataPoints) != 1 {
				t.Errorf("%s: data %T (monotonic %v, temporality %v, %d points), want a monotonic cumulative float64 Sum with one point",
					name, m.Data, s.IsMonotonic, s.Temporality, len(s.DataPoints))
				continue
			}
			if p := s.DataPoints[0]; p.Value != counterValue || !p.Attributes.Equals(&want) {
				t.Errorf("%s = %v %v, want %v %v", name, p.Value, p.Attributes.ToSlice(), counterValue, want.ToSlice())
			}
		case metrics.Gauge:
			g, ok := m.Data.(metricdata.Gauge[float64])
			if !ok || len(g.DataPoints) != 1 {
				t.Errorf("%s: data %T with %d points, want a float64 Gauge with one point", name, m.Data, len(g.DataPoints))
				continue
			}
			if p := g.DataPoints[0]; p.Value != gaugeValue || !p.Attributes.Equals(&want) {
				t.Errorf("%s = %v %v, want %v %v", name, p.Value, p.Attributes.ToSlice(), gaugeValue, want.ToSlice())
			}
		case metrics.Histogram:
			h, ok := m.Data.(metricdata.Histogram[float64])
			if !ok || len(h.DataPoints) != 1 {
				t.Errorf("%s: data %T with %d points, want a float64 Histogram with one point", name, m.Data, len(h.DataPoints))
				continue
			}
			if p := h.DataPoints[0]; p.Count != 1 || p.Sum != histogramValue || !p.Attributes.Equals(&want) {
				t.Errorf("%s: count %d sum %v %v, want 1, %v, %v", name, p.Count, p.Sum, p.Attributes.ToSlice(), histogramValue, want.ToSlice())
			}
		default:
			t.Errorf("%s: catalog kind %v has no test", name, d.Kind)
		}
	}
	if len(got) != len(metrics.Catalog) {
		t.Errorf("%d metrics exported, want the %d of the catalog", len(got), len(metrics.Catalog))
	}
}

// wantUnit is the UCUM unit of every catalog unit word. A unit the catalog gains without an
// entry here fails TestUnits, so someone decides its mapping.
var wantUnit = map[string]string{
	"seconds":      "s",
	"milliseconds": "ms",
	"bytes":        "By",
	"records":      "{record}",
	"":             "",
}

// TestUnits guards against a unit the catalog uses that has no UCUM mapping (it would only
// get the "{word}" fallback), and against "" turning into "1", which declares a ratio.
func TestUnits(t *testing.T) {
	for _, d := range metrics.Catalog {
		want, ok := wantUnit[d.Unit]
		if !ok {
			t.Errorf("%s: catalog unit %q has no mapping decided in wantUnit", d.Name, d.Unit)
			continue
		}
		if got := shardotel.Unit(d.Unit); got != want {
			t.Errorf("Unit(%q) = %q, want %q", d.Unit, got, want)
		}
	}
	if got := shardotel.Unit("entries"); got != "{entries}" {
		t.Errorf(`Unit("entries") = %q, want the annotation "{entries}"`, got)
	}
}

// bounds returns the bucket boundaries a reader exported for the histogram name.
func bounds(t *testing.T, got map[string]collected, name metrics.Name) []float64 {
	t.Helper()
	h, ok := got[string(name)].Data.(metricdata.Histogram[float64])
	if !ok || len(h.DataPoints) == 0 {
		t.Fatalf("%s: no histogram data", name)
	}
	return h.DataPoints[0].Bounds
}

// TestBuckets guards against histograms left on the SDK's default boundaries (0 to 10000,
// meant for milliseconds: every latency in seconds would land in the first two buckets),
// batch-size buckets that miss the 500-entry limit, and WithBuckets being ignored.
func TestBuckets(t *testing.T) {
	mp, reader := newProvider(t)
	custom := []float64{0.1, 1, 10}
	c := newCollector(t, mp,
		shardotel.WithBuckets(metrics.ConsumerProcessingTime, custom),
		shardotel.WithBuckets(metrics.ProducerPutLatency, []float64{1, 2, math.Inf(1)}))
	emitAll(c)
	got := collect(t, reader)

	lat := bounds(t, got, metrics.ProducerFlushDuration)
	if lat[0] != 0.001 || lat[len(lat)-1] != 30 || len(lat) < 12 {
		t.Errorf("latency bounds %v: want ≥ 12 from 0.001 to 30", lat)
	}
	batch := bounds(t, got, metrics.ProducerBatchSize)
	if batch[0] != 1 || batch[len(batch)-1] != 500 || !slices.Contains(batch, 100) {
		t.Errorf("batch size bounds %v: want 1 … 100 … 500", batch)
	}
	if b := bounds(t, got, metrics.ConsumerProcessingTime); !slices.Equal(b, custom) {
		t.Errorf("WithBuckets ignored: %v, want %v", b, custom)
	}
	if b := bounds(t, got, metrics.ProducerPutLatency); !slices.Equal(b, []float64{1, 2}) {
		t.Errorf("a final +Inf was not dropped: %v, want [1 2]", b)
	}
	// Every histogram gets bounds chosen for its unit, not the SDK's.
	for _, d := range metrics.Catalog {
		if d.Kind != metrics.Histogram || d.Name == metrics.ConsumerProcessingTime || d.Name == metrics.ProducerPutLatency {
			continue
		}
		sdkDefault := []float64{0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000}
		if b := bounds(t, got, d.Name); slices.Equal(b, sdkDefault) {
			t.Errorf("%s (unit %q) has the SDK's default bounds", d.Name, d.Unit)
		}
	}
}

// TestInstancesCoexist guards against two collectors mixing their values: different
// namespaces on one provider, one namespace on two providers and, on one provider with one
// namespace, different const attributes must all keep separate values. Two identical
// collectors on one provider share their instruments, as OpenTelemetry defines: values add.
func TestInstancesCoexist(t *testing.T) {
	l := metrics.Labels{Stream: "s"}
	d, _ := metrics.Lookup(metrics.ProducerRecordsSent)

	mp, reader := newProvider(t)
	newCollector(t, mp, shardotel.WithNamespace("a")).Add(d.Name, 1, l)
	newCollector(t, mp, shardotel.WithNamespace("b")).Add(d.Name, 2, l)
	got := collect(t, reader)
	for name, want := range map[string]float64{"a.producer_records_sent_total": 1, "b.producer_records_sent_total": 2} {
		if v := sumOf(t, got[name]).Value; v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}

	mp1, reader1 := newProvider(t)
	mp2, reader2 := newProvider(t)
	newCollector(t, mp1, shardotel.WithNamespace("same")).Add(d.Name, 3, l)
	newCollector(t, mp2, shardotel.WithNamespace("same")).Add(d.Name, 4, l)
	for i, r := range []*sdkmetric.ManualReader{reader1, reader2} {
		if v := sumOf(t, collect(t, r)["same.producer_records_sent_total"]).Value; v != float64(i+3) {
			t.Errorf("provider %d: %v, want %v", i+1, v, i+3)
		}
	}

	mp3, reader3 := newProvider(t)
	one := attribute.String("group", "one")
	two := attribute.String("group", "two")
	newCollector(t, mp3, shardotel.WithConstAttributes(one)).Add(d.Name, 5, l)
	newCollector(t, mp3, shardotel.WithConstAttributes(two)).Add(d.Name, 6, l)
	newCollector(t, mp3, shardotel.WithConstAttributes(two)).Add(d.Name, 1, l)
	s, _ := collect(t, reader3)[string(d.Name)].Data.(metricdata.Sum[float64])
	byGroup := map[string]float64{}
	for _, p := range s.DataPoints {
		g, _ := p.Attributes.Value("group")
		byGroup[g.AsString()] = p.Value
	}
	if len(byGroup) != 2 || byGroup["one"] != 5 || byGroup["two"] != 7 {
		t.Errorf("by const attribute: %v, want one=5 two=7 (the identical collectors adding up)", byGroup)
	}
}

// TestScope guards against WithMeterName and WithMeterVersion not reaching the Meter.
func TestScope(t *testing.T) {
	mp, reader := newProvider(t)
	c := newCollector(t, mp, shardotel.WithMeterName("billing"), shardotel.WithMeterVersion("v1.2.3"))
	c.Add(metrics.ProducerRecordsSent, 1, every)
	s := collect(t, reader)[string(metrics.ProducerRecordsSent)].scope.Scope
	if s.Name != "billing" || s.Version != "v1.2.3" {
		t.Errorf("scope %q %q, want billing v1.2.3", s.Name, s.Version)
	}
}

// TestNilMeterProvider guards against a silent fallback to the global MeterProvider, and a
// panic on a typed nil, when no provider is given.
func TestNilMeterProvider(t *testing.T) {
	var typedNil *sdkmetric.MeterProvider
	for _, mp := range []metric.MeterProvider{nil, typedNil} {
		c, err := shardotel.New(mp)
		if !errors.Is(err, shardotel.ErrNilMeterProvider) || !errors.Is(err, shardotel.ErrInvalidConfig) || c != nil {
			t.Errorf("New(%#v) = %v, %v; want ErrNilMeterProvider", mp, c, err)
		}
	}
}

// TestInvalidOptions guards against options the SDK would reject late (instrument names),
// ignore (unsorted buckets) or export as nonsense (NaN bounds, invalid UTF-8, attributes
// shadowing the catalog's labels), and checks that each error names its option.
func TestInvalidOptions(t *testing.T) {
	long := "n"
	for len(long) < 240 {
		long += "n"
	}
	tests := []struct {
		name   string
		opt    shardotel.Option
		option string // the ConfigError.Option expected
	}{
		{"empty meter name", shardotel.WithMeterName(""), "WithMeterName"},
		{"namespace starting with digit", shardotel.WithNamespace("1app"), "WithNamespace"},
		{"namespace with space", shardotel.WithNamespace("my app"), "WithNamespace"},
		{"namespace with colon", shardotel.WithNamespace("a:b"), "WithNamespace"},
		{"namespace too long", shardotel.WithNamespace(long), "WithNamespace"},
		{"empty attribute key", shardotel.WithConstAttributes(attribute.String("", "x")), "WithConstAttributes"},
		{"attribute shadows catalog label", shardotel.WithConstAttributes(attribute.String(metrics.LabelShard, "x")), "WithConstAttributes"},
		{"attribute value bad UTF-8", shardotel.WithConstAttributes(attribute.String("app", "\xff")), "WithConstAttributes"},
		{"attribute key bad UTF-8", shardotel.WithConstAttributes(attribute.String("\xff", "x")), "WithConstAttributes"},
		{"attribute slice bad UTF-8", shardotel.WithConstAttributes(attribute.StringSlice("apps", []string{"a", "\xff"})), "WithConstAttributes"},
		{"buckets for unknown name", shardotel.WithBuckets("nope", []float64{1}), "WithBuckets"},
		{"buckets for a gauge", shardotel.WithBuckets(metrics.ConsumerLagRecords, []float64{1}), "WithBuckets"},
		{"no buckets", shardotel.WithBuckets(metrics.ProducerBatchSize, nil), "WithBuckets"},
		{"only +Inf", shardotel.WithBuckets(metrics.ProducerBatchSize, []float64{math.Inf(1)}), "WithBuckets"},
		{"-Inf bucket", shardotel.WithBuckets(metrics.ProducerBatchSize, []float64{math.Inf(-1), 1}), "WithBuckets"},
		{"unsorted buckets", shardotel.WithBuckets(metrics.ProducerBatchSize, []float64{1, 5, 2}), "WithBuckets"},
		{"repeated bucket", shardotel.WithBuckets(metrics.ProducerBatchSize, []float64{1, 1}), "WithBuckets"},
		{"NaN bucket", shardotel.WithBuckets(metrics.ProducerBatchSize, []float64{1, math.NaN()}), "WithBuckets"},
		{"nil option", nil, "opts[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mp, reader := newProvider(t)
			c, err := shardotel.New(mp, tt.opt)
			if !errors.Is(err, shardotel.ErrInvalidConfig) || c != nil {
				t.Fatalf("New = %v, %v; want ErrInvalidConfig", c, err)
			}
			var ce *shardotel.ConfigError
			if !errors.As(err, &ce) || ce.Option != tt.option || ce.Package != "shardotel" {
				t.Errorf("error %q: want a *ConfigError for %s", err, tt.option)
			}
			if got := collect(t, reader); len(got) != 0 {
				t.Errorf("rejected options still created %d instruments", len(got))
			}
		})
	}

	// Every problem is reported at once, not only the first.
	_, err := shardotel.New(noop.NewMeterProvider(), shardotel.WithNamespace("1"), nil, shardotel.WithMeterName(""))
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 3 {
		t.Errorf("three bad options gave %q, want three joined errors", err)
	}
}

// failingMeter is a Meter whose Float64Gauge fails, as a provider may when a View cannot
// apply.
type failingMeter struct{ noop.Meter }

var errGauge = errors.New("gauge refused")

func (failingMeter) Float64Gauge(string, ...metric.Float64GaugeOption) (metric.Float64Gauge, error) {
	return noop.Float64Gauge{}, errGauge
}

type failingProvider struct{ noop.MeterProvider }

func (failingProvider) Meter(string, ...metric.MeterOption) metric.Meter { return failingMeter{} }

// TestProviderError guards against an instrument error being dropped, which would leave a
// Collector that silently records nothing for that metric.
func TestProviderError(t *testing.T) {
	c, err := shardotel.New(failingProvider{})
	if !errors.Is(err, errGauge) || c != nil {
		t.Errorf("New = %v, %v; want an error wrapping %v", c, err, errGauge)
	}
}

// TestGlobalMeterProviderUntouched guards against the collector installing, or recording
// through, the global MeterProvider.
func TestGlobalMeterProviderUntouched(t *testing.T) {
	before := otel.GetMeterProvider()
	mp, reader := newProvider(t)
	c := newCollector(t, mp)
	emitAll(c)
	if after := otel.GetMeterProvider(); after != before {
		t.Errorf("global MeterProvider changed from %T to %T", before, after)
	}
	if _, isSDK := otel.GetMeterProvider().(*sdkmetric.MeterProvider); isSDK {
		t.Error("the global MeterProvider is an SDK provider; it should still be the default")
	}
	if got := collect(t, reader); len(got) != len(metrics.Catalog) {
		t.Errorf("the given provider exported %d metrics, want %d", len(got), len(metrics.Catalog))
	}
}

// TestIgnoredCalls guards against a panic, or a stray series, from names outside the
// catalog, calls of the wrong kind and values a counter cannot take (the SDK drops a negative
// delta only with a logged error), and checks that label values that are not UTF-8 are
// repaired rather than breaking an OTLP export.
func TestIgnoredCalls(t *testing.T) {
	mp, reader := newProvider(t)
	c := newCollector(t, mp)
	l := metrics.Labels{Stream: "s", Shard: "shardId-0"}
	c.Add("not_in_catalog_total", 1, l)
	c.Set("not_in_catalog", 1, l)
	c.Observe("not_in_catalog_seconds", 1, l)
	c.Add(metrics.ConsumerLagRecords, 1, l)          // gauge
	c.Observe(metrics.ConsumerRecordsReceived, 1, l) // counter
	c.Set(metrics.ConsumerProcessingTime, 1, l)      // histogram
	c.Add(metrics.ConsumerRecordsReceived, -1, l)
	c.Add(metrics.ConsumerRecordsReceived, math.NaN(), l)
	c.Add(metrics.ConsumerRecordsReceived, math.Inf(1), l)
	c.Set(metrics.ConsumerLagRecords, math.NaN(), l)
	c.Set(metrics.ConsumerLagRecords, math.Inf(-1), l)
	c.Observe(metrics.ConsumerProcessingTime, math.Inf(-1), l)
	c.Observe(metrics.ConsumerProcessingTime, math.NaN(), l)
	if got := collect(t, reader); len(got) != 0 {
		t.Errorf("ignored calls created %d metrics: %v", len(got), got)
	}

	c.Add(metrics.ConsumerRecordsReceived, 1, metrics.Labels{Stream: "bad\xffname", Shard: "shardId-0"})
	p := sumOf(t, collect(t, reader)[string(metrics.ConsumerRecordsReceived)])
	if v, _ := p.Attributes.Value(metrics.LabelStream); v.AsString() != "bad\uFFFDname" {
		t.Errorf("stream attribute = %q, want the invalid byte replaced", v.AsString())
	}
}

// TestUndeclaredLabelsShareSeries guards against attributes carrying labels the catalog does
// not declare for a metric (a shard_id on a per-stream counter would split it into series
// nobody asked for): calls that differ only in those must update one series that carries
// only the declared attributes.
func TestUndeclaredLabelsShareSeries(t *testing.T) {
	mp, reader := newProvider(t)
	c := newCollector(t, mp)
	c.Add(metrics.ProducerRecordsSent, 1, metrics.Labels{Stream: "s", Shard: "a"})
	c.Add(metrics.ProducerRecordsSent, 1, metrics.Labels{Stream: "s", Shard: "b", Operation: "PutRecords"})
	p := sumOf(t, collect(t, reader)[string(metrics.ProducerRecordsSent)])
	want := attribute.NewSet(attribute.String(metrics.LabelStream, "s"))
	if p.Value != 2 || !p.Attributes.Equals(&want) {
		t.Errorf("got %v %v, want one series {stream_name=s} with value 2", p.Value, p.Attributes.ToSlice())
	}
}

// TestGaugeKeepsLastValue guards against a gauge that sums or keeps the first value.
func TestGaugeKeepsLastValue(t *testing.T) {
	mp, reader := newProvider(t)
	c := newCollector(t, mp)
	l := metrics.Labels{Stream: "s", Shard: "shardId-0"}
	for _, v := range []float64{10, 40, 25} {
		c.Set(metrics.ConsumerLagRecords, v, l)
	}
	g, _ := collect(t, reader)[string(metrics.ConsumerLagRecords)].Data.(metricdata.Gauge[float64])
	if len(g.DataPoints) != 1 || g.DataPoints[0].Value != 25 {
		t.Errorf("gauge points %v, want one with value 25", g.DataPoints)
	}
}

// TestConcurrentUse guards against data races between writers, first-use cache fills and
// collections (run with -race), and against lost updates.
func TestConcurrentUse(t *testing.T) {
	mp, reader := newProvider(t)
	c := newCollector(t, mp)
	const goroutines, calls = 4, 2000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				// Two goroutines share each shard, so cache fills race too.
				l := metrics.Labels{Stream: "s", Shard: fmt.Sprintf("shardId-%d", (g+i)%2)}
				c.Add(metrics.ConsumerRecordsReceived, 1, l)
				c.Set(metrics.ConsumerLagRecords, 1, l)
				c.Observe(metrics.ConsumerProcessingTime, 0.01, l)
			}
		})
	}
	for range 5 {
		collect(t, reader)
	}
	wg.Wait()
	got := collect(t, reader)
	s, _ := got[string(metrics.ConsumerRecordsReceived)].Data.(metricdata.Sum[float64])
	var total float64
	for _, p := range s.DataPoints {
		total += p.Value
	}
	h, _ := got[string(metrics.ConsumerProcessingTime)].Data.(metricdata.Histogram[float64])
	var count uint64
	for _, p := range h.DataPoints {
		count += p.Count
	}
	if len(s.DataPoints) != 2 || total != goroutines*calls || count != goroutines*calls {
		t.Errorf("%d series, total %v, histogram count %d; want 2 series, %d and %d",
			len(s.DataPoints), total, count, goroutines*calls, goroutines*calls)
	}
}

// TestHotPathDoesNotAllocate guards against an allocation per call in this package (label
// values escaping, a boxed cache key, a fresh options slice, an attribute set rebuilt) once a
// series exists. The no-op provider isolates this package's cost; the SDK case checks the
// whole path a user runs, and allocates nothing in SDK v1.47 either (if only that case fails
// after an SDK upgrade, the SDK started allocating: compare BenchmarkOTelCounterDirect).
func TestHotPathDoesNotAllocate(t *testing.T) {
	sdk, _ := newProvider(t)
	for provider, mp := range map[string]metric.MeterProvider{"noop": noop.NewMeterProvider(), "sdk": sdk} {
		c := newCollector(t, mp)
		l := metrics.Labels{Stream: "orders", Shard: "shardId-000000000001", Operation: "GetRecords"}
		for name, f := range map[string]func(){
			"Add":     func() { c.Add(metrics.ConsumerRecordsReceived, 1, l) },
			"Set":     func() { c.Set(metrics.ConsumerLagRecords, 1, l) },
			"Observe": func() { c.Observe(metrics.ConsumerProcessingTime, 0.01, l) },
		} {
			f()
			if n := testing.AllocsPerRun(200, f); n != 0 {
				t.Errorf("%s provider: %s allocates %v times per call, want 0", provider, name, n)
			}
		}
	}
}
