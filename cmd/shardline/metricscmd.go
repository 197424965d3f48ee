package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/spf13/cobra"

	"github.com/shardline/kinesis/metrics"
)

func newMetricsCmd(a *app) *cobra.Command {
	var interval, timeout time.Duration
	cmd := &cobra.Command{
		Use:   "metrics URL",
		Short: "Summarise a running worker's /metrics (Shardline's catalog, per stream and shard), with rates over --interval",
		Long: `metrics scrapes a Prometheus /metrics endpoint of a Shardline producer or consumer and prints
Shardline's metrics (the catalog in package metrics, whatever namespace prefix the
collector was given) per stream and per shard: counters, gauges, and histograms as count,
mean and estimated p50/p95/p99. With --interval it scrapes twice and adds rates per second
over the interval (histograms then describe the interval only). Other metrics are ignored.`,
		Example: `  shardline metrics http://127.0.0.1:9464/metrics
  shardline metrics http://127.0.0.1:9464/metrics --interval 10s
  shardline metrics http://127.0.0.1:9464 --json | jq '.streams[].shards[]'`,
		Args: exactArgs("URL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			u := args[0]
			if err := checkURL("URL", u); err != nil {
				return err
			}
			if !strings.Contains(strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://"), "/") {
				u += "/metrics"
			}
			if interval < 0 {
				return usagef("metrics: --interval must not be negative")
			}
			return a.metrics(cmd.Context(), u, interval, timeout)
		},
	}
	cmd.Flags().DurationVar(&interval, "interval", 0, "scrape twice this far apart and show rates (0: one scrape)")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "timeout of each HTTP request")
	return cmd
}

// scrapeResult is what one scrape of /metrics found of the catalog.
type scrapeResult struct {
	at     time.Time
	series map[seriesKey]*seriesValue
	other  int // families outside the catalog
}

// seriesKey identifies one summarised series: the label values other than stream and shard
// (error_type, operation, const labels) are summed over.
type seriesKey struct {
	namespace, stream, shard string
	name                     metrics.Name
}

type seriesValue struct {
	kind    metrics.Kind
	value   float64 // counter or gauge
	count   float64 // histogram
	sum     float64
	buckets map[float64]float64 // upper bound → cumulative count
}

func (a *app) metrics(ctx context.Context, url string, interval, timeout time.Duration) error {
	client := &http.Client{Timeout: timeout}
	first, err := scrape(ctx, client, url)
	if err != nil {
		return err
	}
	var second *scrapeResult
	if interval > 0 {
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		if second, err = scrape(ctx, client, url); err != nil {
			return err
		}
	}
	sum := summarise(url, first, second)
	if a.json {
		return writeJSON(a.stdout, sum)
	}
	return printMetrics(a.stdout, sum)
}

func scrape(ctx context.Context, client *http.Client, url string) (*scrapeResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, usagef("metrics: bad URL %q: %v", url, err)
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics: scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: scrape %s: HTTP %s", url, resp.Status)
	}
	format := expfmt.ResponseFormat(resp.Header)
	if format.FormatType() == expfmt.TypeUnknown {
		format = expfmt.NewFormat(expfmt.TypeTextPlain)
	}
	res := &scrapeResult{at: time.Now(), series: map[seriesKey]*seriesValue{}}
	dec := expfmt.NewDecoder(resp.Body, format)
	for {
		var mf dto.MetricFamily
		err := dec.Decode(&mf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("metrics: %s is not a Prometheus exposition: %w", url, err)
		}
		res.add(&mf)
	}
	return res, nil
}

// catalogName finds the catalog entry a family belongs to: its name is a catalog name,
// possibly after a collector's namespace and an underscore.
func catalogName(family string) (metrics.Desc, string, bool) {
	if d, ok := metrics.Lookup(metrics.Name(family)); ok {
		return d, "", true
	}
	for i := 0; i < len(family); i++ {
		if family[i] != '_' {
			continue
		}
		if d, ok := metrics.Lookup(metrics.Name(family[i+1:])); ok {
			return d, family[:i], true
		}
	}
	return metrics.Desc{}, "", false
}

func (r *scrapeResult) add(mf *dto.MetricFamily) {
	desc, ns, ok := catalogName(mf.GetName())
	if !ok {
		r.other++
		return
	}
	for _, m := range mf.GetMetric() {
		k := seriesKey{namespace: ns, name: desc.Name}
		for _, lp := range m.GetLabel() {
			switch lp.GetName() {
			case metrics.LabelStream:
				k.stream = lp.GetValue()
			case metrics.LabelShard:
				k.shard = lp.GetValue()
			}
		}
		v := r.series[k]
		if v == nil {
			v = &seriesValue{kind: desc.Kind}
			r.series[k] = v
		}
		switch {
		case m.Counter != nil:
			v.value += m.GetCounter().GetValue()
		case m.Gauge != nil:
			v.value += m.GetGauge().GetValue()
		case m.Untyped != nil:
			v.value += m.GetUntyped().GetValue()
		case m.Histogram != nil:
			h := m.GetHistogram()
			v.count += float64(h.GetSampleCount())
			v.sum += h.GetSampleSum()
			if v.buckets == nil {
				v.buckets = map[float64]float64{}
			}
			for _, b := range h.GetBucket() {
				v.buckets[b.GetUpperBound()] += float64(b.GetCumulativeCount())
			}
		}
	}
}

// metricsSummary is what metrics prints.
type metricsSummary struct {
	URL       string          `json:"url"`
	ScrapedAt time.Time       `json:"scraped_at"`
	Interval  float64         `json:"interval_seconds,omitempty"`
	Streams   []streamMetrics `json:"streams"`
	// OtherFamilies counts metric families outside Shardline's catalog (ignored).
	OtherFamilies int `json:"other_families"`
}

type streamMetrics struct {
	Namespace string                 `json:"namespace,omitempty"`
	Stream    string                 `json:"stream"`
	Metrics   map[string]metricValue `json:"metrics"`
	Shards    []shardMetrics         `json:"shards"`
}

type shardMetrics struct {
	Shard   string                 `json:"shard"`
	Metrics map[string]metricValue `json:"metrics"`
}

// metricValue is one summarised series. Rate is per second over --interval (counters);
// histogram fields describe the interval when there is one.
type metricValue struct {
	Kind  string   `json:"kind"`
	Value *float64 `json:"value,omitempty"`
	Rate  *float64 `json:"rate,omitempty"`
	Count *float64 `json:"count,omitempty"`
	Mean  *float64 `json:"mean,omitempty"`
	P50   *float64 `json:"p50,omitempty"`
	P95   *float64 `json:"p95,omitempty"`
	P99   *float64 `json:"p99,omitempty"`
}

func ptr(f float64) *float64 { return &f }

// summarise groups the series by stream and shard; with a second scrape, counters get
// rates and histograms describe what happened between the two.
func summarise(url string, first, second *scrapeResult) metricsSummary {
	last := first
	if second != nil {
		last = second
	}
	s := metricsSummary{URL: url, ScrapedAt: last.at.UTC(), OtherFamilies: last.other, Streams: []streamMetrics{}}
	var dt float64
	if second != nil {
		dt = second.at.Sub(first.at).Seconds()
		s.Interval = math.Round(dt*1000) / 1000
	}
	type streamID struct{ ns, stream string }
	streams := map[streamID]*streamMetrics{}
	shards := map[streamID]map[string]*shardMetrics{}
	for k, v := range last.series {
		id := streamID{k.namespace, k.stream}
		sm := streams[id]
		if sm == nil {
			sm = &streamMetrics{Namespace: k.namespace, Stream: k.stream, Metrics: map[string]metricValue{}, Shards: []shardMetrics{}}
			streams[id] = sm
			shards[id] = map[string]*shardMetrics{}
		}
		var prev *seriesValue
		if second != nil {
			prev = first.series[k]
		}
		mv := valueOf(v, prev, dt)
		if k.shard == "" {
			sm.Metrics[string(k.name)] = mv
			continue
		}
		sh := shards[id][k.shard]
		if sh == nil {
			sh = &shardMetrics{Shard: k.shard, Metrics: map[string]metricValue{}}
			shards[id][k.shard] = sh
		}
		sh.Metrics[string(k.name)] = mv
	}
	for id, sm := range streams {
		for _, sh := range shards[id] {
			sm.Shards = append(sm.Shards, *sh)
		}
		sort.Slice(sm.Shards, func(i, j int) bool { return sm.Shards[i].Shard < sm.Shards[j].Shard })
		s.Streams = append(s.Streams, *sm)
	}
	sort.Slice(s.Streams, func(i, j int) bool {
		if s.Streams[i].Namespace != s.Streams[j].Namespace {
			return s.Streams[i].Namespace < s.Streams[j].Namespace
		}
		return s.Streams[i].Stream < s.Streams[j].Stream
	})
	return s
}

func valueOf(v, prev *seriesValue, dt float64) metricValue {
	mv := metricValue{Kind: v.kind.String()}
	switch v.kind {
	case metrics.Histogram:
		count, sum, buckets := v.count, v.sum, v.buckets
		if dt > 0 {
			var pc, ps float64
			var pb map[float64]float64
			if prev != nil {
				pc, ps, pb = prev.count, prev.sum, prev.buckets
			}
			count, sum = count-pc, sum-ps
			buckets = map[float64]float64{}
			for ub, c := range v.buckets {
				buckets[ub] = c - pb[ub]
			}
			mv.Rate = ptr(count / dt)
		}
		mv.Count = ptr(count)
		if count > 0 {
			mv.Mean = ptr(sum / count)
			mv.P50 = ptr(quantile(0.50, buckets, count))
			mv.P95 = ptr(quantile(0.95, buckets, count))
			mv.P99 = ptr(quantile(0.99, buckets, count))
		}
	default:
		mv.Value = ptr(v.value)
		if dt > 0 && v.kind == metrics.Counter {
			p := 0.0
			if prev != nil {
				p = prev.value
			}
			mv.Rate = ptr(math.Max(v.value-p, 0) / dt)
		}
	}
	return mv
}

// quantile estimates the q-quantile from cumulative buckets the way PromQL's
// histogram_quantile does: linear interpolation inside the bucket that holds the rank.
func quantile(q float64, buckets map[float64]float64, count float64) float64 {
	bounds := make([]float64, 0, len(buckets))
	for ub := range buckets {
		bounds = append(bounds, ub)
	}
	sort.Float64s(bounds)
	rank := q * count
	lower, below := 0.0, 0.0
	for _, ub := range bounds {
		c := buckets[ub]
		if c >= rank {
			if math.IsInf(ub, 1) {
				return lower // the highest finite bound, as PromQL answers
			}
			if c == below {
				return ub
			}
			return lower + (ub-lower)*(rank-below)/(c-below)
		}
		lower, below = ub, c
	}
	return lower
}

// shardColumns are the per-shard metrics the text summary shows as a table.
var shardColumns = []struct {
	name   metrics.Name
	header string
}{
	{metrics.ConsumerUserRecords, "USER RECORDS"},
	{metrics.ConsumerRecordsReceived, "KINESIS RECORDS"},
	{metrics.ConsumerIteratorAge, "BEHIND (ms)"},
	{metrics.ConsumerLagRecords, "UNCHECKPOINTED"},
	{metrics.ConsumerCheckpointSuccess, "CHECKPOINTS"},
	{metrics.ConsumerCheckpointFailure, "CHECKPOINT FAILURES"},
	{metrics.ConsumerErrors, "ERRORS"},
}

func printMetrics(w io.Writer, s metricsSummary) error {
	fmt.Fprintf(w, "Shardline metrics at %s, %s", s.URL, s.ScrapedAt.Format(time.RFC3339))
	if s.Interval > 0 {
		fmt.Fprintf(w, ", rates over %gs", s.Interval)
	}
	fmt.Fprintln(w)
	if len(s.Streams) == 0 {
		fmt.Fprintf(w, "\nNo Shardline metrics found (%d other metric families).\n", s.OtherFamilies)
		return nil
	}
	for _, sm := range s.Streams {
		fmt.Fprintln(w)
		title := "stream " + dash(sm.Stream)
		if sm.Namespace != "" {
			title += " (namespace " + sm.Namespace + ")"
		}
		fmt.Fprintln(w, title)
		names := make([]string, 0, len(sm.Metrics))
		for n := range sm.Metrics {
			names = append(names, n)
		}
		sort.Strings(names)
		t := newTable(w)
		for _, n := range names {
			t.row("  "+n, formatValue(metrics.Name(n), sm.Metrics[n]))
		}
		if err := t.flush(); err != nil {
			return err
		}
		if len(sm.Shards) == 0 {
			continue
		}
		fmt.Fprintln(w)
		header := []string{"  SHARD"}
		for _, c := range shardColumns {
			header = append(header, c.header)
		}
		st := newTable(w, header...)
		for _, sh := range sm.Shards {
			row := []string{"  " + sh.Shard}
			for _, c := range shardColumns {
				v, ok := sh.Metrics[string(c.name)]
				if !ok {
					row = append(row, "-")
					continue
				}
				cell := number(*v.Value)
				if v.Rate != nil {
					cell += " (" + rate(*v.Rate) + ")"
				}
				row = append(row, cell)
			}
			st.row(row...)
		}
		if err := st.flush(); err != nil {
			return err
		}
	}
	return nil
}

// formatValue renders one summarised series for the text summary.
func formatValue(name metrics.Name, v metricValue) string {
	if v.Kind == metrics.Histogram.String() {
		desc, _ := metrics.Lookup(name)
		out := "count " + number(*v.Count)
		if v.Rate != nil {
			out += " (" + rate(*v.Rate) + ")"
		}
		if v.Mean != nil {
			out += fmt.Sprintf("  mean %s  p50 %s  p95 %s  p99 %s", unit(*v.Mean, desc.Unit), unit(*v.P50, desc.Unit),
				unit(*v.P95, desc.Unit), unit(*v.P99, desc.Unit))
		}
		return out
	}
	out := number(*v.Value)
	if v.Rate != nil {
		out += " (" + rate(*v.Rate) + ")"
	}
	return out
}

func number(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', 4, 64)
}

func rate(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) + "/s" }

func unit(f float64, u string) string {
	if u == "seconds" {
		return ago(time.Duration(f * float64(time.Second)))
	}
	return strconv.FormatFloat(f, 'g', 4, 64)
}
