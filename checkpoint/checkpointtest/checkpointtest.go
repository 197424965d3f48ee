// Package checkpointtest is the conformance suite that every [checkpoint.Store] runs, the way
// testing/fstest checks file systems and testing/slogtest checks handlers:
//
//	func TestStore(t *testing.T) {
//		client := connect(t) // one client for the whole run is fine
//		checkpointtest.Run(t, func(t *testing.T) checkpoint.Store {
//			store, err := redisstore.New(client)
//			if err != nil {
//				t.Fatal(err)
//			}
//			return store
//		})
//	}
//
// Run checks the behaviour that the consumer relies on and that [checkpoint.Store] documents:
// positions round-trip and never move backwards (compared as integers, then sub-sequence
// numbers, with the shard end last); exactly one of many racing takes wins; the tenure token
// fences every owner write, so a worker that lost a lease changes nothing; counters move on
// takes, renewals, releases and handoff requests and only then, so a [checkpoint.Liveness]
// driven by them judges expiry right; releases, handoffs, deletes and the worker registry are
// conditional; a heartbeat stores the worker's instance and returns the row as it was before,
// in one atomic step, so two processes with one worker ID can tell each other apart; groups
// and streams never share rows, whatever characters their names hold;
// malformed arguments fail with [checkpoint.ErrInvalid]; a store that cannot answer says
// [checkpoint.ErrUnavailable].
//
// Every subtest calls newStore once and works under a consumer group and stream name of its
// own that no earlier run used, so a store backed by a shared server (Redis, DynamoDB) needs no
// cleanup between subtests or runs. Liveness is judged on a fake clock: the suite never sleeps
// and takes a few seconds against a real server on loopback.
package checkpointtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardline/kinesis/checkpoint"
)

// Run runs the conformance suite as subtests of t. newStore is called once per subtest, with
// that subtest's t (so it may register cleanups); it may return the same store every time.
func Run(t *testing.T, newStore func(t *testing.T) checkpoint.Store) {
	t.Helper()
	r := &runner{id: randomHex(4), newStore: newStore}
	for _, g := range suite() {
		t.Run(g.name, func(t *testing.T) {
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) { c.fn(r.env(t)) })
			}
		})
	}
}

type group struct {
	name  string
	cases []testCase
}

type testCase struct {
	name string
	fn   func(e *env)
}

// suite lists every check, grouped by the part of the contract it covers.
func suite() []group {
	return []group{
		{"Positions", positionCases()},
		{"Leases", leaseCases()},
		{"Fencing", fencingCases()},
		{"Races", raceCases()},
		{"Expiry", expiryCases()},
		{"Handoff", handoffCases()},
		{"Scopes", scopeCases()},
		{"Workers", workerCases()},
		{"Arguments", argumentCases()},
	}
}

// runTimeout bounds every subtest, so a store that hangs fails instead of stalling the run.
const runTimeout = 2 * time.Minute

type runner struct {
	id       string // unique to one call of Run: rows of earlier runs on a shared server never collide
	seq      atomic.Int64
	newStore func(t *testing.T) checkpoint.Store
}

// env is what one subtest works with: a store, a context, and a group and stream of its own.
type env struct {
	t      *testing.T
	ctx    context.Context
	s      checkpoint.Store
	prefix string // unique to this subtest; start every group and stream name with it
	group  string
	stream string
}

func (r *runner) env(t *testing.T) *env {
	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	t.Cleanup(cancel)
	s := r.newStore(t)
	if s == nil {
		t.Fatal("newStore returned nil")
	}
	name := t.Name()
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	prefix := fmt.Sprintf("cpt-%s-%03d-%s", r.id, r.seq.Add(1), name)
	return &env{t: t, ctx: ctx, s: s, prefix: prefix, group: prefix + "-group", stream: prefix + "-stream"}
}

// key returns the key of shard in the subtest's own group and stream.
func (e *env) key(shard string) checkpoint.ShardKey {
	return checkpoint.ShardKey{Group: e.group, Stream: e.stream, Shard: shard}
}

func (e *env) take(key checkpoint.ShardKey, worker string, counter int64) checkpoint.Lease {
	e.t.Helper()
	l, err := e.s.TakeLease(e.ctx, key, worker, counter)
	if err != nil {
		e.t.Fatalf("TakeLease(%s, %q, %d): %v", keyString(key), worker, counter, err)
	}
	if l.Owner != worker || l.Token == "" || l.Counter != counter+1 || l.ShardKey != key || l.PendingOwner != "" {
		e.t.Fatalf("TakeLease(%s, %q, %d) = %s, want owner %q, a token, counter %d, no pending owner",
			keyString(key), worker, counter, leaseString(l), worker, counter+1)
	}
	return l
}

// takeFresh takes a lease row that does not exist yet.
func (e *env) takeFresh(shard, worker string) checkpoint.Lease {
	e.t.Helper()
	return e.take(e.key(shard), worker, 0)
}

func (e *env) get(key checkpoint.ShardKey) checkpoint.Lease {
	e.t.Helper()
	l, err := e.s.GetLease(e.ctx, key)
	if err != nil {
		e.t.Fatalf("GetLease(%s): %v", keyString(key), err)
	}
	if l.ShardKey != key {
		e.t.Fatalf("GetLease(%s) returned the row of %s", keyString(key), keyString(l.ShardKey))
	}
	return l
}

func (e *env) renew(l checkpoint.Lease) checkpoint.Lease {
	e.t.Helper()
	n, err := e.s.RenewLease(e.ctx, l)
	if err != nil {
		e.t.Fatalf("RenewLease(%s): %v", leaseString(l), err)
	}
	return n
}

func (e *env) checkpoint(l checkpoint.Lease, pos checkpoint.Position) {
	e.t.Helper()
	if err := e.s.Checkpoint(e.ctx, l, pos); err != nil {
		e.t.Fatalf("Checkpoint(%s, %s): %v", leaseString(l), posString(pos), err)
	}
}

func (e *env) release(l checkpoint.Lease, final checkpoint.Position) {
	e.t.Helper()
	if err := e.s.ReleaseLease(e.ctx, l, final); err != nil {
		e.t.Fatalf("ReleaseLease(%s, %s): %v", leaseString(l), posString(final), err)
	}
}

// wantRow fails unless the stored row of key is want, field for field.
func (e *env) wantRow(key checkpoint.ShardKey, want checkpoint.Lease, after string) {
	e.t.Helper()
	if got := e.get(key); got != want {
		e.t.Errorf("after %s, stored row is\n\t%s\nwant\n\t%s", after, leaseString(got), leaseString(want))
	}
}

// wantNoRow fails unless key has no row.
func (e *env) wantNoRow(key checkpoint.ShardKey, after string) {
	e.t.Helper()
	l, err := e.s.GetLease(e.ctx, key)
	if !errors.Is(err, checkpoint.ErrNotFound) {
		e.t.Errorf("after %s, GetLease(%s) = %s, %v; want an error matching ErrNotFound",
			after, keyString(key), leaseString(l), err)
	}
}

// wantErr fails unless err matches target (or is nil when target is nil). call describes the
// call that returned err.
func wantErr(t *testing.T, err, target error, call string) {
	t.Helper()
	switch {
	case target == nil && err != nil:
		t.Errorf("%s: unexpected error: %v", call, err)
	case target != nil && err == nil:
		t.Errorf("%s succeeded, want an error matching %s", call, errName(target))
	case target != nil && !errors.Is(err, target):
		t.Errorf("%s = %v, want an error matching %s", call, err, errName(target))
	}
}

func errName(err error) string {
	switch err {
	case checkpoint.ErrNotFound:
		return "ErrNotFound"
	case checkpoint.ErrLeaseLost:
		return "ErrLeaseLost"
	case checkpoint.ErrConflict:
		return "ErrConflict"
	case checkpoint.ErrPositionBehind:
		return "ErrPositionBehind"
	case checkpoint.ErrUnavailable:
		return "ErrUnavailable"
	case checkpoint.ErrInvalid:
		return "ErrInvalid"
	}
	return fmt.Sprintf("%q", err)
}

func keyString(k checkpoint.ShardKey) string {
	return fmt.Sprintf("{group %q stream %q shard %q}", k.Group, k.Stream, k.Shard)
}

func leaseString(l checkpoint.Lease) string {
	return fmt.Sprintf("{shard %q owner %q token %q counter %d checkpoint %s pending %q}",
		l.Shard, l.Owner, l.Token, l.Counter, posString(l.Checkpoint), l.PendingOwner)
}

func posString(p checkpoint.Position) string {
	if p.IsZero() {
		return "<zero>"
	}
	return fmt.Sprintf("%q", p.String())
}

// seq returns the position of sub-sequence sub of sequence number n.
func seq(n string, sub int64) checkpoint.Position {
	return checkpoint.Position{SequenceNumber: n, SubSequenceNumber: sub}
}

var shardEnd = checkpoint.Position{ShardEnd: true}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
}

// fakeClock is the clock of the suite's [checkpoint.Liveness] observers: expiry is judged
// without sleeping.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
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

// race starts n goroutines that call f(i) at once and waits for all of them.
func race(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			f(i)
		}()
	}
	close(start)
	wg.Wait()
}
