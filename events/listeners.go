package events

import (
	"context"
	"log/slog"
	"maps"
	"sync"
)

// NewLogger returns a Listener that writes each event as one log line at level on l: message
// "shardline event" with the attributes type, stream, group, worker, shard, attempt, records,
// duration, maybe_written, detail and err (those that are set), then the caller's context
// attributes. With a JSON handler each event is one JSON object.
func NewLogger(l *slog.Logger, level slog.Level) Listener {
	return ListenerFunc(func(e Event) {
		attrs := make([]slog.Attr, 0, 12+len(e.Attrs))
		attrs = append(attrs, slog.String("type", string(e.Type)))
		str := func(k, v string) {
			if v != "" {
				attrs = append(attrs, slog.String(k, v))
			}
		}
		str("stream", e.Stream)
		str("group", e.Group)
		str("worker", e.Worker)
		str("shard", e.Shard)
		str("sequence", e.Sequence)
		if e.SubSequence != 0 {
			attrs = append(attrs, slog.Int64("sub_sequence", e.SubSequence))
		}
		if e.Attempt != 0 {
			attrs = append(attrs, slog.Int("attempt", e.Attempt))
		}
		if e.Records != 0 {
			attrs = append(attrs, slog.Int("records", e.Records))
		}
		if e.Duration != 0 {
			attrs = append(attrs, slog.Duration("duration", e.Duration))
		}
		if e.MaybeWritten {
			attrs = append(attrs, slog.Bool("maybe_written", true))
		}
		str("detail", e.Detail)
		if e.Err != nil {
			attrs = append(attrs, slog.String("err", e.Err.Error()))
		}
		attrs = append(attrs, e.Attrs...)
		l.LogAttrs(context.Background(), level, "shardline event", attrs...)
	})
}

// Summary is a Listener that keeps counts of events per type and per shard, the success rate
// of the events that succeed or fail (see Outcome), and the last events. It is safe for
// concurrent use; Snapshot and Reset may be called at any time.
type Summary struct {
	mu      sync.Mutex
	last    []Event // ring of the last events
	next    int
	full    bool
	total   int64
	byType  map[Type]int64
	byShard map[string]map[Type]int64
}

// NewSummary returns a Summary keeping the last n events (at least 1).
func NewSummary(n int) *Summary {
	return &Summary{last: make([]Event, max(n, 1)), byType: map[Type]int64{}, byShard: map[string]map[Type]int64{}}
}

// OnEvent implements Listener.
func (s *Summary) OnEvent(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total++
	s.byType[e.Type]++
	if e.Shard != "" {
		m := s.byShard[e.Shard]
		if m == nil {
			m = map[Type]int64{}
			s.byShard[e.Shard] = m
		}
		m[e.Type]++
	}
	s.last[s.next] = e
	s.next = (s.next + 1) % len(s.last)
	s.full = s.full || s.next == 0
}

// SummarySnapshot is what a Summary holds at one moment. It marshals to JSON.
type SummarySnapshot struct {
	Total   int64                     `json:"total"`
	ByType  map[Type]int64            `json:"by_type"`
	ByShard map[string]map[Type]int64 `json:"by_shard"`
	// SuccessRate is successes / (successes + failures) over the event types the catalog
	// classes as either; 1 when there are none.
	SuccessRate float64       `json:"success_rate"`
	Last        []EventRecord `json:"last"` // oldest first
}

// EventRecord is an Event as JSON: its error as text.
type EventRecord struct {
	Type         Type   `json:"type"`
	Time         string `json:"time"`
	Stream       string `json:"stream,omitempty"`
	Group        string `json:"group,omitempty"`
	Worker       string `json:"worker,omitempty"`
	Shard        string `json:"shard,omitempty"`
	Sequence     string `json:"sequence,omitempty"`
	SubSequence  int64  `json:"sub_sequence,omitempty"`
	Attempt      int    `json:"attempt,omitempty"`
	Records      int    `json:"records,omitempty"`
	Duration     string `json:"duration,omitempty"`
	MaybeWritten bool   `json:"maybe_written,omitempty"`
	Detail       string `json:"detail,omitempty"`
	Err          string `json:"err,omitempty"`
}

func record(e Event) EventRecord {
	r := EventRecord{Type: e.Type, Time: e.Time.Format("2006-01-02T15:04:05.000Z07:00"), Stream: e.Stream, Group: e.Group,
		Worker: e.Worker, Shard: e.Shard, Sequence: e.Sequence, SubSequence: e.SubSequence, Attempt: e.Attempt, Records: e.Records, MaybeWritten: e.MaybeWritten, Detail: e.Detail}
	if e.Duration != 0 {
		r.Duration = e.Duration.String()
	}
	if e.Err != nil {
		r.Err = e.Err.Error()
	}
	return r
}

// Snapshot returns the counts and the last events.
func (s *Summary) Snapshot() SummarySnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := SummarySnapshot{Total: s.total, ByType: maps.Clone(s.byType), ByShard: make(map[string]map[Type]int64, len(s.byShard)), SuccessRate: 1}
	for shard, m := range s.byShard {
		snap.ByShard[shard] = maps.Clone(m)
	}
	var ok, bad int64
	for t, n := range s.byType {
		switch d, _ := Lookup(t); d.Outcome {
		case Success:
			ok += n
		case Failure:
			bad += n
		}
	}
	if ok+bad > 0 {
		snap.SuccessRate = float64(ok) / float64(ok+bad)
	}
	start, n := 0, s.next
	if s.full {
		start, n = s.next, len(s.last)
	}
	for i := range n {
		snap.Last = append(snap.Last, record(s.last[(start+i)%len(s.last)]))
	}
	return snap
}

// Count returns how many events of type t the summary counted.
func (s *Summary) Count(t Type) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byType[t]
}

// Reset forgets every count and event.
func (s *Summary) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.last)
	s.next, s.full, s.total = 0, false, 0
	s.byType, s.byShard = map[Type]int64{}, map[string]map[Type]int64{}
}
