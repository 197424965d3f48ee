package redis

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/localstack"
)

// newTestStore returns a store on the stack's Redis under a prefix of the test's own (deleted
// when the test ends), the direct client, and the prefix.
func newTestStore(t testing.TB) (*Store, *goredis.Client, string) {
	t.Helper()
	client := localstack.Redis(t)
	prefix := localstack.RedisPrefix(t, client)
	s, err := New(client, WithPrefix(prefix))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, client, prefix
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustTake(t testing.TB, s *Store, key checkpoint.ShardKey, worker string, counter int64) checkpoint.Lease {
	t.Helper()
	l, err := s.TakeLease(testCtx(t), key, worker, counter)
	if err != nil {
		t.Fatalf("TakeLease(%v, %q, %d): %v", key, worker, counter, err)
	}
	return l
}

// Guards against the rows in Redis drifting from the layout doc.go documents (operators and
// migration scripts read them), and against any key getting a TTL: a position must never
// expire.
func TestRowLayout(t *testing.T) {
	s, client, prefix := newTestStore(t)
	ctx := testCtx(t)
	key := checkpoint.ShardKey{Group: "g/1", Stream: "s:{x}", Shard: "shardId-000000000007"}
	l := mustTake(t, s, key, "w1", 0)
	if err := s.Checkpoint(ctx, l, checkpoint.Position{SequenceNumber: "123", SubSequenceNumber: 4}); err != nil {
		t.Fatal(err)
	}
	if err := s.RequestHandoff(ctx, key, "w1", "w2", l.Counter); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Heartbeat(ctx, checkpoint.Worker{Group: key.Group, Stream: key.Stream, ID: "w1", Instance: "0000000000000001-ab"}); err != nil {
		t.Fatal(err)
	}

	tag := prefix + "{g%2F1/s%3A%7Bx%7D}"
	row, err := client.HGetAll(ctx, tag+":lease:shardId-000000000007").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"owner": "w1", "token": l.Token, "counter": "2", "seq": "123", "subseq": "4", "end": "0",
		"order":   checkpoint.Position{SequenceNumber: "123", SubSequenceNumber: 4}.OrderKey(),
		"pending": "w2",
	}
	for f, v := range want {
		if row[f] != v {
			t.Errorf("lease row field %s = %q, want %q (row %v)", f, row[f], v, row)
		}
	}
	if m, _ := client.SMembers(ctx, tag+":leases").Result(); !slices.Equal(m, []string{key.Shard}) {
		t.Errorf("lease index = %q, want [%q]", m, key.Shard)
	}
	if w, _ := client.HGetAll(ctx, tag+":worker:w1").Result(); !maps.Equal(w, map[string]string{"counter": "1", "instance": "0000000000000001-ab"}) {
		t.Errorf("worker row = %v, want counter 1 and instance 0000000000000001-ab", w)
	}
	if m, _ := client.SMembers(ctx, tag+":workers").Result(); !slices.Equal(m, []string{"w1"}) {
		t.Errorf("worker index = %q, want [w1]", m)
	}

	keys, err := client.Keys(ctx, strings.NewReplacer("[", `\[`, "*", `\*`, "?", `\?`).Replace(prefix)+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 4 {
		t.Errorf("store wrote %d keys %q, want 4", len(keys), keys)
	}
	for _, k := range keys {
		if ttl, err := client.TTL(ctx, k).Result(); err != nil || ttl != -1 {
			t.Errorf("key %q has TTL %v (%v), want none (-1ns)", k, ttl, err)
		}
	}
}

// Guards against the Lua comparison disagreeing with checkpoint.Position.Compare: comparing
// the sequence numbers as strings without their length ("9" > "10"), as Lua numbers (doubles
// lose digits past 2^53, and sequence numbers have up to 129 digits), or ignoring the
// sub-sequence number, would accept a position behind the stored one or refuse a later one.
func TestCheckpointOrderMatchesCompare(t *testing.T) {
	s, _, _ := newTestStore(t)
	ctx := testCtx(t)
	long := strings.Repeat("9", 129)
	p := func(seq string, sub int64) checkpoint.Position {
		return checkpoint.Position{SequenceNumber: seq, SubSequenceNumber: sub}
	}
	end := checkpoint.Position{ShardEnd: true}
	pairs := [][2]checkpoint.Position{
		{p("9", 0), p("10", 0)},
		{p("10", 0), p("9", 0)},
		{p("12", 3), p("12", 2)},
		{p("12", 2), p("12", 10)},
		{p("12", 9223372036854775807), p("13", 0)},
		{p("9007199254740993", 0), p("9007199254740992", 0)}, // equal as doubles
		{p("9007199254740992", 0), p("9007199254740993", 0)},
		{p(long, 0), p("1"+strings.Repeat("0", 128), 0)},
		{p("49590338271490256608559692538361571095921575989136588898", 0), p(long, 1)},
		{p(long, 5), end},
		{end, p(long, 5)},
		{end, end},
		{p("5", 1), p("5", 1)},
	}
	for i, pair := range pairs {
		key := checkpoint.ShardKey{Group: "g", Stream: "s", Shard: fmt.Sprintf("shard-%d", i)}
		l := mustTake(t, s, key, "w", 0)
		if err := s.Checkpoint(ctx, l, pair[0]); err != nil {
			t.Fatalf("Checkpoint(%s): %v", pair[0], err)
		}
		err := s.Checkpoint(ctx, l, pair[1])
		behind := pair[1].Compare(pair[0]) < 0
		switch {
		case behind && !errors.Is(err, checkpoint.ErrPositionBehind):
			t.Errorf("%s after %s = %v, want ErrPositionBehind", pair[1], pair[0], err)
		case !behind && err != nil:
			t.Errorf("%s after %s = %v, want success", pair[1], pair[0], err)
		}
		want := pair[1]
		if behind {
			want = pair[0]
		}
		if got, err := s.GetLease(ctx, key); err != nil || got.Checkpoint != want {
			t.Errorf("after %s then %s: stored %s (%v), want %s", pair[0], pair[1], got.Checkpoint, err, want)
		}
	}
}

// Guards against ListLeases and ListWorkers failing, or returning zero-value rows, when the
// index names a row that is gone (deleted by hand, or evicted by a misconfigured server).
func TestListSkipsDanglingIndexEntries(t *testing.T) {
	s, client, _ := newTestStore(t)
	ctx := testCtx(t)
	l := mustTake(t, s, checkpoint.ShardKey{Group: "g", Stream: "s", Shard: "b"}, "w", 0)
	if _, err := s.Heartbeat(ctx, checkpoint.Worker{Group: "g", Stream: "s", ID: "w", Instance: "i"}); err != nil {
		t.Fatal(err)
	}
	tag := s.keys.tag("g", "s")
	client.SAdd(ctx, leaseIndex(tag), "a", "c")
	client.SAdd(ctx, workerIndex(tag), "ghost")

	leases, err := s.ListLeases(ctx, "g", "s")
	if err != nil || len(leases) != 1 || leases[0] != l {
		t.Errorf("ListLeases = %+v, %v; want only %+v", leases, err, l)
	}
	workers, err := s.ListWorkers(ctx, "g", "s")
	if err != nil || len(workers) != 1 || workers[0].ID != "w" || workers[0].Counter != 1 {
		t.Errorf("ListWorkers = %+v, %v; want only worker w with counter 1", workers, err)
	}
}

// Guards against worker rows written before rows had an instance (a store upgraded in place)
// breaking ListWorkers or Heartbeat, or reading as some instance: the consumer would take
// such a row for a second process with its ID.
func TestWorkerRowWithoutInstance(t *testing.T) {
	s, client, _ := newTestStore(t)
	ctx := testCtx(t)
	tag := s.keys.tag("g", "s")
	client.HSet(ctx, workerKey(tag, "old"), "counter", "41")
	client.SAdd(ctx, workerIndex(tag), "old")

	want := checkpoint.Worker{Group: "g", Stream: "s", ID: "old", Counter: 41}
	if ws, err := s.ListWorkers(ctx, "g", "s"); err != nil || len(ws) != 1 || ws[0] != want {
		t.Errorf("ListWorkers = %+v, %v; want [%+v]", ws, err, want)
	}
	prev, err := s.Heartbeat(ctx, checkpoint.Worker{Group: "g", Stream: "s", ID: "old", Instance: "new"})
	if err != nil || prev != want {
		t.Errorf("Heartbeat = %+v, %v; want the old row %+v", prev, err, want)
	}
	want.Counter, want.Instance = 42, "new"
	if ws, err := s.ListWorkers(ctx, "g", "s"); err != nil || len(ws) != 1 || ws[0] != want {
		t.Errorf("after a heartbeat, ListWorkers = %+v, %v; want [%+v]", ws, err, want)
	}
}

// Guards against ListLeases losing rows past one pipeline chunk, or returning them unsorted.
func TestListLeasesManyShards(t *testing.T) {
	s, _, _ := newTestStore(t)
	ctx := testCtx(t)
	n := listChunk + 7
	want := make([]string, 0, n)
	for i := range n {
		shard := fmt.Sprintf("shardId-%012d", i)
		mustTake(t, s, checkpoint.ShardKey{Group: "g", Stream: "s", Shard: shard}, "w", 0)
		want = append(want, shard)
	}
	leases, err := s.ListLeases(ctx, "g", "s")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, 0, len(leases))
	for _, l := range leases {
		got = append(got, l.Shard)
	}
	if !slices.Equal(got, want) {
		t.Errorf("ListLeases returned %d shards, want %d in order", len(got), len(want))
	}
}

// Guards against a row the store cannot parse (or a foreign key of another type under the
// prefix) being reported as ErrNotFound, which would let a consumer restart the shard from
// its start position, or as ErrUnavailable, which would retry forever.
func TestCorruptRowIsNeitherNotFoundNorUnavailable(t *testing.T) {
	s, client, _ := newTestStore(t)
	ctx := testCtx(t)
	tag := s.keys.tag("g", "s")
	client.HSet(ctx, leaseKey(tag, "bad-counter"), "counter", "x")
	client.HSet(ctx, leaseKey(tag, "bad-order"), "counter", "1", "seq", "5", "subseq", "0", "order", "")
	client.Set(ctx, leaseKey(tag, "string"), "not a hash", 0)

	for _, shard := range []string{"bad-counter", "bad-order", "string"} {
		key := checkpoint.ShardKey{Group: "g", Stream: "s", Shard: shard}
		_, err := s.GetLease(ctx, key)
		if err == nil || errors.Is(err, checkpoint.ErrNotFound) || errors.Is(err, checkpoint.ErrUnavailable) {
			t.Errorf("GetLease(%s) = %v, want a plain error", shard, err)
		}
	}
	_, err := s.TakeLease(ctx, checkpoint.ShardKey{Group: "g", Stream: "s", Shard: "string"}, "w", 0)
	var reply goredis.Error
	if err == nil || errors.Is(err, checkpoint.ErrUnavailable) || !errors.As(err, &reply) {
		t.Errorf("TakeLease on a string key = %v, want the server's WRONGTYPE error, not ErrUnavailable", err)
	}
}

// Guards against a cancelled context being reported as anything but unavailability that
// still unwraps to context.Canceled, and against a cancelled GetLease saying ErrNotFound.
func TestCancelledContext(t *testing.T) {
	s, _, _ := newTestStore(t)
	l := mustTake(t, s, checkpoint.ShardKey{Group: "g", Stream: "s", Shard: "x"}, "w", 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, err := range callEveryMethod(ctx, s, l) {
		if !errors.Is(err, checkpoint.ErrUnavailable) || !errors.Is(err, context.Canceled) || errors.Is(err, checkpoint.ErrNotFound) {
			t.Errorf("%s with a cancelled context = %v, want ErrUnavailable wrapping context.Canceled", name, err)
		}
	}
}

// callEveryMethod calls each Store method once on l's key and yields its error. The calls
// would all succeed on a healthy server (Checkpoint moves forward, conditional calls use the
// stored counter read at the start), so an error means the server could not be used.
func callEveryMethod(ctx context.Context, s *Store, l checkpoint.Lease) func(yield func(string, error) bool) {
	return func(yield func(string, error) bool) {
		k := l.ShardKey
		w := checkpoint.Worker{Group: k.Group, Stream: k.Stream, ID: "w", Instance: "i", Counter: 1}
		next := checkpoint.Position{SequenceNumber: "999999", SubSequenceNumber: 1}
		calls := []struct {
			name string
			call func() error
		}{
			{"GetLease", func() error { _, err := s.GetLease(ctx, k); return err }},
			{"ListLeases", func() error { _, err := s.ListLeases(ctx, k.Group, k.Stream); return err }},
			{"TakeLease", func() error { _, err := s.TakeLease(ctx, k, "w", l.Counter); return err }},
			{"RenewLease", func() error { _, err := s.RenewLease(ctx, l); return err }},
			{"Checkpoint", func() error { return s.Checkpoint(ctx, l, next) }},
			{"ReleaseLease", func() error { return s.ReleaseLease(ctx, l, next) }},
			{"RequestHandoff", func() error { return s.RequestHandoff(ctx, k, l.Owner, "w2", l.Counter) }},
			{"DeleteLease", func() error { return s.DeleteLease(ctx, k, l.Counter) }},
			{"Heartbeat", func() error { _, err := s.Heartbeat(ctx, w); return err }},
			{"ListWorkers", func() error { _, err := s.ListWorkers(ctx, k.Group, k.Stream); return err }},
			{"RemoveWorker", func() error { return s.RemoveWorker(ctx, w) }},
		}
		for _, c := range calls {
			if !yield(c.name, c.call()) {
				return
			}
		}
	}
}
