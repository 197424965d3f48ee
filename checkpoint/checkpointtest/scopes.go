package checkpointtest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/shardline/kinesis/checkpoint"
)

func scopeCases() []testCase {
	return []testCase{
		{"GroupsAndStreams", scopeGroupsAndStreams},
		{"SeparatorsInNames", scopeSeparatorsInNames},
	}
}

// scopeGroupsAndStreams guards against a store that keys rows by shard ID alone, or by group or
// stream alone: every stream has a "shardId-000000000000", and two consumer groups read the
// same stream independently.
func scopeGroupsAndStreams(e *env) {
	var keys []checkpoint.ShardKey
	for _, g := range []string{e.prefix + "-billing", e.prefix + "-audit"} {
		for _, s := range []string{e.prefix + "-orders", e.prefix + "-payments"} {
			for _, shard := range []string{"shardId-000000000000", "shardId-000000000001"} {
				keys = append(keys, checkpoint.ShardKey{Group: g, Stream: s, Shard: shard})
			}
		}
	}
	e.wantSeparate(keys)
}

// scopeSeparatorsInNames guards against keys built by joining names with a separator ("a:b" +
// "c" and "a" + "b:c" both become "a:b:c") or matched by pattern ("*", "?", "[" in a Redis
// MATCH): group, stream and shard names are arbitrary non-empty strings.
func scopeSeparatorsInNames(e *env) {
	p := e.prefix
	var keys []checkpoint.ShardKey
	for _, sep := range []string{":", "#", "/", "|", " ", ".", "-", "_"} {
		keys = append(keys,
			checkpoint.ShardKey{Group: p + sep + "x", Stream: "y", Shard: "z"},
			checkpoint.ShardKey{Group: p, Stream: "x" + sep + "y", Shard: "z"},
			checkpoint.ShardKey{Group: p, Stream: "x", Shard: "y" + sep + "z"},
			checkpoint.ShardKey{Group: p + sep, Stream: "x", Shard: "z"},
			checkpoint.ShardKey{Group: p, Stream: sep + "x", Shard: "z"},
		)
	}
	keys = append(keys,
		checkpoint.ShardKey{Group: p, Stream: "x", Shard: "z"},
		checkpoint.ShardKey{Group: p, Stream: "*", Shard: "z"},
		checkpoint.ShardKey{Group: p, Stream: "x*", Shard: "z"},
		checkpoint.ShardKey{Group: p, Stream: "?", Shard: "z"},
		checkpoint.ShardKey{Group: p, Stream: "[x]", Shard: "z"},
		checkpoint.ShardKey{Group: p + "*", Stream: "x", Shard: "z"},
		checkpoint.ShardKey{Group: p, Stream: "{x}", Shard: "z"},
		checkpoint.ShardKey{Group: p, Stream: "%x", Shard: "z"},
		checkpoint.ShardKey{Group: p, Stream: "ström", Shard: "z"},
	)
	e.wantSeparate(keys)
}

// wantSeparate gives every key a row with a position and an owner of its own, renews and
// checkpoints them, and fails unless each row, each listing of a group and stream, and each
// worker registry holds exactly its own.
func (e *env) wantSeparate(keys []checkpoint.ShardKey) {
	e.t.Helper()
	type scope struct{ group, stream string }
	want := map[checkpoint.ShardKey]checkpoint.Lease{}
	workers := map[scope][]checkpoint.Worker{}
	scopes := map[scope][]checkpoint.ShardKey{}
	for i, k := range keys {
		if _, dup := want[k]; dup {
			e.t.Fatalf("suite bug: key %s listed twice", keyString(k))
		}
		l := e.take(k, fmt.Sprintf("w%d", i), 0) // counter 0: fails if another key's row is here
		pos := seq(fmt.Sprint(1000+i), int64(i))
		e.checkpoint(l, pos)
		l.Checkpoint = pos
		want[k] = l
		s := scope{k.Group, k.Stream}
		scopes[s] = append(scopes[s], k)
		workers[s] = append(workers[s], e.heartbeat(k.Group, k.Stream, l.Owner))
	}
	// Writes to one key must not show in another.
	for i, k := range keys {
		l := e.renew(want[k])
		want[k] = l
		if i%2 == 0 {
			pos := seq(fmt.Sprint(2000+i), 0)
			e.checkpoint(l, pos)
			l.Checkpoint = pos
			want[k] = l
		}
	}
	for _, k := range keys {
		e.wantRow(k, want[k], "writing rows of other groups, streams and shards")
	}
	for s, ks := range scopes {
		rows, err := e.s.ListLeases(e.ctx, s.group, s.stream)
		if err != nil {
			e.t.Fatalf("ListLeases(%q, %q): %v", s.group, s.stream, err)
		}
		got := make([]string, len(rows))
		for i, r := range rows {
			got[i] = keyString(r.ShardKey)
			if w, ok := want[r.ShardKey]; !ok || w != r {
				e.t.Errorf("ListLeases(%q, %q) returned %s %s, want %s", s.group, s.stream, keyString(r.ShardKey), leaseString(r), leaseString(w))
			}
		}
		wantKeys := make([]string, len(ks))
		for i, k := range ks {
			wantKeys[i] = keyString(k)
		}
		slices.Sort(got)
		slices.Sort(wantKeys)
		if !slices.Equal(got, wantKeys) {
			e.t.Errorf("ListLeases(%q, %q) returned\n\t%q\nwant\n\t%q", s.group, s.stream, got, wantKeys)
		}

		ws, err := e.s.ListWorkers(e.ctx, s.group, s.stream)
		if err != nil {
			e.t.Fatalf("ListWorkers(%q, %q): %v", s.group, s.stream, err)
		}
		byID := func(a, b checkpoint.Worker) int { return strings.Compare(a.ID, b.ID) }
		slices.SortFunc(ws, byID)
		slices.SortFunc(workers[s], byID)
		if !slices.Equal(ws, workers[s]) {
			e.t.Errorf("ListWorkers(%q, %q) returned\n\t%+v\nwant\n\t%+v", s.group, s.stream, ws, workers[s])
		}
	}
}
