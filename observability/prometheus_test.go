package observability

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/consumer"
	"github.com/shardline/kinesis/localstack"
	"github.com/shardline/kinesis/localstack/kinesisproxy"
	shardprom "github.com/shardline/kinesis/metrics/prometheus"
	"github.com/shardline/kinesis/producer"
)

// Scrape jobs of the test's Prometheus, as an operator would name them.
const (
	producerJob = "shardline-producer"
	consumerJob = "shardline-consumer"
)

// mayBeEmpty lists the dashboard queries the test's workload does not feed, with the reason;
// every other query must return data. They must still parse and evaluate.
var mayBeEmpty = map[string]map[string]string{
	"Checkpoint outcomes":               {"B": "the memory store refuses no checkpoint here"},
	"Checkpoint store errors":           {"A": "the memory store does not fail"},
	"Records skipped and dead-lettered": {"A": "no undecodable record is written", "B": "the handler never fails"},
	"Lease events per minute":           {"C": "handoffs are graceful: no lease is lost"},
	"Event delivery to listeners":       {"A": "no listener falls behind", "B": "no listener panics"},
	"Kinesis call errors by operation":  {"A": "calls may all succeed"},
}

// knownLint lists what promtool check metrics reports on Shardline's exposition on purpose.
var knownLint = map[string]string{
	namespace + `_consumer_iterator_age_milliseconds use base unit "seconds" instead of "milliseconds"`: "the metrics catalog (DESIGN.md) fixes this name, after the async-kinesis catalog it keeps",
}

// TestDashboardOnPrometheus runs a producer and two consumer workers against the local
// stack through the limits-and-faults proxy (so that throttles, errors, retries and failed
// records happen), reshards the stream while they run, has a real Prometheus scrape them
// every second with the alerting rules loaded, and then evaluates every dashboard query
// through Prometheus' HTTP API.
func TestDashboardOnPrometheus(t *testing.T) {
	promBin := needTool(t, "prometheus")
	promtool := needTool(t, "promtool")
	client := localstack.Kinesis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	stack, err := localstack.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stack.Kinesis == "" {
		t.Skip("runs against the local stack only, not against AWS")
	}
	began := time.Now()
	stream := localstack.NewStream(t, client, 2)
	w := startWorkload(ctx, t, stack.Kinesis, stream)
	p := startPrometheus(t, promBin, map[string][]string{
		producerJob: {w.producer},
		consumerJob: w.consumers,
	})
	p.waitTargetsUp(t, 1+len(w.consumers), 20*time.Second)

	// Reshard 2 -> 4 while both sides run: the stream and lease panels need it.
	time.Sleep(time.Until(began.Add(8 * time.Second)))
	if _, err := client.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{
		StreamName: aws.String(stream), TargetShardCount: aws.Int32(4), ScalingType: types.ScalingTypeUniformScaling,
	}); err != nil {
		t.Fatalf("reshard: %v", err)
	}

	checks := dashboardChecks(t, loadDashboard(t), map[string]string{
		"prefix":          namespace + "_",
		"job":             producerJob + "|" + consumerJob, // how Grafana writes two selected values
		"stream":          regexp.QuoteMeta(stream),
		"__rate_interval": "10s", // 4 scrape intervals and more, as Grafana picks it
		"__interval":      "2s",
		"__range":         "5m",
	})
	deadline := began.Add(55 * time.Second)
	// Each query is asked until it returns data or the deadline passes; an error (a query
	// that does not parse or evaluate) is final.
	for {
		missing, failed := 0, 0
		for _, c := range checks {
			if c.err != "" {
				failed++
				continue
			}
			if c.hadData {
				continue
			}
			n, err := p.query(ctx, c.expr)
			switch {
			case err != nil:
				c.err = err.Error()
				failed++
			case n > 0:
				c.hadData = true
			case c.required:
				missing++
			}
		}
		if missing == 0 || failed > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	asked := time.Since(began).Round(time.Second)
	for _, c := range checks {
		switch {
		case c.err != "":
			t.Errorf("%s: %s\n%s", c.where, c.err, c.expr)
		case c.required && !c.hadData:
			t.Errorf("%s returned no data in %v\n%s", c.where, asked, c.expr)
		}
	}
	t.Logf("%d dashboard queries parsed and evaluated; %d returned data (%v after the start)",
		len(checks), countData(checks), asked)

	// The variables list what ran.
	d := loadDashboard(t)
	for name, want := range map[string][]string{"job": {producerJob, consumerJob}, "stream": {stream}} {
		v, _ := d.variable(name)
		got, err := p.variableValues(ctx, v, map[string]string{"prefix": namespace + "_", "job": ".*"})
		if err != nil {
			t.Errorf("variable %s: %v", name, err)
		} else if !containsAll(got, want) {
			t.Errorf("variable %s lists %q, want %q among them", name, got, want)
		}
	}

	// Every alerting rule evaluates on real series without error.
	p.checkRules(ctx, t)

	// promtool check metrics accepts what the producer and the consumers expose.
	for _, addr := range append([]string{w.producer}, w.consumers...) {
		checkExposition(t, promtool, addr)
	}
}

// check is one query of the dashboard.
type check struct {
	where    string // panel and refId, or variable
	expr     string
	required bool
	hadData  bool
	err      string
}

func countData(cs []*check) int {
	n := 0
	for _, c := range cs {
		if c.hadData {
			n++
		}
	}
	return n
}

// dashboardChecks returns every query of d with the variables replaced by vars.
func dashboardChecks(t *testing.T, d dashboard, vars map[string]string) []*check {
	t.Helper()
	var cs []*check
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			expr, err := expand(tg.Expr, vars)
			if err != nil {
				t.Fatalf("panel %q %s: %v", p.Title, tg.RefID, err)
			}
			_, optional := mayBeEmpty[p.Title][tg.RefID]
			cs = append(cs, &check{where: fmt.Sprintf("panel %q %s", p.Title, tg.RefID), expr: expr, required: !optional})
		}
	}
	for title, refs := range mayBeEmpty {
		for ref := range refs {
			if !slices.ContainsFunc(cs, func(c *check) bool { return c.where == fmt.Sprintf("panel %q %s", title, ref) }) {
				t.Errorf("mayBeEmpty names panel %q %s, which the dashboard does not have", title, ref)
			}
		}
	}
	for _, name := range []string{"job", "stream"} {
		v, _ := d.variable(name)
		q, err := variableQuery(v)
		if err == nil {
			q, err = expand(q, vars)
		}
		if err != nil {
			t.Fatalf("variable %s: %v", name, err)
		}
		cs = append(cs, &check{where: "variable " + name, expr: q, required: true})
	}
	return cs
}

func containsAll(got, want []string) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}

// workload is what the Prometheus of the test scrapes.
type workload struct {
	producer  string   // host:port of the producer's /metrics
	consumers []string // host:port of each consumer worker's /metrics
}

// startWorkload starts, through a limits-and-faults proxy in front of kinesisURL: a producer
// putting 200 records of 200 bytes a second (more than the proxy lets a shard take, and with
// 5% of entries failing, so throttles, retries and failed records happen) and two consumer
// workers of one group, the second joining 3 s after the first so that it steals leases. The
// proxy also limits reads to 2 GetRecords calls a second per shard, and the consumers poll 5
// times a second even when caught up: consumer throttles.
// Everything stops when the test ends.
func startWorkload(ctx context.Context, t *testing.T, kinesisURL, stream string) workload {
	t.Helper()
	limits := kinesisproxy.DefaultLimits()
	limits.WriteBytes = 12 << 10
	limits.ReadCalls = 2
	proxy, err := kinesisproxy.Start(ctx, kinesisproxy.Config{
		Upstream: kinesisURL,
		Limits:   limits,
		Faults:   []kinesisproxy.Fault{{Op: "PutRecords", Kind: kinesisproxy.EntryInternalFailure, Rate: 0.05}},
		Seed:     10,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close(context.Background()) })
	stack, err := localstack.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	viaProxy := stack.KinesisClient(func(o *kinesis.Options) { o.BaseEndpoint = aws.String(proxy.URL()) })
	// The SDK's own retries would absorb most read throttles before the consumer sees them.
	readViaProxy := stack.KinesisClient(func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(proxy.URL())
		o.RetryMaxAttempts = 1
	})

	var w workload
	// Consumers first, so that t.Cleanup stops them after the producer (cleanups run last
	// registered first) and they read what it wrote until then.
	store := checkpoint.NewMemory()
	runCtx, stopConsumers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i := range 2 {
		addr, collector := serveMetrics(t)
		w.consumers = append(w.consumers, addr)
		c, err := consumer.New(readViaProxy, stream, store,
			consumer.WithGroup("dashboard"), consumer.WithWorkerID(fmt.Sprintf("worker-%d", i+1)),
			consumer.WithLeaseDuration(3*time.Second), consumer.WithShutdownTimeout(5*time.Second),
			// Polling a caught-up shard 5 times a second against the proxy's 2 makes the
			// read throttles the consumer panels show.
			consumer.WithIdleInterval(200*time.Millisecond),
			consumer.WithMetrics(collector))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			if i > 0 {
				select {
				case <-time.After(3 * time.Second):
				case <-runCtx.Done():
					return
				}
			}
			if err := c.Run(runCtx, func(context.Context, *consumer.Batch) error { return nil }); err != nil && !errors.Is(err, context.Canceled) {
				errs <- fmt.Errorf("worker-%d: %w", i+1, err)
			}
		})
	}
	t.Cleanup(func() {
		stopConsumers()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("consumer: %v", err)
		}
	})

	addr, collector := serveMetrics(t)
	w.producer = addr
	p, err := producer.New(viaProxy, stream, producer.WithMetrics(collector),
		producer.WithRetryBudget(2, 10*time.Second), producer.WithBackoff(50*time.Millisecond, 500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	putCtx, stopPuts := context.WithCancel(ctx)
	putsDone := make(chan struct{})
	go func() {
		defer close(putsDone)
		limiter := rate.NewLimiter(200, 10)
		data := bytes.Repeat([]byte("x"), 200)
		for i := 0; i < 20_000; i++ { // 100 s at 200/s: the test's context ends it first
			if limiter.Wait(putCtx) != nil {
				return
			}
			if _, err := p.Put(putCtx, "key-"+strconv.Itoa(i%100), data); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		stopPuts()
		<-putsDone
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Close(cctx) // records failing at Close are part of the workload
	})
	return w
}

// serveMetrics serves a new registry with a Shardline collector on a free loopback port until
// the test ends.
func serveMetrics(t *testing.T) (string, *shardprom.Collector) {
	t.Helper()
	reg := prometheus.NewRegistry()
	c, err := shardprom.New(reg, shardprom.WithNamespace(namespace))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), c
}

// promServer is a Prometheus the test started.
type promServer struct {
	url string
	log string // path of its log file
}

// startPrometheus starts prometheus on a free loopback port with a temporary config and
// storage, scraping targets (job -> host:port) every second and evaluating the alerting
// rules every second. The test stops it (SIGTERM to its PID, SIGKILL after 10 s).
func startPrometheus(t *testing.T, bin string, targets map[string][]string) *promServer {
	t.Helper()
	dir := t.TempDir()
	rules, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n")
	fmt.Fprintf(&cfg, "rule_files:\n  - %q\n", rules)
	fmt.Fprintf(&cfg, "scrape_configs:\n")
	for _, job := range slices.Sorted(maps.Keys(targets)) {
		quoted := make([]string, len(targets[job]))
		for i, a := range targets[job] {
			quoted[i] = strconv.Quote(a)
		}
		fmt.Fprintf(&cfg, "  - job_name: %q\n    static_configs:\n      - targets: [%s]\n", job, strings.Join(quoted, ", "))
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "prometheus.log")
	for attempt := 1; ; attempt++ {
		addr := freeLoopbackAddr(t)
		logf, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin,
			"--config.file="+cfgPath,
			"--storage.tsdb.path="+filepath.Join(dir, "data"),
			"--storage.tsdb.retention.time=1h",
			"--web.listen-address="+addr,
			"--log.level=warn")
		cmd.Stdout, cmd.Stderr = logf, logf
		dieWithTest(cmd)
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		_ = logf.Close()
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		})
		p := &promServer{url: "http://" + addr, log: logPath}
		switch p.waitReady(exited, 30*time.Second) {
		case nil:
			return p
		case errExited:
			if b, _ := os.ReadFile(logPath); bytes.Contains(b, []byte("address already in use")) && attempt < 3 {
				continue // another process took the free port first
			}
		}
		b, _ := os.ReadFile(logPath)
		t.Fatalf("prometheus on %s did not become ready:\n%s", addr, b)
	}
}

var errExited = errors.New("prometheus exited")

func (p *promServer) waitReady(exited <-chan struct{}, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errExited
		default:
		}
		resp, err := http.Get(p.url + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("not ready in time")
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// api calls a Prometheus HTTP API endpoint, with form as a POST body if not nil, and decodes
// the data of its answer into v.
func (p *promServer) api(ctx context.Context, path string, form url.Values, v any) error {
	var req *http.Request
	var err error
	if form == nil {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, p.url+path, nil)
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, p.url+path, strings.NewReader(form.Encode()))
	}
	if err != nil {
		return err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Status    string          `json:"status"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("%s: HTTP %d: %w", path, resp.StatusCode, err)
	}
	if body.Status != "success" {
		return fmt.Errorf("%s: %s: %s", body.Status, body.ErrorType, body.Error)
	}
	return json.Unmarshal(body.Data, v)
}

// instantSeries is one series of an instant vector answer.
type instantSeries struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// queryVector evaluates expr now and returns its series.
func (p *promServer) queryVector(ctx context.Context, expr string) ([]instantSeries, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.api(ctx, "/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("result type %s, want vector", data.ResultType)
	}
	var series []instantSeries
	err := json.Unmarshal(data.Result, &series)
	return series, err
}

// query evaluates expr now and returns how many of its series have a number (not NaN).
func (p *promServer) query(ctx context.Context, expr string) (int, error) {
	series, err := p.queryVector(ctx, expr)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range series {
		str, _ := s.Value[1].(string)
		if v, err := strconv.ParseFloat(str, 64); err == nil && !math.IsNaN(v) {
			n++
		}
	}
	return n, nil
}

// variableValues evaluates a query_result variable the way Grafana does: the query's series
// printed as {label="value", ...}, each matched by the variable's regex.
func (p *promServer) variableValues(ctx context.Context, v variable, vars map[string]string) ([]string, error) {
	q, err := variableQuery(v)
	if err == nil {
		q, err = expand(q, vars)
	}
	if err != nil {
		return nil, err
	}
	re, err := grafanaRegex(v.Regex)
	if err != nil {
		return nil, err
	}
	series, err := p.queryVector(ctx, q)
	if err != nil {
		return nil, err
	}
	var values []string
	for _, s := range series {
		var b strings.Builder
		b.WriteString("{")
		for i, k := range slices.Sorted(maps.Keys(s.Metric)) {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s=%q", k, s.Metric[k])
		}
		b.WriteString("}")
		if m := re.FindStringSubmatch(b.String()); m != nil && !slices.Contains(values, m[1]) {
			values = append(values, m[1])
		}
	}
	return values, nil
}

// waitTargetsUp waits until Prometheus has scraped n targets successfully.
func (p *promServer) waitTargetsUp(t *testing.T, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		var data struct {
			ActiveTargets []struct {
				ScrapeURL string `json:"scrapeUrl"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"activeTargets"`
		}
		if err := p.api(context.Background(), "/api/v1/targets", nil, &data); err != nil {
			last = err.Error()
		} else {
			up := 0
			var states []string
			for _, tg := range data.ActiveTargets {
				if tg.Health == "up" {
					up++
				}
				states = append(states, fmt.Sprintf("%s %s %s", tg.ScrapeURL, tg.Health, tg.LastError))
			}
			if up == n && len(data.ActiveTargets) == n {
				return
			}
			last = strings.Join(states, "; ")
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("Prometheus did not scrape %d targets within %v: %s", n, within, last)
}

// checkRules requires every alerting rule loaded, evaluated, and free of evaluation errors.
func (p *promServer) checkRules(ctx context.Context, t *testing.T) {
	t.Helper()
	var data struct {
		Groups []struct {
			Rules []struct {
				Name           string `json:"name"`
				Health         string `json:"health"`
				LastError      string `json:"lastError"`
				LastEvaluation string `json:"lastEvaluation"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := p.api(ctx, "/api/v1/rules", nil, &data); err != nil {
		t.Fatalf("rules: %v", err)
	}
	var names []string
	for _, g := range data.Groups {
		for _, r := range g.Rules {
			names = append(names, r.Name)
			if r.Health != "ok" || r.LastError != "" {
				t.Errorf("rule %s: health %q, last error %q", r.Name, r.Health, r.LastError)
			}
		}
	}
	var want []string
	for _, r := range loadRules(t) {
		want = append(want, r.Alert)
	}
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("Prometheus loaded rules %q, want %q", names, want)
	}
}

// checkExposition pipes addr's /metrics into promtool check metrics and fails on every
// problem it reports that knownLint does not list.
func checkExposition(t *testing.T, promtool, addr string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(body, []byte(namespace+"_")) {
		t.Fatalf("%s/metrics exposes no %s_ metric:\n%s", addr, namespace, body)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("promtool check metrics: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		if why, ok := knownLint[line]; ok {
			t.Logf("%s: promtool check metrics: %s (known: %s)", addr, line, why)
			continue
		}
		t.Errorf("%s: promtool check metrics: %s", addr, line)
	}
}
