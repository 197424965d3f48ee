package kinesisproxy

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// Guards against faults that ignore their operation or window, rates read backwards, and
// After faults applied before forwarding.
func TestDecide(t *testing.T) {
	set := &faultSet{base: t0, faults: []Fault{
		{Op: "PutRecords", Kind: HTTP500},
		{Op: "GetRecords", Kind: Reset, After: true},
		{Kind: Latency, Latency: time.Second, Start: time.Minute, Duration: time.Minute},
		{Op: "PutRecords", Kind: EntryInternalFailure, Rate: 0.5},
		{Op: "PutRecords", Kind: EntryInternalFailure, Rate: 0.25, After: true},
	}}
	rnd := newSource(1)
	p := decide(set, "PutRecords", t0, rnd)
	if p.fail != HTTP500 || p.failAfter != 0 || p.delay != 0 || !slices.Equal(p.entryRates, []float64{0.5}) ||
		!slices.Equal(p.entryAfterRates, []float64{0.25}) {
		t.Fatalf("PutRecords plan %+v", p)
	}
	p = decide(set, "GetRecords", t0, rnd)
	if p.fail != 0 || p.failAfter != Reset || p.entryRates != nil {
		t.Fatalf("GetRecords plan %+v", p)
	}
	// The latency window is [1m, 2m).
	for at, want := range map[time.Duration]time.Duration{0: 0, time.Minute: time.Second, 2*time.Minute - 1: time.Second, 2 * time.Minute: 0} {
		if got := decide(set, "ListShards", t0.Add(at), rnd).delay; got != want {
			t.Errorf("delay at %v = %v, want %v", at, got, want)
		}
	}
}

// Guards against blackouts that do not cover the window or hang past it.
func TestDecideBlackout(t *testing.T) {
	hang := &faultSet{base: t0, faults: []Fault{{Kind: Blackout, Hang: true, Start: time.Second, Duration: 2 * time.Second}}}
	if p := decide(hang, "PutRecord", t0.Add(1500*time.Millisecond), newSource(1)); !p.hangUntil.Equal(t0.Add(3*time.Second)) || p.blackout {
		t.Fatalf("hang plan %+v", p)
	}
	if p := decide(hang, "PutRecord", t0.Add(3*time.Second), newSource(1)); !p.hangUntil.IsZero() {
		t.Fatalf("hang after the window: %+v", p)
	}
	both := &faultSet{base: t0, faults: []Fault{{Kind: Blackout, Hang: true}, {Kind: Blackout}}}
	if p := decide(both, "PutRecord", t0, newSource(1)); !p.blackout || !p.hangUntil.IsZero() {
		t.Fatalf("a failing blackout must win over a hanging one: %+v", p)
	}
	if p := decide(&faultSet{base: t0, faults: []Fault{{Kind: Blackout, Hang: true}}}, "X", t0, newSource(1)); !p.hangUntil.Equal(forever) {
		t.Fatalf("open-ended hang %+v", p)
	}
}

// Guards against runs that do not repeat: one seed, one sequence of decisions.
func TestSeedRepeats(t *testing.T) {
	set := &faultSet{base: t0, faults: []Fault{{Kind: HTTP503, Rate: 0.3}, {Kind: Latency, Latency: 100 * time.Millisecond, Jitter: 50 * time.Millisecond}}}
	run := func(seed uint64) (out []plan) {
		rnd := newSource(seed)
		for range 200 {
			out = append(out, decide(set, "PutRecords", t0, rnd))
		}
		return out
	}
	a, b, c := run(7), run(7), run(8)
	if !slices.EqualFunc(a, b, func(x, y plan) bool { return x.fail == y.fail && x.delay == y.delay }) {
		t.Fatal("the same seed gave different decisions")
	}
	if slices.EqualFunc(a, c, func(x, y plan) bool { return x.fail == y.fail && x.delay == y.delay }) {
		t.Fatal("different seeds gave the same 200 decisions")
	}
	fails := 0
	for _, p := range a {
		if p.fail == HTTP503 {
			fails++
		}
		if p.delay < 50*time.Millisecond || p.delay > 150*time.Millisecond {
			t.Fatalf("delay %v outside 100ms ± 50ms", p.delay)
		}
	}
	// Binomial(200, 0.3): mean 60, sd 6.5; 30..90 is beyond 4.5 sd.
	if fails < 30 || fails > 90 {
		t.Fatalf("%d of 200 calls failed at rate 0.3", fails)
	}
}

// Guards against the program's -fault syntax drifting from Fault.
func TestParseFault(t *testing.T) {
	got, err := ParseFault("op=PutRecords,kind=entry-internal-failure,rate=0.2,after")
	if want := (Fault{Op: "PutRecords", Kind: EntryInternalFailure, Rate: 0.2, After: true}); err != nil || got != want {
		t.Fatalf("ParseFault = %+v, %v; want %+v", got, err, want)
	}
	got, err = ParseFault("kind=blackout, start=10s, duration=5s, hang")
	if want := (Fault{Kind: Blackout, Start: 10 * time.Second, Duration: 5 * time.Second, Hang: true}); err != nil || got != want {
		t.Fatalf("ParseFault = %+v, %v; want %+v", got, err, want)
	}
	got, err = ParseFault("kind=latency,latency=200ms,jitter=50ms,after=false")
	if want := (Fault{Kind: Latency, Latency: 200 * time.Millisecond, Jitter: 50 * time.Millisecond}); err != nil || got != want {
		t.Fatalf("ParseFault = %+v, %v; want %+v", got, err, want)
	}
	for _, s := range []string{"", "op=PutRecords", "kind=nope", "kind=reset,rate=x", "kind=reset,color=red",
		"kind=reset,op=PutRecordz", "kind=latency", "kind=reset,hang", "kind=blackout,after",
		"kind=entry-internal-failure,op=GetRecords", "kind=http-500,rate=1.5", "kind=latency,latency=1s,jitter=2s"} {
		if _, err := ParseFault(s); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("ParseFault(%q) = %v, want ErrInvalidConfig", s, err)
		}
	}
	for k := range kindNames {
		if back, err := ParseFaultKind(k.String()); err != nil || back != k {
			t.Errorf("ParseFaultKind(%s) = %v, %v", k, back, err)
		}
	}
}
