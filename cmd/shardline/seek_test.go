package main

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/kinesis/checkpoint"
)

// TestSeekPosition checks the position seek stores: the last record before the first record
// at or after the target, found by reading forward over growing windows.
func TestSeekPosition(t *testing.T) {
	if testing.Short() {
		t.Skip("paced reads take a few seconds")
	}
	day := 86400.0
	cases := []struct {
		name    string
		offsets []float64 // arrival of each record, seconds after fakeBase
		closed  bool
		at      float64
		want    checkpoint.Position
		first   string // sequence of the first record at or after the target, "" for none
	}{
		// Guards against off-by-one: the target falls between records 1 and 2.
		{"between records", []float64{0, 1, 2, 3}, false, 1.5, checkpoint.Position{SequenceNumber: "1001"}, "1002"},
		// At a record's own arrival time the record itself is re-delivered.
		{"exactly at a record", []float64{0, 1, 2, 3}, false, 2, checkpoint.Position{SequenceNumber: "1001"}, "1002"},
		// The previous record is far before the target: the window has to grow several times
		// (5s, 40s, 320s, ...) without skipping it.
		{"previous record days before", []float64{0, 3 * day, 3*day + 10}, false, 3*day - 1, checkpoint.Position{SequenceNumber: "1000"}, "1001"},
		// Many records in the window: the last one before the target wins, not the first.
		{"several in the window", []float64{100, 101, 102, 103, 104, 110}, false, 105, checkpoint.Position{SequenceNumber: "1004"}, "1005"},
		// The first record at or after the target is the oldest: no checkpoint at all.
		{"first record is the oldest", []float64{10, 11}, false, 5, checkpoint.Position{}, "1000"},
		// Nothing at or after the target on an open shard: the position is its last record.
		{"target after the tip", []float64{0, 1, 2}, false, 50, checkpoint.Position{SequenceNumber: "1002"}, ""},
		// A closed shard whose records are all before the target is finished.
		{"closed shard before target", []float64{0, 1}, true, 50, checkpoint.Position{ShardEnd: true}, ""},
		// A closed shard with records after the target is not finished.
		{"closed shard after target", []float64{0, 60}, true, 30, checkpoint.Position{SequenceNumber: "1000"}, "1001"},
		// An empty open shard has no position.
		{"empty shard", nil, false, 50, checkpoint.Position{}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fs := newFakeShard(c.offsets...)
			fs.closed = c.closed
			api := &fakeKinesis{shards: map[string]*fakeShard{"s": fs}}
			shard := types.Shard{ShardId: aws.String("s"), SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")}}
			if c.closed {
				shard.SequenceNumberRange.EndingSequenceNumber = aws.String("9999")
			}
			target := seekTarget{kind: "timestamp", at: fakeBase.Add(time.Duration(c.at * float64(time.Second)))}
			pos, first, err := seekPosition(context.Background(), api, "stream", shard, target)
			if err != nil {
				t.Fatal(err)
			}
			if pos != c.want {
				t.Errorf("position %v, want %v", pos, c.want)
			}
			got := ""
			if first != nil {
				got = first.Sequence
			}
			if got != c.first {
				t.Errorf("first record %q, want %q", got, c.first)
			}
		})
	}
}

// TestSeekPositionTrimHorizon: trim_horizon needs no read and clears the checkpoint.
func TestSeekPositionTrimHorizon(t *testing.T) {
	api := &fakeKinesis{shards: map[string]*fakeShard{"s": newFakeShard(0, 1)}}
	pos, first, err := seekPosition(context.Background(), api, "stream", types.Shard{ShardId: aws.String("s")}, seekTarget{kind: "trim_horizon"})
	if err != nil || !pos.IsZero() || first != nil || api.shards["s"].calls != 0 {
		t.Fatalf("got %v %v %v after %d calls, want the zero position and no read", pos, first, err, api.shards["s"].calls)
	}
}

// TestPlanStep checks how a seek names its steps: the action decides which store writes are
// made, so a wrong one would move a position the wrong way.
func TestPlanStep(t *testing.T) {
	p := func(seq string) checkpoint.Position { return checkpoint.Position{SequenceNumber: seq} }
	ts := seekTarget{kind: "timestamp"}
	cases := []struct {
		step seekStep
		want string
	}{
		{seekStep{HasRow: true, From: p("5"), To: p("5")}, "unchanged"},
		{seekStep{HasRow: false, To: checkpoint.Position{}}, "unchanged"},
		{seekStep{HasRow: false, To: p("5")}, "set"},
		{seekStep{HasRow: true, From: p("5"), To: p("7")}, "forward"},
		{seekStep{HasRow: true, From: p("7"), To: p("5")}, "rewind"},
		{seekStep{HasRow: true, From: checkpoint.Position{ShardEnd: true}, To: p("5")}, "rewind"},
		{seekStep{HasRow: true, From: p("7"), To: checkpoint.Position{}}, "reset"},
		{seekStep{HasRow: true, From: p("7"), To: checkpoint.Position{ShardEnd: true}}, "forward"},
		{seekStep{Error: "boom"}, "error"},
	}
	for _, c := range cases {
		if got, _ := planStep(c.step, ts); got != c.want {
			t.Errorf("planStep(from %v to %v, row %v) = %s, want %s", c.step.From, c.step.To, c.step.HasRow, got, c.want)
		}
	}
}

// TestApplySeek runs the writes of every action against the memory store: the position ends
// where the plan says, backwards included, and the lease is left free.
func TestApplySeek(t *testing.T) {
	ctx := context.Background()
	key := checkpoint.ShardKey{Group: "g", Stream: "s", Shard: "shardId-0"}
	p := func(seq string, sub int64) checkpoint.Position {
		return checkpoint.Position{SequenceNumber: seq, SubSequenceNumber: sub}
	}
	cases := []struct {
		name  string
		from  checkpoint.Position // stored before; zero: no row
		held  bool                // a (crashed) worker still holds the lease: --force
		to    checkpoint.Position
		noRow bool // after the seek, the row is gone
	}{
		{"rewind", p("900", 3), false, p("100", 2), false},
		{"rewind from shard end", checkpoint.Position{ShardEnd: true}, false, p("100", 0), false},
		{"forward", p("100", 0), false, p("900", 0), false},
		{"set on a missing row", checkpoint.Position{}, false, p("100", 0), false},
		{"reset", p("900", 0), false, checkpoint.Position{}, true},
		{"rewind a held lease", p("900", 0), true, p("100", 0), false},
		{"forward a held lease", p("100", 0), true, checkpoint.Position{ShardEnd: true}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := checkpoint.NewMemory()
			var row checkpoint.Lease
			hasRow := !c.from.IsZero()
			if hasRow {
				l, err := st.TakeLease(ctx, key, "old", 0)
				if err != nil {
					t.Fatal(err)
				}
				if err := st.Checkpoint(ctx, l, c.from); err != nil {
					t.Fatal(err)
				}
				if !c.held {
					if err := st.ReleaseLease(ctx, l, checkpoint.Position{}); err != nil {
						t.Fatal(err)
					}
				}
				row, _ = st.GetLease(ctx, key)
			}
			step := seekStep{Shard: key.Shard, HasRow: hasRow, Owner: row.Owner, Counter: row.Counter, From: c.from, To: c.to}
			step.Action, _ = planStep(step, seekTarget{kind: "timestamp"})
			if err := applySeek(ctx, st, key, "cli", step, row); err != nil {
				t.Fatal(err)
			}
			got, err := st.GetLease(ctx, key)
			if c.noRow {
				if err == nil {
					t.Fatalf("row still there: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Checkpoint != c.to || got.Held() {
				t.Fatalf("row %+v, want checkpoint %v and no owner", got, c.to)
			}
		})
	}
}

// TestApplySeekFencesTheOwner: with --force the old owner's handle stops working, so a live
// owner cannot write its old position over the seek.
func TestApplySeekFencesTheOwner(t *testing.T) {
	ctx := context.Background()
	st := checkpoint.NewMemory()
	key := checkpoint.ShardKey{Group: "g", Stream: "s", Shard: "shardId-0"}
	old, _ := st.TakeLease(ctx, key, "old", 0)
	_ = st.Checkpoint(ctx, old, checkpoint.Position{SequenceNumber: "900"})
	row, _ := st.GetLease(ctx, key)
	step := seekStep{HasRow: true, Owner: "old", Counter: row.Counter, From: row.Checkpoint, To: checkpoint.Position{SequenceNumber: "100"}, Action: "rewind"}
	if err := applySeek(ctx, st, key, "cli", step, row); err != nil {
		t.Fatal(err)
	}
	if err := st.Checkpoint(ctx, old, checkpoint.Position{SequenceNumber: "950"}); err == nil {
		t.Fatal("the old owner could still checkpoint after the seek")
	}
}

// TestApplySeekRowChanged: a row changed after the plan read it is not overwritten.
func TestApplySeekRowChanged(t *testing.T) {
	ctx := context.Background()
	st := checkpoint.NewMemory()
	key := checkpoint.ShardKey{Group: "g", Stream: "s", Shard: "shardId-0"}
	l, _ := st.TakeLease(ctx, key, "w", 0)
	_ = st.ReleaseLease(ctx, l, checkpoint.Position{SequenceNumber: "900"})
	row, _ := st.GetLease(ctx, key)
	l, _ = st.TakeLease(ctx, key, "w2", row.Counter) // a worker took it after the plan
	_ = st.Checkpoint(ctx, l, checkpoint.Position{SequenceNumber: "950"})
	step := seekStep{HasRow: true, Counter: row.Counter, From: row.Checkpoint, To: checkpoint.Position{SequenceNumber: "100"}, Action: "rewind"}
	if err := applySeek(ctx, st, key, "cli", step, row); err == nil {
		t.Fatal("seek overwrote a row a worker changed after the plan")
	}
	if got, _ := st.GetLease(ctx, key); got.Checkpoint.SequenceNumber != "950" {
		t.Fatalf("checkpoint %v, want the worker's 950", got.Checkpoint)
	}
}
