package checkpoint_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shardline/kinesis/checkpoint"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newLiveness(d time.Duration) (*checkpoint.Liveness, *fakeClock) {
	c := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	return checkpoint.NewLiveness(d, c.Now), c
}

// TestLivenessExpiry guards against an observer that judges a counter expired on first sight
// (a worker that just started would steal every lease at once), before a full duration, or
// after a change, and against one that never expires an unchanged counter.
func TestLivenessExpiry(t *testing.T) {
	const d = 10 * time.Second
	l, c := newLiveness(d)
	steps := []struct {
		advance time.Duration
		counter int64
		expired bool
	}{
		{0, 5, false},             // first sight
		{d - 1, 5, false},         // just short of a duration
		{1, 5, true},              // exactly a duration
		{time.Hour, 5, true},      // stays expired
		{0, 6, false},             // moved: live again, timed from now
		{d - 1, 6, false},         //
		{1, 6, true},              //
		{0, 5, false},             // any change counts, backwards too (a row deleted and made again)
		{d / 2, 6, false},         //
		{d / 2, 7, false},         // changes every half duration keep it live
		{d / 2, 8, false},         //
		{d/2 + d/2 - 1, 8, false}, //
		{1, 8, true},              //
	}
	for i, s := range steps {
		c.Advance(s.advance)
		if got := l.Observe("shard", s.counter); got != s.expired {
			t.Errorf("step %d: Observe(counter %d) after %v = %v, want %v", i, s.counter, s.advance, got, s.expired)
		}
	}
}

// TestLivenessIDsIndependent guards against observations of one lease resetting another's.
func TestLivenessIDsIndependent(t *testing.T) {
	l, c := newLiveness(time.Second)
	l.Observe("a", 1)
	l.Observe("b", 1)
	c.Advance(time.Second)
	if !l.Observe("a", 1) {
		t.Error("a not expired")
	}
	if l.Observe("b", 2) {
		t.Error("b expired after its counter moved")
	}
	if !l.Observe("a", 1) {
		t.Error("a live again after b moved")
	}
}

// TestLivenessUnchanged guards against Unchanged reporting a time for an ID never observed, or
// not resetting when the counter moves.
func TestLivenessUnchanged(t *testing.T) {
	l, c := newLiveness(time.Minute)
	if d, ok := l.Unchanged("a"); ok || d != 0 {
		t.Errorf("Unchanged of an unseen ID = %v, %v; want 0, false", d, ok)
	}
	l.Observe("a", 1)
	c.Advance(3 * time.Second)
	if d, ok := l.Unchanged("a"); !ok || d != 3*time.Second {
		t.Errorf("Unchanged = %v, %v; want 3s, true", d, ok)
	}
	l.Observe("a", 1)
	c.Advance(time.Second)
	if d, _ := l.Unchanged("a"); d != 4*time.Second {
		t.Errorf("Unchanged after observing the same counter again = %v, want 4s", d)
	}
	l.Observe("a", 2)
	c.Advance(time.Second)
	if d, _ := l.Unchanged("a"); d != time.Second {
		t.Errorf("Unchanged after the counter moved = %v, want 1s", d)
	}
}

// TestLivenessForgetRetain guards against Forget and Retain keeping state (memory that grows
// with every shard ever seen) or dropping the wrong IDs, and checks that a forgotten ID is
// judged like a new one: live on first sight.
func TestLivenessForgetRetain(t *testing.T) {
	l, c := newLiveness(time.Second)
	for i := range 4 {
		l.Observe(fmt.Sprint(i), 1)
	}
	c.Advance(time.Second)
	l.Forget("0")
	l.Retain(func(id string) bool { return id != "1" })
	for id, want := range map[string]bool{"0": false, "1": false, "2": true, "3": true} {
		if _, seen := l.Unchanged(id); seen != want {
			t.Errorf("after Forget(0) and Retain(not 1), seen(%s) = %v, want %v", id, seen, want)
		}
	}
	if l.Observe("0", 1) {
		t.Error("a forgotten ID is judged expired on its next observation")
	}
	if !l.Observe("2", 1) {
		t.Error("a retained ID lost its observation")
	}
}

// TestLivenessRealClock guards against NewLiveness with a nil clock panicking or misusing the
// monotonic clock.
func TestLivenessRealClock(t *testing.T) {
	l := checkpoint.NewLiveness(time.Millisecond, nil)
	l.Observe("a", 1)
	time.Sleep(2 * time.Millisecond)
	if !l.Observe("a", 1) {
		t.Error("not expired after twice the duration on the real clock")
	}
}

// TestLivenessConcurrent guards against data races between observers (run it with -race).
func TestLivenessConcurrent(t *testing.T) {
	l, c := newLiveness(time.Second)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				id := fmt.Sprint(i % 10)
				l.Observe(id, int64(i/10+g))
				l.Unchanged(id)
				if i%50 == 0 {
					l.Retain(func(string) bool { return true })
					c.Advance(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	if _, ok := l.Unchanged("9"); !ok {
		t.Error("observations lost")
	}
}
