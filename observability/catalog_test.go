package observability

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/shardline/kinesis/metrics"
)

// namespace is the collector namespace the dashboard (by default) and the rules assume, as
// examples/consumer sets it: shardprom.WithNamespace("shardline").
const namespace = "shardline"

// scrapeLabels are the labels Prometheus adds to every scraped series.
var scrapeLabels = []string{"job", "instance"}

// exposed is one series name the Prometheus collector exposes.
type exposed struct {
	desc   metrics.Desc
	labels []string // the series' labels: the catalog's, le for buckets, job and instance
}

// exposedNames returns every series name metrics/prometheus exposes for the catalog under
// namespace ns: counters and gauges under their own name, histograms as _bucket, _sum and
// _count (the bare histogram name is no series).
func exposedNames(ns string) map[string]exposed {
	out := map[string]exposed{}
	for _, d := range metrics.Catalog {
		name := ns + "_" + string(d.Name)
		labels := append(slices.Clone(d.Labels), scrapeLabels...)
		switch d.Kind {
		case metrics.Counter, metrics.Gauge:
			out[name] = exposed{d, labels}
		case metrics.Histogram:
			out[name+"_bucket"] = exposed{d, append(slices.Clone(labels), "le")}
			out[name+"_sum"] = exposed{d, labels}
			out[name+"_count"] = exposed{d, labels}
		}
	}
	return out
}

// checkExpr checks that expr reads only series of the catalog under namespace, with labels
// they have, and groups only by labels one of them has. It returns the catalog names expr
// reads.
func checkExpr(expr string) ([]metrics.Name, error) {
	refs, err := parseRefs(expr)
	if err != nil {
		return nil, err
	}
	if len(refs.selectors) == 0 {
		return nil, fmt.Errorf("no metric in %q", expr)
	}
	known := exposedNames(namespace)
	var names []metrics.Name
	var errs []string
	labels := map[string]bool{}
	for _, s := range refs.selectors {
		e, ok := known[s.name]
		if !ok {
			errs = append(errs, fmt.Sprintf("%s is not a series of metrics.Catalog under namespace %q (histograms: _bucket, _sum, _count)", s.name, namespace))
			continue
		}
		names = append(names, e.desc.Name)
		for _, l := range e.labels {
			labels[l] = true
		}
		for _, m := range s.matchers {
			if !slices.Contains(e.labels, m.label) {
				errs = append(errs, fmt.Sprintf("%s has no label %s (it has %s)", s.name, m.label, strings.Join(e.labels, ", ")))
			}
		}
	}
	for _, g := range refs.grouping {
		if !labels[g] {
			errs = append(errs, fmt.Sprintf("groups by %s, which none of its series has", g))
		}
	}
	if len(errs) > 0 {
		return names, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return names, nil
}

// TestCheckExpr shows the check catches what it is for.
func TestCheckExpr(t *testing.T) {
	good := []string{
		`sum by (stream_name) (rate(shardline_producer_records_sent_total{job=~"a"}[5m]))`,
		`histogram_quantile(0.99, sum by (le) (rate(shardline_producer_put_latency_seconds_bucket[1m])))`,
		`shardline_consumer_leases_held{instance="x"}`,
	}
	for _, e := range good {
		if _, err := checkExpr(e); err != nil {
			t.Errorf("checkExpr(%q): %v", e, err)
		}
	}
	bad := map[string]string{
		`rate(shardline_producer_records_sent[5m])`:                            "a name not in the catalog (no _total)",
		`rate(producer_records_sent_total[5m])`:                                "a name without the namespace",
		`rate(shardline_producer_put_latency_seconds[5m])`:                     "a histogram's bare name",
		`shardline_consumer_leases_held_bucket`:                                "a gauge with a histogram suffix",
		`shardline_consumer_leases_held{shard_id="1"}`:                         "a label the metric does not have",
		`sum by (shard_id) (shardline_producer_queue_size)`:                    "grouping by a label no series has",
		`sum by (le) (rate(shardline_producer_put_latency_seconds_count[5m]))`: "le on a histogram's _count",
		`sum(rate({__name__="shardline_producer_records_sent_total"}[5m]))`:    "a name hidden in a matcher",
		`1`: "no metric at all",
	}
	for e, why := range bad {
		if _, err := checkExpr(e); err == nil {
			t.Errorf("checkExpr(%q) accepted %s", e, why)
		}
	}
}

// TestCatalogNaming guards the assumption exposedNames makes: client_golang exposes counters
// under their own name, which the catalog already ends in _total.
func TestCatalogNaming(t *testing.T) {
	for _, d := range metrics.Catalog {
		if d.Kind == metrics.Counter && !strings.HasSuffix(string(d.Name), "_total") {
			t.Errorf("counter %s does not end in _total", d.Name)
		}
	}
}
