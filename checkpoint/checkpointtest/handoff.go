package checkpointtest

import (
	"fmt"

	"github.com/shardline/kinesis/checkpoint"
)

func handoffCases() []testCase {
	return []testCase{
		{"Graceful", handoffGraceful},
		{"Conditional", handoffConditional},
		{"TakeClearsPending", handoffTakeClearsPending},
	}
}

// handoffGraceful walks the graceful handoff of the lease protocol and guards against a
// pending owner that the owner cannot see (it would never hand over, and the claimant would
// have to steal), or that survives the release or the take.
func handoffGraceful(e *env) {
	a := e.takeFresh("shard-0", "A")
	e.checkpoint(a, seq("10", 0))
	if err := e.s.RequestHandoff(e.ctx, a.ShardKey, "A", "B", a.Counter); err != nil {
		e.t.Fatalf("RequestHandoff(owner A, claimant B, counter %d): %v", a.Counter, err)
	}
	if got := e.get(a.ShardKey); got.PendingOwner != "B" || got.Owner != "A" || got.Token != a.Token || got.Counter != a.Counter+1 {
		e.t.Errorf("after RequestHandoff, row is %s, want owner A with its token, pending owner B, counter %d",
			leaseString(got), a.Counter+1)
	}
	r := e.renew(a)
	if r.PendingOwner != "B" {
		e.t.Errorf("RenewLease after RequestHandoff returned pending owner %q, want %q", r.PendingOwner, "B")
	}
	e.release(r, seq("20", 0)) // the owner's final checkpoint
	free := e.get(a.ShardKey)
	want := checkpoint.Lease{ShardKey: a.ShardKey, Counter: r.Counter + 1, Checkpoint: seq("20", 0)}
	if free != want {
		e.t.Errorf("after the owner's release, row is\n\t%s\nwant\n\t%s", leaseString(free), leaseString(want))
	}
	b := e.take(a.ShardKey, "B", free.Counter)
	if b.Checkpoint != seq("20", 0) {
		e.t.Errorf("claimant took checkpoint %s, want the owner's final %s", posString(b.Checkpoint), posString(seq("20", 0)))
	}
}

// handoffConditional guards against a handoff request that overwrites a row it did not read:
// one for a previous owner, one after the row moved on, one on a free lease (whose empty owner
// a naive comparison would match), or one that creates a missing row.
func handoffConditional(e *env) {
	a := e.takeFresh("shard-0", "A")
	free := e.takeFresh("shard-1", "A")
	e.release(free, checkpoint.Position{})
	free = e.get(free.ShardKey)
	missing := e.key("shard-2")
	for _, c := range []struct {
		what    string
		key     checkpoint.ShardKey
		owner   string
		counter int64
	}{
		{"another owner", a.ShardKey, "C", a.Counter},
		{"an older counter", a.ShardKey, "A", a.Counter - 1},
		{"a newer counter", a.ShardKey, "A", a.Counter + 1},
		{"a free lease", free.ShardKey, "", free.Counter},
		{"a free lease, its last owner named", free.ShardKey, "A", free.Counter},
		{"a missing row", missing, "A", 0},
	} {
		err := e.s.RequestHandoff(e.ctx, c.key, c.owner, "B", c.counter)
		call := fmt.Sprintf("RequestHandoff(owner %q, counter %d) of %s", c.owner, c.counter, c.what)
		wantErr(e.t, err, checkpoint.ErrConflict, call)
	}
	e.wantRow(a.ShardKey, a, "refused handoff requests")
	e.wantRow(free.ShardKey, free, "refused handoff requests")
	e.wantNoRow(missing, "a refused handoff request")
}

// handoffTakeClearsPending guards against a take that keeps the pending owner: the new owner
// would hand the lease over at once to a claimant that may be long gone.
func handoffTakeClearsPending(e *env) {
	a := e.takeFresh("shard-0", "A")
	if err := e.s.RequestHandoff(e.ctx, a.ShardKey, "A", "B", a.Counter); err != nil {
		e.t.Fatalf("RequestHandoff: %v", err)
	}
	c := e.take(a.ShardKey, "C", a.Counter+1) // take checks PendingOwner == ""
	e.wantRow(a.ShardKey, c, "TakeLease")
	e.wantFenced(a, "the handle of an owner asked for a handoff, then stolen from")
}
