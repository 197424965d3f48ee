package producer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/shardline/kinesis/events"
	"github.com/shardline/kinesis/metrics"
)

// Guards against events and metrics telling different stories (issue 10), and against events
// without the caller's context: a request error, a throttle, a refused entry and retries must
// count the same in both, and the failed record's event must carry its Put context's
// attributes.
func TestEventsAgreeWithMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(2)
		f.inject = unavailableThenThrottledAndRefused
		m := metrics.NewMemory()
		sum := events.NewSummary(100)
		p := newProducer(t, f, WithMetrics(m), WithListener(sum), WithAggregation(false), WithOrdering(false))
		ctx := events.WithAttrs(context.Background(), slog.String("request_id", "r-1"))
		for i := range 20 {
			if _, err := p.Put(ctx, "key-"+string(rune('a'+i)), []byte("data")); err != nil {
				t.Fatal(err)
			}
		}
		if n := flushFailing(t, p); n != 1 {
			t.Fatalf("Flush reports %d failed records, want 1", n)
		}
		closeProducer(t, p)
		l := metrics.Labels{Stream: testStream}
		var retried int64
		snap := sum.Snapshot()
		for _, e := range snap.Last {
			if e.Type == events.RecordRetried {
				retried += int64(e.Records)
			}
		}
		failedLabels := l
		failedLabels.ErrorType = "Refused"
		for _, c := range []struct {
			name       string
			events     int64
			fromMetric float64
		}{
			{"retried records", retried, m.Counter(metrics.ProducerRetries, l)},
			{"throttles", snap.ByType[events.EntryThrottled], m.Counter(metrics.ProducerThrottles, l)},
			{"failed records", snap.ByType[events.RecordFailed], m.Counter(metrics.ProducerRecordsFailed, failedLabels)},
		} {
			if float64(c.events) != c.fromMetric || c.events == 0 {
				t.Errorf("%s: events say %d, metrics %v; want equal and not 0", c.name, c.events, c.fromMetric)
			}
		}
		if snap.ByType[events.RequestFailed] != 1 || snap.ByType[events.FlushDone] != 1 || snap.ByType[events.ProducerClosed] != 1 ||
			snap.ByType[events.ShardMapRefreshed] == 0 {
			t.Errorf("event counts %v", snap.ByType)
		}
		var failed *events.EventRecord
		for i := range snap.Last {
			if snap.Last[i].Type == events.RecordFailed {
				failed = &snap.Last[i]
			}
		}
		if failed == nil || failed.Err == "" || failed.Stream != testStream {
			t.Fatalf("record failed event = %+v", failed)
		}
	})
}

// Guards against the caller's context values getting lost on the way to a listener.
func TestEventsCarryContextAttrs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		f.inject = func(call int, in []types.PutRecordsRequestEntry) ([]string, error) {
			return []string{"Refused"}, nil
		}
		got := make(chan events.Event, 10)
		p := newProducer(t, f, WithListener(events.ListenerFunc(func(e events.Event) { got <- e })), WithAggregation(false))
		ctx := events.WithAttrs(context.Background(), slog.String("request_id", "r-7"))
		r, err := p.Put(ctx, "k", []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Wait(context.Background()); err == nil {
			t.Fatal("record delivered, want refused")
		}
		_ = p.Flush(ctx)
		closeProducer(t, p)
		close(got)
		seen := map[events.Type]bool{}
		for e := range got {
			if e.Type == events.RecordFailed || e.Type == events.FlushDone {
				if len(e.Attrs) != 1 || e.Attrs[0].Value.String() != "r-7" {
					t.Errorf("%s event attrs %v, want request_id=r-7", e.Type, e.Attrs)
				}
				seen[e.Type] = true
			}
		}
		if !seen[events.RecordFailed] || !seen[events.FlushDone] {
			t.Errorf("events seen %v", seen)
		}
	})
}

// Guards against a panicking listener breaking the producer.
func TestListenerPanicContained(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(2)
		m := metrics.NewMemory()
		p := newProducer(t, f, WithMetrics(m), WithListener(events.ListenerFunc(func(events.Event) { panic("listener bug") })))
		w := putN(t, p, 100, 10, 50)
		flush(t, p)
		closeProducer(t, p)
		for _, o := range w.outcomes(t) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
		}
		if m.Counter(metrics.EventsListenerPanics, metrics.Labels{Stream: testStream}) == 0 {
			t.Error("listener panics not counted")
		}
		if _, err := New(f, testStream, WithListener(nil)); !errors.As(err, new(*ConfigError)) {
			t.Errorf("New with a nil listener = %v, want a *ConfigError", err)
		}
	})
}

// Guards against log lines an operator cannot attribute (issue 10, item 2): every producer line
// carries the stream, and errors go under "err", the key the consumer uses too.
func TestLogLinesCarryContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		f.inject = func(call int, in []types.PutRecordsRequestEntry) ([]string, error) {
			if call == 0 {
				return nil, &smithy.GenericAPIError{Code: "ServiceUnavailable", Fault: smithy.FaultServer}
			}
			return nil, nil
		}
		var buf bytes.Buffer
		var mu sync.Mutex
		w := writerFunc(func(b []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return buf.Write(b) })
		p := newProducer(t, f, WithLogger(slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))))
		putN(t, p, 10, 2, 10)
		flush(t, p)
		closeProducer(t, p)
		mu.Lock()
		defer mu.Unlock()
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		errLines := 0
		for _, line := range lines {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("not JSON: %q", line)
			}
			if rec["stream"] != testStream {
				t.Errorf("line without the stream: %s", line)
			}
			if _, ok := rec["error"]; ok {
				t.Errorf("error under \"error\", want \"err\": %s", line)
			}
			if _, ok := rec["err"]; ok {
				errLines++
			}
		}
		if errLines == 0 {
			t.Errorf("no line with an error in %d lines", len(lines))
		}
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// Guards against per-call telemetry that does not count what happened: every PutRecords call
// is timed, and the failed one is counted by its error code.
func TestPerCallTelemetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(2)
		f.inject = unavailableThenThrottledAndRefused
		m := metrics.NewMemory()
		p := newProducer(t, f, WithMetrics(m), WithAggregation(false), WithOrdering(false))
		putN(t, p, 40, 40, 25)
		_ = p.Flush(context.Background())
		closeProducer(t, p)
		l := metrics.Labels{Stream: testStream, Operation: "PutRecords"}
		puts, _ := f.calls()
		if n := m.Histogram(metrics.KinesisCallDuration, l).Count; n != uint64(puts) || n == 0 {
			t.Errorf("%d PutRecords calls timed, the fake saw %d", n, puts)
		}
		l.ErrorType = "ServiceUnavailable"
		if n := m.Counter(metrics.KinesisCallErrors, l); n != 1 {
			t.Errorf("%v PutRecords errors counted, want the one 503", n)
		}
		if n := m.Histogram(metrics.KinesisCallDuration, metrics.Labels{Stream: testStream, Operation: "ListShards"}).Count; n == 0 {
			t.Error("ListShards never timed")
		}
	})
}
