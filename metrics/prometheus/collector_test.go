package shardprom_test

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/shardline/kinesis/metrics"
	shardprom "github.com/shardline/kinesis/metrics/prometheus"
)

// every carries all four labels, so each metric gets exactly what the catalog declares.
var every = metrics.Labels{
	Stream:    "orders",
	Shard:     "shardId-000000000001",
	ErrorType: "InternalFailure",
	Operation: "PutRecords",
}

// emitAll sends one call of the right kind for every catalog entry.
func emitAll(c metrics.Collector) {
	for _, d := range metrics.Catalog {
		switch d.Kind {
		case metrics.Counter:
			c.Add(d.Name, 1, every)
		case metrics.Gauge:
			c.Set(d.Name, 7, every)
		case metrics.Histogram:
			c.Observe(d.Name, 0.25, every)
		}
	}
}

// scrape fetches g's exposition over real HTTP on loopback, in the classic text format, and
// parses it.
func scrape(t *testing.T, g prom.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return fams
}

func newRegistry(t *testing.T, opts ...shardprom.Option) (*prom.Registry, *shardprom.Collector) {
	t.Helper()
	reg := prom.NewRegistry()
	c, err := shardprom.New(reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return reg, c
}

var kindType = map[metrics.Kind]dto.MetricType{
	metrics.Counter:   dto.MetricType_COUNTER,
	metrics.Gauge:     dto.MetricType_GAUGE,
	metrics.Histogram: dto.MetricType_HISTOGRAM,
}

// TestScrapeHasWholeCatalog guards against a catalog entry that is not exported, or exported
// with the wrong type, HELP text or label names, as Prometheus actually sees it over HTTP.
func TestScrapeHasWholeCatalog(t *testing.T) {
	reg, c := newRegistry(t, shardprom.WithNamespace("shop"), shardprom.WithConstLabels(prom.Labels{"app": "checkout"}))
	emitAll(c)
	fams := scrape(t, reg)

	for _, d := range metrics.Catalog {
		name := "shop_" + string(d.Name)
		mf, ok := fams[name]
		if !ok {
			t.Errorf("%s missing from the exposition", name)
			continue
		}
		if mf.GetType() != kindType[d.Kind] {
			t.Errorf("%s: TYPE %v, want %v", name, mf.GetType(), kindType[d.Kind])
		}
		if mf.GetHelp() != d.Help {
			t.Errorf("%s: HELP %q, want %q", name, mf.GetHelp(), d.Help)
		}
		if len(mf.GetMetric()) != 1 {
			t.Errorf("%s: %d series, want 1", name, len(mf.GetMetric()))
			continue
		}
		m := mf.GetMetric()[0]
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		want := map[string]string{"app": "checkout"}
		for _, l := range d.Labels {
			want[l] = every.Value(l)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: labels %v, want %v", name, got, want)
		}
		switch d.Kind {
		case metrics.Counter:
			if v := m.GetCounter().GetValue(); v != 1 {
				t.Errorf("%s = %v, want 1", name, v)
			}
		case metrics.Gauge:
			if v := m.GetGauge().GetValue(); v != 7 {
				t.Errorf("%s = %v, want 7", name, v)
			}
		case metrics.Histogram:
			h := m.GetHistogram()
			if h.GetSampleCount() != 1 || h.GetSampleSum() != 0.25 {
				t.Errorf("%s: count %d sum %v, want 1 and 0.25", name, h.GetSampleCount(), h.GetSampleSum())
			}
		}
	}
	if len(fams) != len(metrics.Catalog) {
		t.Errorf("exposition has %d families, want the %d of the catalog (no runtime or process collectors)", len(fams), len(metrics.Catalog))
	}
}

// bounds returns the finite bucket upper bounds of the first series of a family.
func bounds(mf *dto.MetricFamily) []float64 {
	var b []float64
	for _, bk := range mf.GetMetric()[0].GetHistogram().GetBucket() {
		if !math.IsInf(bk.GetUpperBound(), 1) {
			b = append(b, bk.GetUpperBound())
		}
	}
	return b
}

// TestBuckets guards against latency histograms that cannot resolve a 1 ms PutRecords or a
// 30 s retried put, batch-size buckets that miss the 500-entry limit, and WithBuckets being
// ignored.
func TestBuckets(t *testing.T) {
	custom := []float64{0.1, 1, 10}
	reg, c := newRegistry(t, shardprom.WithBuckets(metrics.ConsumerProcessingTime, custom))
	emitAll(c)
	fams := scrape(t, reg)

	lat := bounds(fams[string(metrics.ProducerFlushDuration)])
	if lat[0] != 0.001 || lat[len(lat)-1] != 30 || len(lat) < 12 {
		t.Errorf("latency buckets %v: want ≥ 12 from 0.001 to 30", lat)
	}
	if put := bounds(fams[string(metrics.ProducerPutLatency)]); !slices.Equal(put, lat) {
		t.Errorf("put latency buckets %v differ from flush duration buckets %v", put, lat)
	}
	batch := bounds(fams[string(metrics.ProducerBatchSize)])
	if batch[0] != 1 || batch[len(batch)-1] != 500 || !slices.Contains(batch, 100) {
		t.Errorf("batch size buckets %v: want 1 … 100 … 500", batch)
	}
	if got := bounds(fams[string(metrics.ConsumerProcessingTime)]); !slices.Equal(got, custom) {
		t.Errorf("WithBuckets ignored: %v, want %v", got, custom)
	}
}

// TestInstancesCoexist guards against two collectors clashing: different namespaces on one
// registry, or one namespace on two registries, must both work and keep separate values.
func TestInstancesCoexist(t *testing.T) {
	l := metrics.Labels{Stream: "s"}

	reg := prom.NewRegistry()
	a, errA := shardprom.New(reg, shardprom.WithNamespace("a"))
	b, errB := shardprom.New(reg, shardprom.WithNamespace("b"))
	if errA != nil || errB != nil {
		t.Fatalf("two namespaces on one registry: %v, %v", errA, errB)
	}
	a.Add(metrics.ProducerRecordsSent, 1, l)
	b.Add(metrics.ProducerRecordsSent, 2, l)
	fams := scrape(t, reg)
	for name, want := range map[string]float64{"a_producer_records_sent_total": 1, "b_producer_records_sent_total": 2} {
		if mf := fams[name]; mf == nil || mf.GetMetric()[0].GetCounter().GetValue() != want {
			t.Errorf("%s = %v, want %v", name, mf, want)
		}
	}

	reg1, c1 := newRegistry(t, shardprom.WithNamespace("same"))
	reg2, c2 := newRegistry(t, shardprom.WithNamespace("same"))
	c1.Add(metrics.ProducerRecordsSent, 3, l)
	c2.Add(metrics.ProducerRecordsSent, 4, l)
	for i, want := range []float64{3, 4} {
		g := []*prom.Registry{reg1, reg2}[i]
		mf := scrape(t, g)["same_producer_records_sent_total"]
		if mf == nil || mf.GetMetric()[0].GetCounter().GetValue() != want {
			t.Errorf("registry %d: %v, want %v", i+1, mf, want)
		}
	}

	// One namespace on one registry is fine when const labels tell the instances apart.
	reg3 := prom.NewRegistry()
	_, err1 := shardprom.New(reg3, shardprom.WithConstLabels(prom.Labels{"group": "one"}))
	_, err2 := shardprom.New(reg3, shardprom.WithConstLabels(prom.Labels{"group": "two"}))
	if err1 != nil || err2 != nil {
		t.Errorf("same namespace, different const labels: %v, %v", err1, err2)
	}
}

// TestDuplicateRegistration guards against a panic (client_golang's MustRegister) or a
// half-registered second collector when the same namespace is registered twice, and checks
// that the error lets the caller reach prom.AlreadyRegisteredError.
func TestDuplicateRegistration(t *testing.T) {
	reg, first := newRegistry(t, shardprom.WithNamespace("dup"))
	first.Add(metrics.ProducerRecordsSent, 1, metrics.Labels{Stream: "s"})

	second, err := shardprom.New(reg, shardprom.WithNamespace("dup"))
	if err == nil || second != nil {
		t.Fatalf("second New = %v, %v; want an error", second, err)
	}
	var are prom.AlreadyRegisteredError
	if !errors.As(err, &are) {
		t.Fatalf("error %v does not wrap prom.AlreadyRegisteredError", err)
	}
	if fams := scrape(t, reg); len(fams) != 1 || fams["dup_producer_records_sent_total"] == nil {
		t.Errorf("after the failed New the exposition is %d families, want only the first collector's series", len(fams))
	}

	// Unregister frees the namespace.
	if !first.Unregister() {
		t.Fatal("Unregister reported nothing registered")
	}
	if _, err := shardprom.New(reg, shardprom.WithNamespace("dup")); err != nil {
		t.Errorf("New after Unregister: %v", err)
	}
}

// TestConflictWithForeignMetric guards against a panic or a half-registered collector when
// other code already registered one of the catalog's names with different labels.
func TestConflictWithForeignMetric(t *testing.T) {
	reg := prom.NewRegistry()
	foreign := prom.NewCounter(prom.CounterOpts{Name: string(metrics.ConsumerLagRecords), Help: "someone else's"})
	reg.MustRegister(foreign)
	c, err := shardprom.New(reg)
	if err == nil || c != nil {
		t.Fatalf("New = %v, %v; want a registration error", c, err)
	}
	var are prom.AlreadyRegisteredError
	if errors.As(err, &are) {
		t.Errorf("a foreign conflict reported as AlreadyRegisteredError: %v", err)
	}
	if _, err := shardprom.New(reg, shardprom.WithNamespace("ok")); err != nil {
		t.Errorf("the failed New left metrics behind: %v", err)
	}
}

// TestNilRegisterer guards against falling back to the global registry, which would make two
// libraries in one process clash, or panicking on a nil pointer.
func TestNilRegisterer(t *testing.T) {
	var nilRegistry *prom.Registry
	for _, reg := range []prom.Registerer{nil, nilRegistry} {
		if c, err := shardprom.New(reg); !errors.Is(err, shardprom.ErrNilRegisterer) || !errors.Is(err, shardprom.ErrInvalidConfig) || c != nil {
			t.Errorf("New(%#v) = %v, %v; want ErrNilRegisterer", reg, c, err)
		}
	}
}

// TestInvalidOptions guards against options that client_golang would panic on later, or that
// would make a collector export something else than asked, being accepted.
func TestInvalidOptions(t *testing.T) {
	tests := []struct {
		name   string
		opt    shardprom.Option
		option string // the ConfigError's Option
	}{
		{"namespace with dash", shardprom.WithNamespace("my-app"), "WithNamespace"},
		{"namespace starting with digit", shardprom.WithNamespace("1app"), "WithNamespace"},
		{"namespace with colon", shardprom.WithNamespace("a:b"), "WithNamespace"},
		{"reserved const label", shardprom.WithConstLabels(prom.Labels{"__name__": "x"}), "WithConstLabels"},
		{"const label shadows catalog label", shardprom.WithConstLabels(prom.Labels{metrics.LabelStream: "x"}), "WithConstLabels"},
		{"const label bad name", shardprom.WithConstLabels(prom.Labels{"a-b": "x"}), "WithConstLabels"},
		{"const label bad UTF-8", shardprom.WithConstLabels(prom.Labels{"app": "\xff"}), "WithConstLabels"},
		{"buckets for unknown name", shardprom.WithBuckets("nope", []float64{1}), "WithBuckets"},
		{"buckets for a counter", shardprom.WithBuckets(metrics.ProducerRecordsSent, []float64{1}), "WithBuckets"},
		{"no buckets", shardprom.WithBuckets(metrics.ProducerBatchSize, nil), "WithBuckets"},
		{"only +Inf", shardprom.WithBuckets(metrics.ProducerBatchSize, []float64{math.Inf(1)}), "WithBuckets"},
		{"unsorted buckets", shardprom.WithBuckets(metrics.ProducerBatchSize, []float64{1, 5, 2}), "WithBuckets"},
		{"repeated bucket", shardprom.WithBuckets(metrics.ProducerBatchSize, []float64{1, 1}), "WithBuckets"},
		{"NaN bucket", shardprom.WithBuckets(metrics.ProducerBatchSize, []float64{1, math.NaN()}), "WithBuckets"},
		{"nil option", nil, "opts[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prom.NewRegistry()
			c, err := shardprom.New(reg, tt.opt)
			var ce *shardprom.ConfigError
			if !errors.Is(err, shardprom.ErrInvalidConfig) || !errors.As(err, &ce) || ce.Option != tt.option ||
				ce.Package != "shardprom" || c != nil {
				t.Fatalf("New = %v, %v; want a ConfigError for %s", c, err, tt.option)
			}
			if fams, _ := reg.Gather(); len(fams) != 0 {
				t.Errorf("rejected options still registered %d families", len(fams))
			}
		})
	}
	// Every problem is reported, not only the first.
	_, err := shardprom.New(prom.NewRegistry(), shardprom.WithNamespace("1app"), nil,
		shardprom.WithBuckets(metrics.ProducerBatchSize, []float64{2, 1}))
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 3 {
		t.Errorf("three bad options: %v, want three ConfigErrors", err)
	}
	// A final +Inf is legal and ignored.
	if _, err := shardprom.New(prom.NewRegistry(), shardprom.WithBuckets(metrics.ProducerBatchSize, []float64{1, 2, math.Inf(1)})); err != nil {
		t.Errorf("buckets ending in +Inf refused: %v", err)
	}
}

// TestIgnoredCalls guards against a panic, or a stray series, from names outside the
// catalog, calls of the wrong kind, values client_golang refuses (a negative counter delta
// panics there) and label values that are not UTF-8.
func TestIgnoredCalls(t *testing.T) {
	reg, c := newRegistry(t)
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
	c.Observe(metrics.ConsumerProcessingTime, math.Inf(-1), l)
	if fams := scrape(t, reg); len(fams) != 0 {
		t.Errorf("ignored calls created %d families: %v", len(fams), fams)
	}

	c.Add(metrics.ConsumerRecordsReceived, 1, metrics.Labels{Stream: "bad\xffname", Shard: "shardId-0"})
	mf := scrape(t, reg)[string(metrics.ConsumerRecordsReceived)]
	if mf == nil {
		t.Fatal("a label value with invalid UTF-8 dropped the call")
	}
	for _, lp := range mf.GetMetric()[0].GetLabel() {
		if lp.GetName() == metrics.LabelStream && lp.GetValue() != "bad\uFFFDname" {
			t.Errorf("stream label = %q, want the invalid byte replaced", lp.GetValue())
		}
	}
}

// TestConcurrentUse guards against data races between writers and scrapes (run with -race).
func TestConcurrentUse(t *testing.T) {
	reg, c := newRegistry(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			l := metrics.Labels{Stream: "s", Shard: fmt.Sprintf("shardId-%d", g)}
			for range 2000 {
				c.Add(metrics.ConsumerRecordsReceived, 1, l)
				c.Set(metrics.ConsumerLagRecords, 1, l)
				c.Observe(metrics.ConsumerProcessingTime, 0.01, l)
			}
		})
	}
	for range 5 {
		if _, err := reg.Gather(); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
	var total float64
	for _, m := range scrape(t, reg)[string(metrics.ConsumerRecordsReceived)].GetMetric() {
		total += m.GetCounter().GetValue()
	}
	if total != 4*2000 {
		t.Errorf("total = %v, want %d", total, 4*2000)
	}
}

// TestHotPathDoesNotAllocate guards against an allocation per call (label values escaping to
// the heap, a boxed cache key) once a series exists.
func TestHotPathDoesNotAllocate(t *testing.T) {
	_, c := newRegistry(t)
	l := metrics.Labels{Stream: "orders", Shard: "shardId-000000000001", Operation: "GetRecords"}
	for name, f := range map[string]func(){
		"Add":     func() { c.Add(metrics.ConsumerRecordsReceived, 1, l) },
		"Set":     func() { c.Set(metrics.ConsumerLagRecords, 1, l) },
		"Observe": func() { c.Observe(metrics.ConsumerProcessingTime, 0.01, l) },
	} {
		f()
		if n := testing.AllocsPerRun(200, f); n != 0 {
			t.Errorf("%s allocates %v times per call, want 0", name, n)
		}
	}
}

// TestUndeclaredLabelsShareSeries guards against the children cache keying by labels the
// catalog does not declare: calls that differ only in those must update one series.
func TestUndeclaredLabelsShareSeries(t *testing.T) {
	reg, c := newRegistry(t)
	c.Add(metrics.ProducerRecordsSent, 1, metrics.Labels{Stream: "s", Shard: "a"})
	c.Add(metrics.ProducerRecordsSent, 1, metrics.Labels{Stream: "s", Shard: "b", Operation: "PutRecords"})
	mf := scrape(t, reg)[string(metrics.ProducerRecordsSent)]
	if len(mf.GetMetric()) != 1 || mf.GetMetric()[0].GetCounter().GetValue() != 2 {
		t.Errorf("got %v, want one series with value 2", mf.GetMetric())
	}
}
