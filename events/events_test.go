package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/slogtest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Guards against an unknown or undocumented type slipping into the catalog.
func TestCatalog(t *testing.T) {
	seen := map[Type]bool{}
	for _, d := range Catalog {
		if seen[d.Type] || d.Help == "" || (d.Source != "producer" && d.Source != "consumer") ||
			!strings.HasPrefix(string(d.Type), d.Source+".") {
			t.Errorf("bad or repeated catalog entry %+v", d)
		}
		seen[d.Type] = true
	}
}

// Guards against a listener slowing the code that emits: Emit never blocks, events beyond the
// queue are dropped and counted, the rest arrive in order, and Close delivers what was queued.
func TestBusNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	var got []int
	var mu sync.Mutex
	slow := ListenerFunc(func(e Event) {
		<-release
		mu.Lock()
		got = append(got, e.Attempt)
		mu.Unlock()
	})
	var dropped atomic.Int64
	b := NewBus([]Listener{slow}, func() { dropped.Add(1) }, nil)
	start := time.Now()
	for i := range 5000 {
		b.Emit(Event{Type: RecordRetried, Attempt: i})
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("5,000 emits behind a stuck listener took %v", d)
	}
	close(release)
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if dropped.Load() == 0 || dropped.Load() != b.Dropped() || int64(len(got))+b.Dropped() != 5000 {
		t.Errorf("delivered %d, dropped %d (callback %d), want 5000 in all", len(got), b.Dropped(), dropped.Load())
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("events out of order: %d after %d", got[i], got[i-1])
		}
	}
	b.Emit(Event{Type: RecordRetried}) // after Close: dropped silently, no panic
}

// Guards against a panicking listener taking the process down or starving the others.
func TestBusContainsPanics(t *testing.T) {
	var panics []any
	var got atomic.Int64
	b := NewBus([]Listener{
		ListenerFunc(func(Event) { panic("boom") }),
		ListenerFunc(func(Event) { got.Add(1) }),
	}, nil, func(r any) { panics = append(panics, r) })
	for range 3 {
		b.Emit(Event{Type: LeaseLost})
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got.Load() != 3 || b.Panics() != 3 || len(panics) != 3 || panics[0] != "boom" {
		t.Errorf("other listener got %d, panics %d %v; want 3 and 3", got.Load(), b.Panics(), panics)
	}
}

func TestNilBus(t *testing.T) {
	b := NewBus(nil, nil, nil)
	if b != nil || b.Active() {
		t.Fatal("a bus without listeners must be nil and inactive")
	}
	b.Emit(Event{Type: Fatal})
	if err := b.Close(context.Background()); err != nil || b.Dropped() != 0 || b.Panics() != 0 {
		t.Fatal("nil bus")
	}
	if n := testing.AllocsPerRun(100, func() { b.Emit(Event{Type: Fatal, Stream: "s"}) }); n != 0 {
		t.Errorf("Emit on a nil bus allocates %v times", n)
	}
}

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	l := NewLogger(slog.New(slog.NewJSONHandler(&buf, nil)), slog.LevelWarn)
	l.OnEvent(Event{Type: RecordFailed, Stream: "orders", Shard: "s-1", Records: 3, MaybeWritten: true,
		Err: errors.New("timeout"), Attrs: []slog.Attr{slog.String("request_id", "r-9")}})
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"level": "WARN", "msg": "shardline event", "type": "producer.record_failed", "stream": "orders",
		"shard": "s-1", "records": 3.0, "maybe_written": true, "err": "timeout", "request_id": "r-9"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (line %s)", k, got[k], v, buf.String())
		}
	}
	if _, ok := got["group"]; ok {
		t.Errorf("unset fields must be left out: %s", buf.String())
	}
}

func TestSummary(t *testing.T) {
	s := NewSummary(3)
	for i, ty := range []Type{CheckpointWritten, CheckpointWritten, CheckpointWritten, CheckpointFailed, LeaseStolen} {
		s.OnEvent(Event{Type: ty, Shard: "s-1", Attempt: i})
	}
	s.OnEvent(Event{Type: WorkerStarted})
	snap := s.Snapshot()
	if snap.Total != 6 || snap.ByType[CheckpointWritten] != 3 || snap.ByShard["s-1"][CheckpointFailed] != 1 || len(snap.ByShard) != 1 {
		t.Errorf("counts = %+v", snap)
	}
	if snap.SuccessRate != 0.75 {
		t.Errorf("success rate = %v, want 3 written / 4 written or failed", snap.SuccessRate)
	}
	if len(snap.Last) != 3 || snap.Last[0].Type != CheckpointFailed || snap.Last[2].Type != WorkerStarted {
		t.Errorf("last = %+v, want the last 3, oldest first", snap.Last)
	}
	if _, err := json.Marshal(snap); err != nil {
		t.Fatal(err)
	}
	s.Reset()
	if snap := s.Snapshot(); snap.Total != 0 || len(snap.Last) != 0 || snap.SuccessRate != 1 || s.Count(CheckpointWritten) != 0 {
		t.Errorf("after Reset: %+v", snap)
	}
}

func TestContextHandler(t *testing.T) {
	var buf bytes.Buffer
	h := ContextHandler(slog.NewJSONHandler(&buf, nil))
	err := slogtest.TestHandler(h, func() []map[string]any {
		var out []map[string]any
		for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
		return out
	})
	if err != nil {
		t.Fatal(err)
	}

	buf.Reset()
	ctx := WithAttrs(WithAttrs(context.Background(), slog.String("stream", "orders")), slog.String("shard", "s-1"))
	slog.New(h).With("app", "billing").InfoContext(ctx, "billed", "order", 7)
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["stream"] != "orders" || got["shard"] != "s-1" || got["app"] != "billing" || got["order"] != 7.0 {
		t.Errorf("line = %s, want the context's stream and shard with the record's own attributes", buf.String())
	}
	if ContextHandler(h) != h {
		t.Error("wrapping twice must not add the attributes twice")
	}
}

// Guards against a README that forgets an event type.
func TestREADMEListsCatalog(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range Catalog {
		if !bytes.Contains(readme, []byte("| `"+string(d.Type)+"` | "+d.Source)) {
			t.Errorf("README's events table lacks %s", d.Type)
		}
	}
}
