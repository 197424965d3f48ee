package checkpointtest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/shardline/kinesis/checkpoint"
)

// A Kinesis sequence number as the service hands them out: 56 digits.
const kinesisSeq = "49590338271490256608559692538361571095921575989136588898"

func positionCases() []testCase {
	return []testCase{
		{"RoundTrip", positionRoundTrip},
		{"NeverBackwards", positionNeverBackwards},
		{"ShardEnd", positionShardEnd},
		{"ConcurrentWritersNeverRegress", positionConcurrentWriters},
	}
}

// positionRoundTrip guards against a store that loses or mangles a position (sub-sequence
// dropped, big sequence number truncated to a float), that bumps the counter on a checkpoint
// (observers would keep a stalled owner alive on its checkpoints alone) or that drops the
// checkpoint when the lease changes hands.
func positionRoundTrip(e *env) {
	l := e.takeFresh("shard-0", "w1")
	if !l.Checkpoint.IsZero() {
		e.t.Fatalf("a new lease has checkpoint %s, want the zero Position", posString(l.Checkpoint))
	}
	for _, pos := range []checkpoint.Position{
		seq("1", 0),
		seq(kinesisSeq, 0),
		seq(kinesisSeq, 7),
		seq("9"+strings.Repeat("0", 128), 1<<62),
	} {
		e.checkpoint(l, pos)
		l.Checkpoint = pos
		e.wantRow(l.ShardKey, l, "Checkpoint("+posString(pos)+")")
	}
	r := e.renew(l)
	if r.Checkpoint != l.Checkpoint {
		e.t.Errorf("RenewLease returned checkpoint %s, want %s", posString(r.Checkpoint), posString(l.Checkpoint))
	}
	// Another worker taking the lease (a steal, here) keeps the position.
	t := e.take(l.ShardKey, "w2", r.Counter)
	if t.Checkpoint != l.Checkpoint {
		e.t.Errorf("TakeLease returned checkpoint %s, want %s kept", posString(t.Checkpoint), posString(l.Checkpoint))
	}
}

// positionNeverBackwards guards against a store that compares sequence numbers as strings
// ("9" > "10"), sub-sequence numbers as strings (9 > 10), or as floats (129-digit numbers that
// differ in the last digit compare equal), and against a refused write that changes the row.
func positionNeverBackwards(e *env) {
	l := e.takeFresh("shard-0", "w1")
	nines := func(n int) string { return strings.Repeat("9", n) }
	big := "1" + strings.Repeat("0", 128) // 129 digits
	steps := []struct {
		pos  checkpoint.Position
		want error
	}{
		{seq("9", 0), nil},
		{seq("10", 0), nil}, // behind "9" as a string, ahead as a number
		{seq("9", 0), checkpoint.ErrPositionBehind},
		{seq("100", 0), nil},
		{seq("99", 0), checkpoint.ErrPositionBehind},
		{seq("100", 0), nil}, // the same position again is accepted
		{seq("100", 9), nil},
		{seq("100", 10), nil}, // behind 9 as a string
		{seq("100", 9), checkpoint.ErrPositionBehind},
		{seq("100", 0), checkpoint.ErrPositionBehind},
		{seq("101", 0), nil}, // a new record after sub-sequence 10 of the previous one
		{seq("100", 99), checkpoint.ErrPositionBehind},
		{seq(kinesisSeq, 0), nil},
		{seq(kinesisSeq[:len(kinesisSeq)-1]+"9", 0), nil},
		{seq(kinesisSeq, 5), checkpoint.ErrPositionBehind},
		{seq(big, 0), nil},
		{seq(nines(128), 0), checkpoint.ErrPositionBehind},
		{seq(big[:128]+"1", 0), nil}, // differs from big in the 129th digit only
		{seq(big, 0), checkpoint.ErrPositionBehind},
		{seq(nines(129), 1<<62), nil},
		{seq(nines(129), 1<<62), nil},
	}
	for _, s := range steps {
		before := e.get(l.ShardKey)
		err := e.s.Checkpoint(e.ctx, l, s.pos)
		call := fmt.Sprintf("Checkpoint(%s) over %s", posString(s.pos), posString(before.Checkpoint))
		wantErr(e.t, err, s.want, call)
		if s.want == nil {
			before.Checkpoint = s.pos
		}
		e.wantRow(l.ShardKey, before, call)
	}
}

// positionShardEnd guards against a store that lets a shard end be overwritten (the group would
// re-read a finished shard, and its children would wait forever), that refuses the shard end
// twice (a worker retrying after a timeout would fail), or that forgets it on release or take.
func positionShardEnd(e *env) {
	l := e.takeFresh("shard-0", "w1")
	e.checkpoint(l, seq(kinesisSeq, 3))
	e.checkpoint(l, shardEnd)
	l.Checkpoint = shardEnd
	e.wantRow(l.ShardKey, l, "Checkpoint(SHARD_END)")
	e.checkpoint(l, shardEnd)
	for _, pos := range []checkpoint.Position{seq(kinesisSeq, 3), seq(kinesisSeq, 4), seq(strings.Repeat("9", 129), 1<<62)} {
		err := e.s.Checkpoint(e.ctx, l, pos)
		wantErr(e.t, err, checkpoint.ErrPositionBehind, "Checkpoint("+posString(pos)+") after SHARD_END")
		err = e.s.ReleaseLease(e.ctx, l, pos)
		wantErr(e.t, err, checkpoint.ErrPositionBehind, "ReleaseLease(final "+posString(pos)+") after SHARD_END")
		e.wantRow(l.ShardKey, l, "refused writes after SHARD_END")
	}
	e.release(l, shardEnd)
	r := e.get(l.ShardKey)
	if r.Checkpoint != shardEnd || r.Held() {
		e.t.Errorf("after ReleaseLease(SHARD_END), row is %s, want a free lease at SHARD_END", leaseString(r))
	}
	t := e.take(l.ShardKey, "w2", r.Counter)
	if t.Checkpoint != shardEnd {
		e.t.Errorf("TakeLease of a finished shard returned checkpoint %s, want SHARD_END", posString(t.Checkpoint))
	}
}

// positionConcurrentWriters guards against a store that checks "not behind" and writes in two
// steps (read, compare, then an unconditional write): concurrent checkpoints of one owner,
// which happen when a handler checkpoints while the consumer's interval checkpoint runs, could
// then leave an older position stored after a newer one was accepted.
func positionConcurrentWriters(e *env) {
	l := e.takeFresh("shard-0", "w1")
	const writers, perWriter = 8, 25
	positions := make([]checkpoint.Position, writers*perWriter)
	for i := range positions {
		positions[i] = seq(fmt.Sprint(1000+i/3), int64(i%3))
	}
	want := positions[len(positions)-1]
	rand.Shuffle(len(positions), func(i, j int) { positions[i], positions[j] = positions[j], positions[i] })
	// The greatest goes first, so that the other writers have the whole run to overwrite it.
	i := slices.Index(positions, want)
	positions[0], positions[i] = positions[i], positions[0]

	errs := make([]error, len(positions))
	race(writers, func(w int) {
		for i := w; i < len(positions); i += writers {
			errs[i] = e.s.Checkpoint(e.ctx, l, positions[i])
		}
	})
	for i, err := range errs {
		if err != nil && !errors.Is(err, checkpoint.ErrPositionBehind) {
			e.t.Errorf("concurrent Checkpoint(%s) = %v, want nil or an error matching ErrPositionBehind", posString(positions[i]), err)
		}
	}
	if got := e.get(l.ShardKey).Checkpoint; got != want {
		e.t.Errorf("after concurrent checkpoints, stored position is %s, want the greatest, %s", posString(got), posString(want))
	}
}
