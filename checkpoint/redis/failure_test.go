package redis

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/shardline/kinesis/checkpoint"
)

// snapshot returns every key under prefix with its type and content, read by a direct client,
// to show that a failure changed nothing.
func snapshot(t testing.TB, client *goredis.Client, prefix string) map[string]string {
	t.Helper()
	ctx := testCtx(t)
	keys, err := client.Keys(ctx, strings.NewReplacer("[", `\[`, "*", `\*`, "?", `\?`).Replace(prefix)+"*").Result()
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		typ := client.Type(ctx, k).Val()
		switch typ {
		case "hash":
			out[k] = fmt.Sprint(client.HGetAll(ctx, k).Val())
		case "set":
			m := client.SMembers(ctx, k).Val()
			out[k] = fmt.Sprint(len(m), m)
		default:
			out[k] = typ
		}
	}
	return out
}

// fastRetries keeps go-redis's retries short (one dial attempt per connection, millisecond
// backoffs), so a call to an unreachable server fails in milliseconds rather than after the
// default ~0.5 s of dial retries per attempt.
func fastRetries(o *goredis.Options) {
	o.MinRetryBackoff = time.Millisecond
	o.MaxRetryBackoff = 5 * time.Millisecond
	o.DialTimeout = time.Second
	o.DialerRetries = 1
	o.DialerRetryTimeout = time.Millisecond
}

// eventually calls f until it succeeds or 5 s passed, and returns its last error. After
// PoolSize failed dials the go-redis pool fails fast and probes the server once a second, so
// the first calls after the server came back may still fail.
func eventually(f func() error) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Guards against the classic peer bug of reading a failed GET as "no checkpoint"
// (ErrNotFound would make the consumer restart the shard from its start position), against
// errors that lose the go-redis/net error behind them, and against a failure corrupting a row
// or losing a lease: after the link comes back, the same handle renews and checkpoints.
func TestUnreachableServer(t *testing.T) {
	_, direct, prefix := newTestStore(t)
	p := startProxy(t, direct.Options().Addr)
	s, err := New(proxiedClient(t, direct, p, fastRetries), WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	key := checkpoint.ShardKey{Group: "g", Stream: "s", Shard: "shardId-000000000001"}
	l := mustTake(t, s, key, "w", 0)
	pos := checkpoint.Position{SequenceNumber: "1000", SubSequenceNumber: 2}
	if err := s.Checkpoint(ctx, l, pos); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Heartbeat(ctx, checkpoint.Worker{Group: "g", Stream: "s", ID: "w", Instance: "i"}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, direct, prefix)

	p.cut()
	for name, err := range callEveryMethod(ctx, s, l) {
		var opErr *net.OpError
		switch {
		case errors.Is(err, checkpoint.ErrNotFound):
			t.Errorf("%s while unreachable = %v: ErrNotFound for a failed call", name, err)
		case !errors.Is(err, checkpoint.ErrUnavailable):
			t.Errorf("%s while unreachable = %v, want ErrUnavailable", name, err)
		case !errors.As(err, &opErr):
			t.Errorf("%s while unreachable = %v: errors.As does not reach the *net.OpError", name, err)
		}
	}
	if after := snapshot(t, direct, prefix); !maps.Equal(before, after) {
		t.Errorf("rows changed while the server was unreachable:\nbefore %v\nafter  %v", before, after)
	}

	p.restore()
	var renewed checkpoint.Lease
	err = eventually(func() (err error) {
		if renewed, err = s.RenewLease(ctx, l); err != nil && !errors.Is(err, checkpoint.ErrUnavailable) {
			t.Fatalf("RenewLease after the link came back: %v", err)
		}
		return err
	})
	if err != nil {
		t.Fatalf("RenewLease after the link came back: %v", err)
	}
	if renewed.Owner != l.Owner || renewed.Token != l.Token || renewed.Checkpoint != pos || renewed.Counter != l.Counter+1 {
		t.Errorf("after the outage the row is %+v, want owner %q, token %q, checkpoint %s, counter %d",
			renewed, l.Owner, l.Token, pos, l.Counter+1)
	}
	next := checkpoint.Position{SequenceNumber: "1001"}
	if err := s.Checkpoint(ctx, renewed, next); err != nil {
		t.Fatalf("Checkpoint after the link came back: %v", err)
	}
}

// Guards against a cut in the middle of traffic losing an acknowledged checkpoint, moving a
// position back, reporting something other than ErrUnavailable, or losing the lease, with
// several workers checkpointing and renewing concurrently through one client.
func TestCutMidRun(t *testing.T) {
	_, direct, prefix := newTestStore(t)
	p := startProxy(t, direct.Options().Addr)
	s, err := New(proxiedClient(t, direct, p, fastRetries), WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	const workers = 4
	type worker struct {
		lease      checkpoint.Lease // owned by the worker goroutine until wg.Wait
		acked      int              // last acknowledged sequence number; same
		unexpected error            // same
		failed     atomic.Int32
		okAfter    atomic.Int32 // successes that started after the restore
	}
	ws := make([]*worker, workers)
	for i := range ws {
		ws[i] = &worker{lease: mustTake(t, s, checkpoint.ShardKey{Group: "g", Stream: "s", Shard: fmt.Sprint("shard-", i)}, fmt.Sprint("w", i), 0)}
	}
	var restored atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(func() {
			ctx := context.Background()
			for n := 1; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				after := restored.Load()
				var err error
				if n%10 == 0 {
					var l checkpoint.Lease
					if l, err = s.RenewLease(ctx, w.lease); err == nil {
						w.lease = l
					}
				} else if err = s.Checkpoint(ctx, w.lease, checkpoint.Position{SequenceNumber: fmt.Sprint(n)}); err == nil {
					w.acked = n
				}
				switch {
				case err == nil && after:
					w.okAfter.Add(1)
				case err == nil:
				case errors.Is(err, checkpoint.ErrUnavailable) && !errors.Is(err, checkpoint.ErrNotFound):
					w.failed.Add(1)
					time.Sleep(5 * time.Millisecond) // bounded load while the server is away
				default:
					w.unexpected = err
					return
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	p.cut()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if allAtLeast(ws, func(w *worker) int32 { return w.failed.Load() }, 3) {
			break
		}
	}
	p.restore()
	restored.Store(true)
	// The go-redis pool probes a server it failed to dial once a second: wait for every
	// worker to succeed a few times again, for at most 5 s.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if allAtLeast(ws, func(w *worker) int32 { return w.okAfter.Load() }, 10) {
			break
		}
	}
	close(stop)
	wg.Wait()

	ctx := testCtx(t)
	for i, w := range ws {
		if w.unexpected != nil {
			t.Errorf("worker %d: error other than ErrUnavailable: %v", i, w.unexpected)
		}
		if w.failed.Load() == 0 {
			t.Errorf("worker %d saw no failure: the cut did not bite", i)
		}
		if w.okAfter.Load() == 0 {
			t.Errorf("worker %d: no call succeeded after the link came back", i)
		}
		got, err := s.GetLease(ctx, w.lease.ShardKey)
		if err != nil {
			t.Fatalf("worker %d: GetLease: %v", i, err)
		}
		if got.Owner != w.lease.Owner || got.Token != w.lease.Token {
			t.Errorf("worker %d lost its lease: row %+v, handle %+v", i, got, w.lease)
		}
		if want := fmt.Sprint(w.acked); got.Checkpoint.SequenceNumber != want {
			t.Errorf("worker %d: stored position %s, last acknowledged %s", i, got.Checkpoint, want)
		}
	}
}

func allAtLeast[T any](xs []T, f func(T) int32, n int32) bool {
	for _, x := range xs {
		if f(x) < n {
			return false
		}
	}
	return true
}

// Guards against a server that accepts connections but never answers hanging the caller or
// coming back as anything but ErrUnavailable: the client's ReadTimeout bounds every call, and
// with ContextTimeoutEnabled the context deadline does too. A request held during the hang and
// dropped with its connection changes nothing.
func TestHungServerTimesOut(t *testing.T) {
	_, direct, prefix := newTestStore(t)
	p := startProxy(t, direct.Options().Addr)
	const readTimeout = 200 * time.Millisecond
	s, err := New(proxiedClient(t, direct, p, func(o *goredis.Options) {
		o.ReadTimeout, o.WriteTimeout = readTimeout, readTimeout
		o.MaxRetries = -1 // one attempt: the bound below is per attempt
	}), WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	withCtxDeadline, err := New(proxiedClient(t, direct, p, func(o *goredis.Options) {
		o.ReadTimeout, o.WriteTimeout = time.Minute, time.Minute
		o.ContextTimeoutEnabled = true
		o.MaxRetries = -1
	}), WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	key := checkpoint.ShardKey{Group: "g", Stream: "s", Shard: "shardId-000000000001"}
	l := mustTake(t, s, key, "w", 0)
	if _, err := withCtxDeadline.GetLease(ctx, key); err != nil { // opens its pooled connection
		t.Fatal(err)
	}
	before := snapshot(t, direct, prefix)

	p.hang()
	for name, err := range callEveryMethod(ctx, s, l) {
		var netErr net.Error
		switch {
		case !errors.Is(err, checkpoint.ErrUnavailable) || errors.Is(err, checkpoint.ErrNotFound):
			t.Errorf("%s against a hung server = %v, want ErrUnavailable", name, err)
		case !errors.As(err, &netErr) || !netErr.Timeout():
			t.Errorf("%s against a hung server = %v, want a timeout net.Error inside", name, err)
		}
	}
	start := time.Now()
	short, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	_, err = withCtxDeadline.GetLease(short, key)
	cancel()
	if elapsed := time.Since(start); !errors.Is(err, checkpoint.ErrUnavailable) || elapsed > 2*time.Second {
		t.Errorf("GetLease with a 150ms deadline against a hung server = %v after %v, want ErrUnavailable within the deadline", err, elapsed)
	}

	p.cut() // drop the held requests with their connections
	p.resume()
	if after := snapshot(t, direct, prefix); !maps.Equal(before, after) {
		t.Errorf("rows changed during the hang:\nbefore %v\nafter  %v", before, after)
	}
	p.restore()
	if _, err := s.RenewLease(ctx, l); err != nil {
		t.Errorf("RenewLease after the hang: %v", err)
	}
}

// Guards against go-redis's resend of a command whose reply was lost turning a write that
// succeeded into a reported failure: a take would say ErrConflict and leave the row owned
// under a token nobody holds, a release would say ErrLeaseLost, a handoff request ErrConflict.
// It also guards against the replay check being too loose: a second, deliberate call with the
// same arguments still fails.
func TestResentWritesReportTheirSuccess(t *testing.T) {
	_, direct, prefix := newTestStore(t)
	p := startProxy(t, direct.Options().Addr)
	client := proxiedClient(t, direct, p, func(o *goredis.Options) {
		fastRetries(o)
		o.PoolSize = 1 // one connection: the next reply from the server is the script's
	})
	s, err := New(client, WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	for _, script := range []*goredis.Script{takeScript, handoffScript, releaseScript} {
		if err := script.Load(ctx, client).Err(); err != nil { // so EVALSHA runs the script
			t.Fatal(err)
		}
	}
	key := checkpoint.ShardKey{Group: "g", Stream: "s", Shard: "x"}

	// loseReply runs call with the reply of its first attempt dropped and checks that a
	// resend (on a new connection) happened.
	loseReply := func(name string, call func() error) error {
		t.Helper()
		conns := p.accepted.Load()
		p.dropReplies.Store(1)
		err := call()
		if p.dropReplies.Load() != 0 || p.accepted.Load() == conns {
			t.Fatalf("%s: the reply was not dropped and resent (drops left %d, connections %d→%d)",
				name, p.dropReplies.Load(), conns, p.accepted.Load())
		}
		return err
	}

	var l checkpoint.Lease
	err = loseReply("TakeLease", func() (err error) { l, err = s.TakeLease(ctx, key, "w", 0); return err })
	if err != nil || l.Owner != "w" || l.Counter != 1 {
		t.Fatalf("TakeLease with a lost reply = %+v, %v; want owner w, counter 1", l, err)
	}
	if got, _ := s.GetLease(ctx, key); got.Token != l.Token || got.Counter != 1 {
		t.Errorf("after the resent take the row is %+v, want token %q and counter 1", got, l.Token)
	}

	err = loseReply("RequestHandoff", func() error { return s.RequestHandoff(ctx, key, "w", "w2", 1) })
	if err != nil {
		t.Errorf("RequestHandoff with a lost reply = %v, want success", err)
	}
	if err := s.RequestHandoff(ctx, key, "w", "w2", 1); !errors.Is(err, checkpoint.ErrConflict) {
		t.Errorf("a second RequestHandoff with the old counter = %v, want ErrConflict", err)
	}

	final := checkpoint.Position{SequenceNumber: "42"}
	err = loseReply("ReleaseLease", func() error { return s.ReleaseLease(ctx, l, final) })
	if err != nil {
		t.Errorf("ReleaseLease with a lost reply = %v, want success", err)
	}
	if err := s.ReleaseLease(ctx, l, checkpoint.Position{}); !errors.Is(err, checkpoint.ErrLeaseLost) {
		t.Errorf("a second ReleaseLease with the released handle = %v, want ErrLeaseLost", err)
	}
	got, err := s.GetLease(ctx, key)
	if err != nil || got.Owner != "" || got.Token != "" || got.PendingOwner != "" || got.Counter != 3 || got.Checkpoint != final {
		t.Errorf("final row %+v (%v), want free, counter 3, checkpoint %s", got, err, final)
	}
	if _, err := s.TakeLease(ctx, key, "w2", 0); !errors.Is(err, checkpoint.ErrConflict) {
		t.Errorf("TakeLease with a stale counter = %v, want ErrConflict", err)
	}
}
