package metrics

import "testing"

// TestFanoutDeliversToAll guards against a fan-out that stops after the first member or drops
// one of the three kinds of call.
func TestFanoutDeliversToAll(t *testing.T) {
	a, b, c := NewMemory(), NewMemory(), NewMemory()
	l := Labels{Stream: "orders"}
	f := Fanout(a, nil, Nop{}, Fanout(b, c))
	f.Add(ProducerRecordsSent, 2, l)
	f.Set(ProducerQueueSize, 7, l)
	f.Observe(ProducerFlushDuration, 0.5, l)
	for i, m := range []*Memory{a, b, c} {
		if got := m.Counter(ProducerRecordsSent, l); got != 2 {
			t.Errorf("member %d counter = %v, want 2", i, got)
		}
		if got := m.Gauge(ProducerQueueSize, l); got != 7 {
			t.Errorf("member %d gauge = %v, want 7", i, got)
		}
		if got := m.Histogram(ProducerFlushDuration, l); got.Count != 1 || got.Sum != 0.5 {
			t.Errorf("member %d histogram = %+v, want one 0.5", i, got)
		}
	}
	// Flattening: the nested Fanout must not stay a member, or calls pay two levels of dispatch.
	if n := len(f.(fanout)); n != 3 {
		t.Errorf("fanout has %d members, want 3 after flattening", n)
	}
}

// TestFanoutDegenerate guards against wrapping when there is nothing to fan out to: a Fanout of
// nothing must be the free Nop, and a Fanout of one collector that collector itself.
func TestFanoutDegenerate(t *testing.T) {
	if got := Fanout(); got != (Nop{}) {
		t.Errorf("Fanout() = %T, want Nop", got)
	}
	if got := Fanout(nil, Nop{}, &Nop{}, Fanout()); got != (Nop{}) {
		t.Errorf("Fanout(nil, Nop, &Nop, Fanout()) = %T, want Nop", got)
	}
	m := NewMemory()
	if got := Fanout(nil, m, Nop{}); got != Collector(m) {
		t.Errorf("Fanout(nil, m, Nop) = %T, want m itself", got)
	}
}

// TestFanoutCopiesArguments guards against the result aliasing the caller's slice: changing
// it after Fanout returned must not redirect metrics.
func TestFanoutCopiesArguments(t *testing.T) {
	a, b := NewMemory(), NewMemory()
	args := []Collector{a, a}
	f := Fanout(args...)
	args[0] = b
	f.Add(ProducerRecordsSent, 1, Labels{Stream: "s"})
	if got := a.Counter(ProducerRecordsSent, Labels{Stream: "s"}); got != 2 {
		t.Errorf("a = %v, want 2", got)
	}
	if got := b.Counter(ProducerRecordsSent, Labels{Stream: "s"}); got != 0 {
		t.Errorf("b = %v, want 0", got)
	}
}
