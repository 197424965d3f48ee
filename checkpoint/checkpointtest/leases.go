package checkpointtest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/shardline/kinesis/checkpoint"
)

// manyRows is more rows than one page of a paginated listing in the stores we know (Redis SCAN
// and HSCAN return about 10 per call by default), so that ListLeases and ListWorkers must page.
const manyRows = 150

func leaseCases() []testCase {
	return []testCase{
		{"GetMissing", leaseGetMissing},
		{"TakeFresh", leaseTakeFresh},
		{"TakeConditional", leaseTakeConditional},
		{"TokensUnique", leaseTokensUnique},
		{"Counter", leaseCounter},
		{"ReleaseKeepsPosition", leaseReleaseKeepsPosition},
		{"ReleaseFinal", leaseReleaseFinal},
		{"ReleaseFinalBehind", leaseReleaseFinalBehind},
		{"Delete", leaseDelete},
		{"ListMany", leaseListMany},
	}
}

// leaseGetMissing guards against a store that answers a missing row with a zero Lease and no
// error (a consumer would treat a shard it never saw as having a checkpoint), or that finds a
// row by prefix ("shard-1" for "shard-10").
func leaseGetMissing(e *env) {
	e.wantNoRow(e.key("shard-0"), "nothing")
	e.takeFresh("shard-1", "w1")
	for _, shard := range []string{"shard-0", "shard-10", "shard-", "shard"} {
		e.wantNoRow(e.key(shard), `creating only "shard-1"`)
	}
}

// leaseTakeFresh guards against a store that creates a row for a take conditional on a counter
// other than 0, or returns something other than what it stored.
func leaseTakeFresh(e *env) {
	key := e.key("shard-0")
	_, err := e.s.TakeLease(e.ctx, key, "w1", 1)
	wantErr(e.t, err, checkpoint.ErrConflict, "TakeLease(counter 1) of a missing row")
	_, err = e.s.TakeLease(e.ctx, key, "w1", -1)
	wantErr(e.t, err, checkpoint.ErrConflict, "TakeLease(counter -1) of a missing row")
	e.wantNoRow(key, "refused takes")

	l := e.take(key, "w1", 0)
	if !l.Checkpoint.IsZero() {
		e.t.Errorf("a new lease has checkpoint %s, want the zero Position", posString(l.Checkpoint))
	}
	e.wantRow(key, l, "TakeLease")
	if !l.Held() {
		e.t.Errorf("taken lease %s is not Held", leaseString(l))
	}
}

// leaseTakeConditional guards against a take that ignores the counter: two workers that read
// the same row would both believe they own it.
func leaseTakeConditional(e *env) {
	l := e.takeFresh("shard-0", "w1")
	e.checkpoint(l, seq("42", 1))
	l.Checkpoint = seq("42", 1)
	for _, c := range []int64{0, l.Counter - 1, l.Counter + 1} {
		_, err := e.s.TakeLease(e.ctx, l.ShardKey, "w2", c)
		wantErr(e.t, err, checkpoint.ErrConflict, fmt.Sprintf("TakeLease(counter %d) of a row at counter %d", c, l.Counter))
		e.wantRow(l.ShardKey, l, "refused TakeLease")
	}
	n := e.take(l.ShardKey, "w2", l.Counter)
	if n.Token == l.Token {
		e.t.Errorf("TakeLease kept token %q of the previous tenure", n.Token)
	}
	if n.Checkpoint != l.Checkpoint {
		e.t.Errorf("TakeLease changed checkpoint %s to %s", posString(l.Checkpoint), posString(n.Checkpoint))
	}
	e.wantRow(l.ShardKey, n, "TakeLease")
}

// leaseTokensUnique guards against tokens that repeat (a constant, a counter, a timestamp of
// coarse resolution): a worker that re-took its own lease could then use a handle of an
// earlier tenure and overwrite a checkpoint made by someone else in between.
func leaseTokensUnique(e *env) {
	seen := map[string]string{}
	note := func(l checkpoint.Lease, what string) {
		if prev, ok := seen[l.Token]; ok {
			e.t.Errorf("%s got token %q, already given to %s", what, l.Token, prev)
		}
		seen[l.Token] = what
	}
	for s := range 4 {
		l := e.takeFresh(fmt.Sprintf("shard-%d", s), "w1")
		note(l, fmt.Sprintf("take 0 of shard-%d", s))
		for i := 1; i <= 5; i++ {
			l = e.take(l.ShardKey, "w1", l.Counter)
			note(l, fmt.Sprintf("take %d of shard-%d", i, s))
		}
	}
}

// leaseCounter guards against a store that does not move the counter on a take, renewal,
// release or handoff request (observers would judge a live owner expired, or miss a change)
// or that moves it on a checkpoint, and against one that changes the token on anything but a
// take.
func leaseCounter(e *env) {
	l := e.takeFresh("shard-0", "w1")
	if l.Counter != 1 {
		e.t.Fatalf("first TakeLease returned counter %d, want 1", l.Counter)
	}
	r := e.renew(l)
	if r.Counter != 2 || r.Token != l.Token || r.Owner != "w1" {
		e.t.Errorf("RenewLease of %s returned %s, want counter 2, same owner and token", leaseString(l), leaseString(r))
	}
	e.wantRow(l.ShardKey, r, "RenewLease")
	e.checkpoint(l, seq("1", 0))
	r.Checkpoint = seq("1", 0)
	e.wantRow(l.ShardKey, r, "Checkpoint (counter unchanged)")
	if err := e.s.RequestHandoff(e.ctx, l.ShardKey, "w1", "w2", r.Counter); err != nil {
		e.t.Fatalf("RequestHandoff: %v", err)
	}
	r.Counter, r.PendingOwner = 3, "w2"
	e.wantRow(l.ShardKey, r, "RequestHandoff")
	e.release(l, checkpoint.Position{})
	e.wantRow(l.ShardKey, checkpoint.Lease{ShardKey: l.ShardKey, Counter: 4, Checkpoint: seq("1", 0)}, "ReleaseLease")
	n := e.take(l.ShardKey, "w2", 4)
	e.wantRow(l.ShardKey, n, "TakeLease")
}

// leaseReleaseKeepsPosition guards against a release that drops the checkpoint (the next owner
// would re-read the shard from its start position) or leaves the owner or token in place.
func leaseReleaseKeepsPosition(e *env) {
	l := e.takeFresh("shard-0", "w1")
	e.checkpoint(l, seq(kinesisSeq, 2))
	e.release(l, checkpoint.Position{})
	want := checkpoint.Lease{ShardKey: l.ShardKey, Counter: l.Counter + 1, Checkpoint: seq(kinesisSeq, 2)}
	e.wantRow(l.ShardKey, want, "ReleaseLease(zero final)")
	err := e.s.ReleaseLease(e.ctx, l, checkpoint.Position{})
	wantErr(e.t, err, checkpoint.ErrLeaseLost, "a second ReleaseLease with the same handle")
	e.wantRow(l.ShardKey, want, "a second ReleaseLease")
	n := e.take(l.ShardKey, "w2", want.Counter)
	if n.Checkpoint != want.Checkpoint {
		e.t.Errorf("TakeLease after release returned checkpoint %s, want %s", posString(n.Checkpoint), posString(want.Checkpoint))
	}
}

// leaseReleaseFinal guards against a release that ignores its final position: a worker that
// shuts down gracefully would hand over a stale checkpoint and its records would be re-read.
func leaseReleaseFinal(e *env) {
	l := e.takeFresh("shard-0", "w1")
	e.checkpoint(l, seq("100", 0))
	e.release(l, seq("100", 0)) // the same position is not behind
	e.wantRow(l.ShardKey, checkpoint.Lease{ShardKey: l.ShardKey, Counter: 2, Checkpoint: seq("100", 0)}, "ReleaseLease(final = stored)")

	l = e.take(l.ShardKey, "w1", 2)
	e.release(l, seq("1000", 4))
	e.wantRow(l.ShardKey, checkpoint.Lease{ShardKey: l.ShardKey, Counter: 4, Checkpoint: seq("1000", 4)}, "ReleaseLease(final ahead)")
}

// leaseReleaseFinalBehind guards against a release that clears the owner even though its final
// checkpoint was refused (or stores the older position): the release and the checkpoint are
// one conditional write.
func leaseReleaseFinalBehind(e *env) {
	l := e.takeFresh("shard-0", "w1")
	e.checkpoint(l, seq("100", 5))
	l.Checkpoint = seq("100", 5)
	for _, final := range []checkpoint.Position{seq("100", 4), seq("99", 9)} {
		err := e.s.ReleaseLease(e.ctx, l, final)
		wantErr(e.t, err, checkpoint.ErrPositionBehind, "ReleaseLease(final "+posString(final)+") over "+posString(l.Checkpoint))
		e.wantRow(l.ShardKey, l, "a refused ReleaseLease")
	}
	e.renew(l) // still held
}

// leaseDelete guards against a delete that ignores the counter (a worker could delete a row
// another worker just took) or that leaves the row listed.
func leaseDelete(e *env) {
	l := e.takeFresh("shard-0", "w1")
	e.takeFresh("shard-1", "w1")
	for _, c := range []int64{0, l.Counter + 1} {
		err := e.s.DeleteLease(e.ctx, l.ShardKey, c)
		wantErr(e.t, err, checkpoint.ErrConflict, fmt.Sprintf("DeleteLease(counter %d) of a row at counter %d", c, l.Counter))
		e.wantRow(l.ShardKey, l, "a refused DeleteLease")
	}
	if err := e.s.DeleteLease(e.ctx, l.ShardKey, l.Counter); err != nil {
		e.t.Fatalf("DeleteLease(counter %d): %v", l.Counter, err)
	}
	e.wantNoRow(l.ShardKey, "DeleteLease")
	rows, err := e.s.ListLeases(e.ctx, e.group, e.stream)
	if err != nil {
		e.t.Fatalf("ListLeases: %v", err)
	}
	if len(rows) != 1 || rows[0].Shard != "shard-1" {
		e.t.Errorf("after deleting shard-0, ListLeases returned %d rows %v, want only shard-1", len(rows), shardsOf(rows))
	}
	err = e.s.DeleteLease(e.ctx, l.ShardKey, l.Counter)
	wantErr(e.t, err, checkpoint.ErrConflict, "DeleteLease of a missing row")
	e.wantNoRow(l.ShardKey, "DeleteLease of a missing row")
	// The shard may come back (a stream deleted and created again): the row starts over.
	n := e.take(l.ShardKey, "w2", 0)
	if !n.Checkpoint.IsZero() {
		e.t.Errorf("a row taken after DeleteLease has checkpoint %s, want the zero Position", posString(n.Checkpoint))
	}
}

// leaseListMany guards against a listing that stops after the first page, repeats rows across
// pages, or lists rows of another group or stream that shares a prefix.
func leaseListMany(e *env) {
	rows, err := e.s.ListLeases(e.ctx, e.group, e.stream)
	if err != nil || len(rows) != 0 {
		e.t.Fatalf("ListLeases of an empty group = %d rows, %v; want none", len(rows), err)
	}
	want := make([]checkpoint.Lease, 0, manyRows)
	for i := range manyRows {
		l := e.takeFresh(fmt.Sprintf("shardId-%012d", i), fmt.Sprintf("w%d", i%7))
		switch i % 3 {
		case 1:
			pos := seq(fmt.Sprint(kinesisSeq, i), int64(i))
			e.checkpoint(l, pos)
			l.Checkpoint = pos
		case 2:
			e.release(l, checkpoint.Position{})
			l = checkpoint.Lease{ShardKey: l.ShardKey, Counter: l.Counter + 1}
		}
		want = append(want, l)
	}
	// Neighbours whose names extend this group's and stream's: a prefix scan would list them.
	for _, k := range []checkpoint.ShardKey{
		{Group: e.group, Stream: e.stream + "-2", Shard: "shardId-000000000000"},
		{Group: e.group + "-2", Stream: e.stream, Shard: "shardId-000000000000"},
		{Group: e.group, Stream: e.stream + "-2", Shard: "shardId-999999999999"},
	} {
		e.take(k, "neighbour", 0)
	}

	rows, err = e.s.ListLeases(e.ctx, e.group, e.stream)
	if err != nil {
		e.t.Fatalf("ListLeases: %v", err)
	}
	byShard := func(a, b checkpoint.Lease) int { return strings.Compare(a.Shard, b.Shard) }
	slices.SortFunc(rows, byShard)
	if len(rows) != len(want) {
		e.t.Errorf("ListLeases returned %d rows, want %d", len(rows), len(want))
	}
	for i := range min(len(rows), len(want)) {
		if rows[i] != want[i] {
			e.t.Errorf("ListLeases row %d is\n\t%s\nwant\n\t%s", i, leaseString(rows[i]), leaseString(want[i]))
		}
	}
}

func shardsOf(rows []checkpoint.Lease) []string {
	s := make([]string, len(rows))
	for i, l := range rows {
		s[i] = l.Shard
	}
	slices.Sort(s)
	return s
}
