package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/kinesis/aggregation"
	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/health"
)

func TestParseTimestamp(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time
	}{
		{"2024-05-01T10:00:00Z", now.Add(-2 * time.Hour)},
		{"2024-05-01T12:00:00.250+02:00", now.Add(-2*time.Hour + 250*time.Millisecond)},
		{"2024-05-01", now.Add(-12 * time.Hour)},
		{"1714564800", now},
		{"1714564800.5", now.Add(500 * time.Millisecond)},
		{"-15m", now.Add(-15 * time.Minute)},
		{"2h30m ago", now.Add(-150 * time.Minute)},
	}
	for _, c := range cases {
		got, err := parseTimestamp(c.in, now)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("parseTimestamp(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	// Guards against accepting what a user did not mean: a future duration, garbage, 1e9.
	for _, bad := range []string{"", "soon", "15m", "-x", "1e9", "-5", "2024-13-01"} {
		if _, err := parseTimestamp(bad, now); err == nil {
			t.Errorf("parseTimestamp(%q) accepted", bad)
		}
	}
}

func TestParseStoreURL(t *testing.T) {
	s, err := parseStoreURL("redis://user:secret@10.0.0.5:6380/3?prefix=prod%3Abilling&dial_timeout=1s")
	if err != nil {
		t.Fatal(err)
	}
	if s.kind != "redis" || s.redis.Addr != "10.0.0.5:6380" || s.redis.DB != 3 || s.prefix != "prod:billing" ||
		s.redis.Password != "secret" || s.redis.DialTimeout != time.Second || strings.Contains(s.display, "secret") {
		t.Fatalf("redis URL parsed as %+v (options %+v)", s, s.redis)
	}
	if s, err = parseStoreURL("rediss://h:6379/0"); err != nil || s.redis.TLSConfig == nil || s.prefix != "shardline" {
		t.Fatalf("rediss: %+v %v; want TLS and the default prefix", s, err)
	}
	if s, err = parseStoreURL("dynamodb://shardline-leases?endpoint=http://127.0.0.1:4569"); err != nil ||
		s.kind != "dynamodb" || s.table != "shardline-leases" || s.endpoint != "http://127.0.0.1:4569" {
		t.Fatalf("dynamodb: %+v %v", s, err)
	}
	for _, bad := range []string{"", "127.0.0.1:6379", "memory://", "redis://h:1/0?prefix=", "redis://h:1/0?bogus=1", "dynamodb://", "dynamodb://t?endpoint=nope", "etcd://x"} {
		_, err := parseStoreURL(bad)
		var u *usageError
		if !errors.As(err, &u) {
			t.Errorf("parseStoreURL(%q) = %v, want a usage error", bad, err)
		}
	}
}

func TestFairShare(t *testing.T) {
	live := []string{"a", "b", "c"}
	cases := []struct {
		worker string
		ready  int
		want   int
	}{
		{"a", 7, 3}, {"b", 7, 2}, {"c", 7, 2}, // the remainder goes to the first workers in ID order
		{"a", 2, 1}, {"c", 2, 0},
		{"zz", 7, 0}, // not live: no share
	}
	for _, c := range cases {
		if got := fairShare(c.worker, live, c.ready); got != c.want {
			t.Errorf("fairShare(%s, %d) = %d, want %d", c.worker, c.ready, got, c.want)
		}
	}
	if fairShare("a", nil, 5) != 0 {
		t.Error("share without live workers")
	}
}

// TestBuildStatus checks the rules status applies: a child waits for an unfinished parent,
// a finished shard is not ready, a row without a listed shard is "gone", liveness comes from
// counters seen moving.
func TestBuildStatus(t *testing.T) {
	open := func(id string, parents ...string) types.Shard {
		s := types.Shard{ShardId: aws.String(id), SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")}}
		if len(parents) > 0 {
			s.ParentShardId = aws.String(parents[0])
		}
		if len(parents) > 1 {
			s.AdjacentParentShardId = aws.String(parents[1])
		}
		return s
	}
	closed := func(id string) types.Shard {
		s := open(id)
		s.SequenceNumberRange.EndingSequenceNumber = aws.String("9")
		return s
	}
	key := func(id string) checkpoint.ShardKey { return checkpoint.ShardKey{Group: "g", Stream: "s", Shard: id} }
	list := []types.Shard{closed("p0"), closed("p1"), open("c2", "p0"), open("c3", "p1"), open("o4")}
	leases := []checkpoint.Lease{
		{ShardKey: key("p0"), Counter: 9, Checkpoint: checkpoint.Position{ShardEnd: true}},
		{ShardKey: key("p1"), Owner: "w1", Counter: 5, Checkpoint: checkpoint.Position{SequenceNumber: "3"}},
		{ShardKey: key("c2"), Owner: "w2", Counter: 7},
		{ShardKey: key("gone"), Counter: 3, Checkpoint: checkpoint.Position{ShardEnd: true}},
	}
	workers := []checkpoint.Worker{{ID: "w2", Counter: 4}, {ID: "w1", Counter: 8}, {ID: "dead", Counter: 2}}
	w := newWatcher()
	t0 := time.Unix(1000, 0)
	for _, l := range leases {
		w.see("lease/"+l.Shard, l.Counter, t0)
	}
	for _, wk := range workers {
		w.see("worker/"+wk.ID, wk.Counter, t0)
	}
	w.see("lease/p1", 6, t0.Add(time.Second))
	w.see("worker/w1", 9, t0.Add(time.Second))
	w.see("worker/w2", 5, t0.Add(2*time.Second))
	lags := map[string]*lagInfo{"p1": {Records: 4, Exact: true}, "c2": {}, "o4": {}}
	gs := buildStatus("s", "g", "redis://x", list, leases, workers, w, t0.Add(3*time.Second), 3*time.Second, true, lags)

	want := map[string]struct {
		state string
		ready bool
	}{"p0": {"closed", false}, "p1": {"closed", true}, "c2": {"open", true}, "c3": {"open", false}, "o4": {"open", true}, "gone": {"gone", false}}
	if len(gs.Shards) != len(want) {
		t.Fatalf("%d shards, want %d: %+v", len(gs.Shards), len(want), gs.Shards)
	}
	for _, s := range gs.Shards {
		if w := want[s.Shard]; s.State != w.state || s.Ready != w.ready {
			t.Errorf("shard %s: state %s ready %v, want %s %v", s.Shard, s.State, s.Ready, w.state, w.ready)
		}
		switch s.Shard {
		case "p1":
			if s.RenewedAgoMs == nil || *s.RenewedAgoMs != 2000 {
				t.Errorf("p1 renewal seen %v ago, want 2000ms", s.RenewedAgoMs)
			}
		case "c2":
			if s.RenewedAgoMs != nil {
				t.Errorf("c2's counter never moved, yet a renewal was seen %dms ago", *s.RenewedAgoMs)
			}
		}
	}
	if gs.ReadyShards != 3 || gs.LiveWorkers != 2 || gs.CaughtUp {
		t.Fatalf("ready %d, live %d, caught up %v; want 3, 2, false (p1 is 4 records behind)", gs.ReadyShards, gs.LiveWorkers, gs.CaughtUp)
	}
	shares := map[string]int{}
	for _, wk := range gs.Workers {
		shares[wk.Worker] = wk.FairShare
		if wk.Worker == "dead" && wk.Live {
			t.Error("a worker whose heartbeat did not move is live")
		}
	}
	if shares["w1"] != 2 || shares["w2"] != 1 || shares["dead"] != 0 {
		t.Fatalf("fair shares %v, want w1 2, w2 1, dead 0", shares)
	}
	// Without watching (--observe 0) nothing can be judged: every worker counts.
	gs = buildStatus("s", "g", "x", list, leases, workers, newWatcher(), t0, 0, false, lags)
	if gs.LiveWorkers != 3 {
		t.Fatalf("unjudged: %d live workers, want all 3", gs.LiveWorkers)
	}
}

// TestDeaggregator: the records tail prints from a checkpoint inside an aggregate are those
// after its sub-sequence number, as the consumer delivers them.
func TestDeaggregator(t *testing.T) {
	b := aggregation.NewBuilder(aggregation.DefaultMaxSize)
	for i := range 4 {
		b.Add(fmt.Sprintf("key-%d", i), "", []byte(fmt.Sprintf("user %d", i)))
	}
	agg := types.Record{SequenceNumber: aws.String("500"), PartitionKey: aws.String("key-0"), Data: b.AppendTo(nil),
		ApproximateArrivalTimestamp: aws.Time(time.Unix(1, 0))}
	plain := types.Record{SequenceNumber: aws.String("600"), PartitionKey: aws.String("p"), Data: []byte("plain")}
	d := newDeaggregator("s", nil)
	var got []string
	for _, r := range d.add(d.add(nil, agg, checkpoint.Position{SequenceNumber: "500", SubSequenceNumber: 1}), plain, checkpoint.Position{SequenceNumber: "500", SubSequenceNumber: 1}) {
		got = append(got, fmt.Sprintf("%s/%d %s %s", r.Sequence, r.SubSequence, r.Key, r.Data))
	}
	want := []string{"500/2 key-2 user 2", "500/3 key-3 user 3", "600/0 p plain"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
	if n := userRecordsAfter(agg, checkpoint.Position{SequenceNumber: "500", SubSequenceNumber: 1}); n != 2 {
		t.Fatalf("userRecordsAfter = %d, want 2", n)
	}
	if p := lastPosition(agg); p != (checkpoint.Position{SequenceNumber: "500", SubSequenceNumber: 3}) {
		t.Fatalf("lastPosition = %v, want 500/3", p)
	}
	// A plain record at the checkpoint's sequence number is done: it is skipped.
	if out := d.add(nil, plain, checkpoint.Position{SequenceNumber: "600"}); len(out) != 0 {
		t.Fatalf("plain record at the checkpoint printed: %+v", out)
	}
}

func TestKeyFromJSON(t *testing.T) {
	for in, want := range map[string]string{`{"u":"alice"}`: "alice", `{"u":42}`: "42", `{"u":true}`: "true", `{"u":1.5e3}`: "1.5e3"} {
		if got, err := keyFromJSON([]byte(in), "u"); err != nil || got != want {
			t.Errorf("keyFromJSON(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`{"v":1}`, `{"u":""}`, `{"u":null}`, `{"u":{"a":1}}`, `[1]`, `nope`} {
		if _, err := keyFromJSON([]byte(bad), "u"); err == nil {
			t.Errorf("keyFromJSON(%s) accepted", bad)
		}
	}
}

func TestReadRecords(t *testing.T) {
	var got []string
	err := readRecords(strings.NewReader("a\r\n\nlast-without-newline"), func(n int, d []byte) error {
		got = append(got, fmt.Sprintf("%d:%s", n, d))
		return nil
	})
	if err != nil || strings.Join(got, "|") != "1:a|2:|3:last-without-newline" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestQuantile(t *testing.T) {
	b := map[float64]float64{0.01: 50, 0.1: 90, 1: 100, math.Inf(1): 100}
	for _, c := range []struct{ q, want float64 }{{0.5, 0.01}, {0.25, 0.005}, {0.7, 0.055}, {0.95, 0.55}} {
		if got := quantile(c.q, b, 100); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
}

// TestMetricsSummary scrapes a fixed exposition twice (the second with more records) and
// checks the JSON figures and the text summary (golden).
func TestMetricsSummary(t *testing.T) {
	base, err := os.ReadFile("testdata/exposition.txt")
	if err != nil {
		t.Fatal(err)
	}
	scrapes := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		body := base
		if scrapes > 0 {
			body = bytes.Replace(body, []byte("} 1200"), []byte("} 1700"), 1)
		}
		scrapes++
		w.Write(body)
	}))
	defer srv.Close()
	var out bytes.Buffer
	a := &app{stdout: &out, json: true}
	if err := a.metrics(context.Background(), srv.URL+"/metrics", 100*time.Millisecond, time.Second); err != nil {
		t.Fatal(err)
	}
	var s metricsSummary
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Streams) != 1 || s.Streams[0].Namespace != "shop" || s.Streams[0].Stream != "orders" || s.OtherFamilies != 1 {
		t.Fatalf("summary %+v", s)
	}
	sh0 := s.Streams[0].Shards[0].Metrics
	if v := sh0["consumer_user_records_total"]; *v.Value != 1700 || math.Abs(*v.Rate-500/s.Interval) > 0.05*500/s.Interval {
		t.Fatalf("user records %v at %v/s, want 1700 at %v/s", *v.Value, *v.Rate, 500/s.Interval)
	}
	if v := sh0["consumer_errors_total"]; *v.Value != 3 {
		t.Fatalf("errors summed over error_type: %v, want 3", *v.Value)
	}
	a.json = false
	out.Reset()
	if err := a.metrics(context.Background(), srv.URL+"/metrics", 0, time.Second); err != nil {
		t.Fatal(err)
	}
	golden(t, "metrics", strings.ReplaceAll(out.String(), srv.URL, "http://127.0.0.1:<port>"))
}

// TestHealthText checks the text of health (golden) and its verdicts: 503 fails.
func TestHealthText(t *testing.T) {
	rep := fixedReporter{health.Report{Component: "consumer", Stream: "orders", Time: time.Unix(0, 0), Live: true}}
	rep.r.Add(health.Check{Name: "leases", Status: health.OK, Figures: map[string]float64{"held": 2, "target": 2}})
	rep.r.Add(health.Check{Name: "store", Status: health.Failing, Reason: "store unavailable for 45s"})
	mux := http.NewServeMux()
	mux.Handle("/healthz", health.LivenessHandler(rep))
	mux.Handle("/readyz", health.ReadinessHandler(rep))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var out bytes.Buffer
	a := &app{stdout: &out}
	err := a.health(context.Background(), []string{srv.URL + "/healthz", srv.URL + "/readyz"}, time.Second)
	if exitCode(err) != exitFailure {
		t.Fatalf("a failing readiness probe: %v, want exit 1", err)
	}
	golden(t, "health", strings.ReplaceAll(out.String(), srv.URL, "http://127.0.0.1:<port>"))
}

type fixedReporter struct{ r health.Report }

func (f fixedReporter) Health() health.Report { return f.r }

// TestExplain: one line, our context first, the cause a user can act on last.
func TestExplain(t *testing.T) {
	// The shape of the SDK's errors: operation, status, request ID, then the exception.
	err := fmt.Errorf("describe orders: operation error Kinesis: DescribeStreamSummary, https response error StatusCode: 400, RequestID: 1f, %w",
		&types.ResourceNotFoundException{Message: aws.String("Stream orders under account 1 not found.")})
	if got := explain(err); got != "describe orders: not found: Stream orders under account 1 not found." {
		t.Fatalf("explain = %q", got)
	}
}
