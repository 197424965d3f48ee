package checkpointtest

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/shardline/kinesis/checkpoint"
)

func argumentCases() []testCase {
	return []testCase{
		{"EmptyNames", argumentEmptyNames},
		{"BadPositions", argumentBadPositions},
		{"CanceledContext", argumentCanceledContext},
	}
}

// argumentEmptyNames guards against a store that accepts empty names (rows that no listing
// finds, keys that collide once joined) or an empty worker instance (a row that names no
// process, so a second process with the ID goes unnoticed), or answers them with ErrNotFound
// or ErrConflict, which a caller would take for a state of the store rather than a bug of its
// own.
func argumentEmptyNames(e *env) {
	ok := e.takeFresh("shard-0", "A")
	okW := e.heartbeat(e.group, e.stream, "A")
	for _, bad := range []struct {
		what string
		key  checkpoint.ShardKey
	}{
		{"empty group", checkpoint.ShardKey{Stream: e.stream, Shard: "shard-0"}},
		{"empty stream", checkpoint.ShardKey{Group: e.group, Shard: "shard-0"}},
		{"empty shard", checkpoint.ShardKey{Group: e.group, Stream: e.stream}},
	} {
		l := ok
		l.ShardKey = bad.key
		w := okW
		w.Group, w.Stream = bad.key.Group, bad.key.Stream
		calls := map[string]func() error{
			"GetLease":       func() error { _, err := e.s.GetLease(e.ctx, bad.key); return err },
			"TakeLease":      func() error { _, err := e.s.TakeLease(e.ctx, bad.key, "A", 0); return err },
			"RenewLease":     func() error { _, err := e.s.RenewLease(e.ctx, l); return err },
			"Checkpoint":     func() error { return e.s.Checkpoint(e.ctx, l, seq("1", 0)) },
			"ReleaseLease":   func() error { return e.s.ReleaseLease(e.ctx, l, checkpoint.Position{}) },
			"RequestHandoff": func() error { return e.s.RequestHandoff(e.ctx, bad.key, "A", "B", ok.Counter) },
			"DeleteLease":    func() error { return e.s.DeleteLease(e.ctx, bad.key, ok.Counter) },
		}
		if bad.key.Shard != "" { // the calls that take a group and a stream only
			calls["ListLeases"] = func() error { _, err := e.s.ListLeases(e.ctx, bad.key.Group, bad.key.Stream); return err }
			calls["Heartbeat"] = func() error { _, err := e.s.Heartbeat(e.ctx, w); return err }
			calls["ListWorkers"] = func() error { _, err := e.s.ListWorkers(e.ctx, bad.key.Group, bad.key.Stream); return err }
			calls["RemoveWorker"] = func() error { return e.s.RemoveWorker(e.ctx, w) }
		}
		for name, call := range calls {
			wantErr(e.t, call(), checkpoint.ErrInvalid, name+" with "+bad.what)
		}
	}
	noWorker := okW
	noWorker.ID = ""
	noInstance := okW
	noInstance.Instance = ""
	newNoInstance := checkpoint.Worker{Group: e.group, Stream: e.stream, ID: "B"}
	for name, call := range map[string]func() error{
		"TakeLease(worker \"\")":        func() error { _, err := e.s.TakeLease(e.ctx, e.key("shard-1"), "", 0); return err },
		"Heartbeat(worker \"\")":        func() error { _, err := e.s.Heartbeat(e.ctx, noWorker); return err },
		"Heartbeat(instance \"\")":      func() error { _, err := e.s.Heartbeat(e.ctx, noInstance); return err },
		"Heartbeat(new, instance \"\")": func() error { _, err := e.s.Heartbeat(e.ctx, newNoInstance); return err },
		"RemoveWorker(ID \"\")":         func() error { return e.s.RemoveWorker(e.ctx, noWorker) },
		"RequestHandoff(claimant \"\")": func() error { return e.s.RequestHandoff(e.ctx, ok.ShardKey, "A", "", ok.Counter) },
	} {
		wantErr(e.t, call(), checkpoint.ErrInvalid, name)
	}
	e.wantRow(ok.ShardKey, ok, "calls with invalid arguments")
	e.wantNoRow(e.key("shard-1"), "TakeLease with an empty worker")
	if got := e.workers(e.group, e.stream); len(got) != 1 || got[0] != okW {
		e.t.Errorf("after calls with invalid arguments, ListWorkers = %+v, want [%+v]", got, okW)
	}
}

// argumentBadPositions guards against a store that stores a position it cannot order (then
// compares garbage, or lets the next valid position look behind it forever), and against one
// that accepts the zero Position as a checkpoint, which would erase progress.
func argumentBadPositions(e *env) {
	l := e.takeFresh("shard-0", "A")
	e.checkpoint(l, seq("5", 0))
	l.Checkpoint = seq("5", 0)
	bad := []checkpoint.Position{
		seq("", 1),
		seq("01", 0),
		seq("00", 0),
		seq("-1", 0),
		seq("+1", 0),
		seq("1a", 0),
		seq("1.5", 0),
		seq(" 1", 0),
		seq("1e9", 0),
		seq("٣", 0),                          // a decimal digit, but not an ASCII one
		seq("1"+strings.Repeat("0", 129), 0), // 130 digits
		seq("6", -1),
	}
	for _, pos := range bad {
		err := e.s.Checkpoint(e.ctx, l, pos)
		wantErr(e.t, err, checkpoint.ErrInvalid, fmt.Sprintf("Checkpoint(%q/%d)", pos.SequenceNumber, pos.SubSequenceNumber))
		err = e.s.ReleaseLease(e.ctx, l, pos)
		wantErr(e.t, err, checkpoint.ErrInvalid, fmt.Sprintf("ReleaseLease(final %q/%d)", pos.SequenceNumber, pos.SubSequenceNumber))
	}
	err := e.s.Checkpoint(e.ctx, l, checkpoint.Position{})
	wantErr(e.t, err, checkpoint.ErrInvalid, "Checkpoint(zero Position)")
	e.wantRow(l.ShardKey, l, "checkpoints of invalid positions")
}

// argumentCanceledContext guards against a store that ignores its context (a consumer could not
// shut down while the store hangs), reports a cancelled read as ErrNotFound (the consumer would
// start a shard from scratch), or writes anyway.
func argumentCanceledContext(e *env) {
	l := e.takeFresh("shard-0", "A")
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	missing := e.key("shard-1")
	for name, call := range map[string]func() error{
		"GetLease of a missing row": func() error { _, err := e.s.GetLease(ctx, missing); return err },
		"GetLease":                  func() error { _, err := e.s.GetLease(ctx, l.ShardKey); return err },
		"ListLeases":                func() error { _, err := e.s.ListLeases(ctx, e.group, e.stream); return err },
		"TakeLease":                 func() error { _, err := e.s.TakeLease(ctx, missing, "A", 0); return err },
		"RenewLease":                func() error { _, err := e.s.RenewLease(ctx, l); return err },
		"Checkpoint":                func() error { return e.s.Checkpoint(ctx, l, seq("9", 0)) },
		"ReleaseLease":              func() error { return e.s.ReleaseLease(ctx, l, checkpoint.Position{}) },
		"Heartbeat": func() error {
			_, err := e.s.Heartbeat(ctx, checkpoint.Worker{Group: e.group, Stream: e.stream, ID: "A", Instance: instance(1)})
			return err
		},
	} {
		err := call()
		if !errors.Is(err, checkpoint.ErrUnavailable) || !errors.Is(err, context.Canceled) {
			e.t.Errorf("%s with a cancelled context = %v, want an error matching both ErrUnavailable and context.Canceled", name, err)
		}
		if errors.Is(err, checkpoint.ErrNotFound) {
			e.t.Errorf("%s with a cancelled context = %v, which matches ErrNotFound", name, err)
		}
	}
	e.wantRow(l.ShardKey, l, "writes with a cancelled context")
	e.wantNoRow(missing, "TakeLease with a cancelled context")
	if ws := e.workers(e.group, e.stream); len(ws) != 0 {
		e.t.Errorf("after Heartbeat with a cancelled context, ListWorkers = %+v, want none", ws)
	}
}
