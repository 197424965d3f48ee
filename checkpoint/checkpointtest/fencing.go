package checkpointtest

import (
	"fmt"

	"github.com/shardline/kinesis/checkpoint"
)

func fencingCases() []testCase {
	return []testCase{
		{"AfterSteal", fencingAfterSteal},
		{"OldTenure", fencingOldTenure},
		{"ForgedHandle", fencingForgedHandle},
		{"FreeOrMissingRow", fencingFreeOrMissingRow},
		{"TokenNotCounter", fencingTokenNotCounter},
		{"HandoffRequestKeepsHandle", fencingHandoffRequestKeepsHandle},
	}
}

// wantFenced fails unless every owner write with the stale handle old fails with ErrLeaseLost
// and leaves the row of old's key as it was.
func (e *env) wantFenced(old checkpoint.Lease, what string) {
	e.t.Helper()
	before := e.get(old.ShardKey)
	ahead := seq("9"+before.Checkpoint.SequenceNumber, 0) // ahead of the stored position
	if before.Checkpoint.ShardEnd || len(ahead.SequenceNumber) > 129 {
		ahead = shardEnd
	}
	behind := seq("1", 0)
	after := func(call string) {
		e.t.Helper()
		e.wantRow(old.ShardKey, before, call+" with "+what)
	}

	err := e.s.Checkpoint(e.ctx, old, ahead)
	wantErr(e.t, err, checkpoint.ErrLeaseLost, "Checkpoint(ahead) with "+what)
	after("Checkpoint(ahead)")
	// A fenced writer must learn that it lost the lease, not that its position is old: a
	// consumer that takes ErrPositionBehind as "already done" would go on reading.
	err = e.s.Checkpoint(e.ctx, old, behind)
	wantErr(e.t, err, checkpoint.ErrLeaseLost, "Checkpoint(behind) with "+what)
	after("Checkpoint(behind)")
	_, err = e.s.RenewLease(e.ctx, old)
	wantErr(e.t, err, checkpoint.ErrLeaseLost, "RenewLease with "+what)
	after("RenewLease")
	err = e.s.ReleaseLease(e.ctx, old, checkpoint.Position{})
	wantErr(e.t, err, checkpoint.ErrLeaseLost, "ReleaseLease with "+what)
	after("ReleaseLease")
	err = e.s.ReleaseLease(e.ctx, old, ahead)
	wantErr(e.t, err, checkpoint.ErrLeaseLost, "ReleaseLease(final ahead) with "+what)
	after("ReleaseLease(final ahead)")
}

// fencingAfterSteal guards against the split brain that leases exist to prevent: a worker that
// was stolen from (or paused past its lease) goes on checkpointing, renewing or releasing, and
// overwrites the new owner's position or frees its lease.
func fencingAfterSteal(e *env) {
	a := e.takeFresh("shard-0", "A")
	e.checkpoint(a, seq("100", 0))
	a = e.renew(a)
	b := e.take(a.ShardKey, "B", a.Counter)
	e.checkpoint(b, seq("200", 0))
	e.wantFenced(a, "the handle of a lease stolen by another worker")
	// The new owner is unaffected.
	b = e.renew(b)
	e.checkpoint(b, seq("300", 0))
	e.release(b, seq("400", 0))
}

// fencingOldTenure guards against a store that fences on the owner alone: a worker that lost
// a lease and took it back later (or took it again while holding it) could use a handle of its
// earlier tenure, whose writes were meant to stop when that tenure ended.
func fencingOldTenure(e *env) {
	h1 := e.takeFresh("shard-0", "A")
	e.checkpoint(h1, seq("10", 0))
	h2 := e.take(h1.ShardKey, "A", h1.Counter) // the same worker takes again
	e.wantFenced(h1, "a handle of the same worker's earlier tenure (re-take)")
	e.checkpoint(h2, seq("20", 0))

	e.release(h2, checkpoint.Position{})
	h3 := e.take(h2.ShardKey, "A", h2.Counter+1)
	e.wantFenced(h2, "a handle of the same worker's earlier tenure (release, take)")
	e.wantFenced(h1, "a handle two tenures old")
	e.checkpoint(h3, seq("30", 0))
}

// fencingForgedHandle guards against a store that checks the token alone or the owner alone:
// both are part of the condition.
func fencingForgedHandle(e *env) {
	a := e.takeFresh("shard-0", "A")
	other := a
	other.Owner = "B"
	e.wantFenced(other, "the right token and another owner")
	other = a
	other.Token = a.Token + "0"
	e.wantFenced(other, "the right owner and another token")
	other = a
	other.Token = ""
	e.wantFenced(other, "the right owner and an empty token")
	e.renew(a) // the real handle still holds
}

// fencingFreeOrMissingRow guards against a store whose condition "stored owner and token equal
// the handle's" holds trivially for a free row (both empty), so that a released lease could be
// renewed or checkpointed without a take, and against one that creates a row for an owner
// write on a missing key.
func fencingFreeOrMissingRow(e *env) {
	a := e.takeFresh("shard-0", "A")
	e.checkpoint(a, seq("10", 0))
	e.release(a, checkpoint.Position{})
	e.wantFenced(e.get(a.ShardKey), "a free lease's row as the handle")

	missing := checkpoint.Lease{ShardKey: e.key("shard-1"), Owner: "A", Token: a.Token, Counter: 1}
	for _, call := range []struct {
		name string
		err  func() error
	}{
		{"Checkpoint", func() error { return e.s.Checkpoint(e.ctx, missing, seq("1", 0)) }},
		{"RenewLease", func() error { _, err := e.s.RenewLease(e.ctx, missing); return err }},
		{"ReleaseLease", func() error { return e.s.ReleaseLease(e.ctx, missing, checkpoint.Position{}) }},
	} {
		wantErr(e.t, call.err(), checkpoint.ErrLeaseLost, call.name+" of a missing row")
		e.wantNoRow(missing.ShardKey, call.name+" of a missing row")
	}
}

// fencingTokenNotCounter guards against a store that fences owner writes on the counter: the
// owner's renewal loop bumps the counter independently of its checkpoints, so its checkpoints,
// made with a handle whose counter is stale, would fail spuriously and the shard would stop.
func fencingTokenNotCounter(e *env) {
	l := e.takeFresh("shard-0", "A")
	// In turn first, so the handle's counter is stale whatever the scheduling.
	r := e.renew(l)
	e.checkpoint(l, seq("999", 0))
	r = e.renew(r)
	e.release(l, seq("999", 1))

	l = e.take(l.ShardKey, "A", r.Counter+1)
	const n = 30
	renewErrs := make([]error, n)
	checkpointErrs := make([]error, n)
	race(2, func(g int) {
		h := l
		for i := range n {
			if g == 0 {
				h, renewErrs[i] = e.s.RenewLease(e.ctx, h)
			} else {
				checkpointErrs[i] = e.s.Checkpoint(e.ctx, l, seq(fmt.Sprint(1000+i), 0))
			}
		}
	})
	for i := range n {
		wantErr(e.t, renewErrs[i], nil, fmt.Sprintf("RenewLease %d while checkpointing", i))
		wantErr(e.t, checkpointErrs[i], nil, fmt.Sprintf("Checkpoint %d (handle of counter %d) while renewing", i, l.Counter))
	}
	want := l
	want.Counter += n
	want.Checkpoint = seq(fmt.Sprint(1000+n-1), 0)
	e.wantRow(l.ShardKey, want, fmt.Sprintf("%d renewals and %d checkpoints at once", n, n))
}

// fencingHandoffRequestKeepsHandle guards against a store that changes the token on a handoff
// request: the owner must be able to checkpoint and release after it was asked to hand over.
func fencingHandoffRequestKeepsHandle(e *env) {
	l := e.takeFresh("shard-0", "A")
	if err := e.s.RequestHandoff(e.ctx, l.ShardKey, "A", "B", l.Counter); err != nil {
		e.t.Fatalf("RequestHandoff: %v", err)
	}
	e.checkpoint(l, seq("5", 0))
	e.renew(l)
	e.release(l, seq("6", 0))
}
