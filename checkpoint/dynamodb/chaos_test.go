package dynamodb_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/shardline/kinesis/checkpoint"
	ddbstore "github.com/shardline/kinesis/checkpoint/dynamodb"
	"github.com/shardline/kinesis/localstack"
)

// TestFaultsNeverCorrupt drives two workers through random takes, steals, renewals,
// checkpoints, releases and handoff requests on a few shards while 30% of the requests fail
// (half before reaching DynamoDB, half after it applied them and answered) and the SDK
// retries each call once. Before and after every call the row is read through a clean
// client, and the call's result must be one the contract allows for that row:
//
//   - success: the row is exactly the old one with the call applied (a renewal retried by
//     the SDK may add 2 to the counter);
//   - ErrLeaseLost, ErrConflict, ErrPositionBehind: only when the old row says so, and the
//     row is unchanged;
//   - ErrUnavailable: the row is unchanged or has the call applied, nothing else;
//   - anything else, ErrNotFound for an existing row included, is a failure.
//
// It guards against a position moving back or being written by a worker that lost the lease
// when requests fail or repeat, against half-written rows (position without its order key),
// against retried writes reported as conflicts, and against a store that does not work again
// once the faults stop.
func TestFaultsNeverCorrupt(t *testing.T) {
	client := localstack.DynamoDB(t)
	table := newTable(t, client)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	flaky, ft := newFaultyStore(t, table, 0.3, seed)
	direct, err := ddbstore.New(client, table)
	if err != nil {
		t.Fatal(err)
	}

	const shards, steps = 3, 150
	models := make([]*model, shards)
	for i := range models {
		models[i] = &model{
			flaky: flaky, direct: direct, client: client, table: table,
			key:     checkpoint.ShardKey{Group: "chaos|group", Stream: "stream", Shard: fmt.Sprintf("shardId-%012d", i)},
			rng:     rand.New(rand.NewPCG(seed, uint64(i)+10)),
			handles: make(map[string]checkpoint.Lease),
			stats:   make(map[string]int),
			next:    1,
		}
	}
	t.Run("faults", func(t *testing.T) {
		for _, m := range models {
			t.Run(m.key.Shard, func(t *testing.T) {
				t.Parallel()
				m.t, m.ctx = t, ctxFor(t)
				for range steps {
					m.step()
				}
			})
		}
	})
	t.Logf("requests: %d failed before the server, %d failed after it answered, %d passed",
		ft.before.Load(), ft.after.Load(), ft.passed.Load())
	if ft.before.Load() == 0 || ft.after.Load() == 0 {
		t.Errorf("the transport injected no faults of some kind; the test proved nothing")
	}
	total := make(map[string]int)
	for _, m := range models {
		for k, v := range m.stats {
			total[k] += v
		}
	}
	t.Logf("outcomes: %s", statsString(total))
	for _, must := range []string{"Checkpoint ok", "Checkpoint unavailable", "TakeLease ok", "RenewLease ok", "ReleaseLease ok"} {
		if total[must] == 0 {
			t.Errorf("no %q outcome in the run; the test did not exercise it", must)
		}
	}
	if t.Failed() {
		return
	}

	// With the faults off the store works again on every row: a worker takes the lease at
	// the counter it reads, checkpoints beyond every position of the run and releases.
	ft.setRate(0)
	for _, m := range models {
		m.t, m.ctx = t, ctxFor(t)
		r0, _ := m.read()
		l, err := flaky.TakeLease(m.ctx, m.key, "w3", r0.Counter)
		if err != nil {
			t.Fatalf("%s: TakeLease after the faults stopped: %v", m.key.Shard, err)
		}
		final := m.position(m.next + 1)
		if err := flaky.Checkpoint(m.ctx, l, m.position(m.next)); err != nil {
			t.Fatalf("%s: Checkpoint after the faults stopped: %v", m.key.Shard, err)
		}
		if err := flaky.ReleaseLease(m.ctx, l, final); err != nil {
			t.Fatalf("%s: ReleaseLease after the faults stopped: %v", m.key.Shard, err)
		}
		want := checkpoint.Lease{ShardKey: m.key, Counter: r0.Counter + 2, Checkpoint: final}
		if r1, _ := m.read(); r1 != want {
			t.Errorf("%s: final row %+v, want %+v", m.key.Shard, r1, want)
		}
	}
}

// model runs random calls on one shard and checks each result against the row before and
// after it (see TestFaultsNeverCorrupt). Calls on one shard are sequential, so the row read
// before a call is the row the call meets.
type model struct {
	t      *testing.T
	ctx    context.Context
	flaky  *ddbstore.Store
	direct *ddbstore.Store
	client *ddb.Client
	table  string
	key    checkpoint.ShardKey
	rng    *rand.Rand

	handles map[string]checkpoint.Lease // each worker's latest handle
	next    int64                       // the next new position to checkpoint
	stats   map[string]int
}

// position returns the n-th position of the run: positions grow with n, through sequence
// numbers of growing length and sub-sequence numbers.
func (m *model) position(n int64) checkpoint.Position {
	return checkpoint.Position{SequenceNumber: fmt.Sprint(n/4*37 + 5), SubSequenceNumber: n % 4}
}

func (m *model) read() (checkpoint.Lease, bool) {
	m.t.Helper()
	l, err := m.direct.GetLease(m.ctx, m.key)
	if errors.Is(err, checkpoint.ErrNotFound) {
		return checkpoint.Lease{}, false
	}
	if err != nil {
		m.t.Fatalf("direct GetLease: %v", err)
	}
	m.checkRaw(l)
	return l, true
}

// checkRaw verifies that the stored order key is the one of the stored position: a write
// that stored one without the other would break every later comparison.
func (m *model) checkRaw(l checkpoint.Lease) {
	m.t.Helper()
	pk := fmt.Sprintf("%d:%s|%s", len(m.key.Group), m.key.Group, m.key.Stream)
	item := rawRow(m.t, m.client, m.table, pk, "lease#"+m.key.Shard)
	if got, want := sAttr(item, "checkpointOrder"), l.Checkpoint.OrderKey(); got != want {
		m.t.Fatalf("stored order key %q, want %q for the stored position %s", got, want, l.Checkpoint)
	}
}

func (m *model) record(op string, err error) string {
	outcome := "ok"
	switch {
	case err == nil:
	case errors.Is(err, checkpoint.ErrUnavailable):
		outcome = "unavailable"
	case errors.Is(err, checkpoint.ErrLeaseLost):
		outcome = "lease lost"
	case errors.Is(err, checkpoint.ErrConflict):
		outcome = "conflict"
	case errors.Is(err, checkpoint.ErrPositionBehind):
		outcome = "behind"
	case errors.Is(err, checkpoint.ErrNotFound):
		outcome = "not found"
	default:
		outcome = "other"
	}
	m.stats[op+" "+outcome]++
	return outcome
}

func (m *model) step() {
	m.t.Helper()
	workers := [2]string{"w1", "w2"}
	r0, exists := m.read()
	w := workers[m.rng.IntN(2)]
	if r0.Owner != "" && m.rng.IntN(10) < 6 {
		w = r0.Owner // mostly the owner acts, so that owner writes succeed often enough
	}
	other := workers[0]
	if w == other {
		other = workers[1]
	}
	h, ok := m.handles[w]
	if !ok {
		h = checkpoint.Lease{ShardKey: m.key, Owner: w, Token: "never-issued"}
	}
	live := exists && r0.Owner == w && r0.Token == h.Token

	// pick returns a new position, or now and then an earlier one that may be behind.
	pick := func() checkpoint.Position {
		if m.next > 1 && m.rng.IntN(10) == 0 {
			return m.position(m.rng.Int64N(m.next))
		}
		m.next++
		return m.position(m.next - 1)
	}
	var (
		op      string
		err     error
		applied func(r1 checkpoint.Lease, exists1 bool) bool // the row with the call applied
		verdict bool                                         // the row justifies the refusal err names
		ret     *checkpoint.Lease                            // a returned row that must equal r1
	)
	switch x := m.rng.IntN(100); {
	case x < 15:
		op = "TakeLease"
		counter := r0.Counter
		if m.rng.IntN(7) == 0 {
			counter++ // a stale read
		}
		var got checkpoint.Lease
		got, err = m.flaky.TakeLease(m.ctx, m.key, w, counter)
		counterOK := r0.Counter == counter
		applied = func(r1 checkpoint.Lease, e bool) bool {
			return counterOK && e && r1.Owner == w && r1.Counter == counter+1 && r1.Token != "" &&
				r1.Token != r0.Token && r1.Checkpoint == r0.Checkpoint && r1.PendingOwner == ""
		}
		verdict = errors.Is(err, checkpoint.ErrConflict) && !counterOK
		if err == nil {
			m.handles[w] = got
			ret = &got
		}
	case x < 55:
		op = "Checkpoint"
		p := pick()
		err = m.flaky.Checkpoint(m.ctx, h, p)
		ahead := p.Compare(r0.Checkpoint) >= 0
		applied = func(r1 checkpoint.Lease, e bool) bool {
			want := r0
			want.Checkpoint = p
			return live && ahead && e && r1 == want
		}
		verdict = (errors.Is(err, checkpoint.ErrLeaseLost) && !live) ||
			(errors.Is(err, checkpoint.ErrPositionBehind) && live && !ahead)
	case x < 75:
		op = "RenewLease"
		var got checkpoint.Lease
		got, err = m.flaky.RenewLease(m.ctx, h)
		applied = func(r1 checkpoint.Lease, e bool) bool {
			want := r0
			want.Counter = r1.Counter
			return live && e && r1 == want && (r1.Counter == r0.Counter+1 || r1.Counter == r0.Counter+2)
		}
		verdict = errors.Is(err, checkpoint.ErrLeaseLost) && !live
		if err == nil {
			m.handles[w] = got
			ret = &got
		}
	case x < 85:
		op = "ReleaseLease"
		var final checkpoint.Position
		if m.rng.IntN(2) == 0 {
			final = pick()
		}
		err = m.flaky.ReleaseLease(m.ctx, h, final)
		ahead := final.IsZero() || final.Compare(r0.Checkpoint) >= 0
		applied = func(r1 checkpoint.Lease, e bool) bool {
			want := checkpoint.Lease{ShardKey: m.key, Counter: r0.Counter + 1, Checkpoint: r0.Checkpoint}
			if !final.IsZero() {
				want.Checkpoint = final
			}
			return live && ahead && e && r1 == want
		}
		verdict = (errors.Is(err, checkpoint.ErrLeaseLost) && !live) ||
			(errors.Is(err, checkpoint.ErrPositionBehind) && live && !ahead)
	case x < 92:
		op = "RequestHandoff"
		owner, counter := r0.Owner, r0.Counter
		if owner == "" || m.rng.IntN(5) == 0 {
			owner = w
		}
		if m.rng.IntN(5) == 0 {
			counter++
		}
		err = m.flaky.RequestHandoff(m.ctx, m.key, owner, other, counter)
		match := exists && r0.Owner != "" && r0.Owner == owner && r0.Counter == counter
		applied = func(r1 checkpoint.Lease, e bool) bool {
			want := r0
			want.PendingOwner, want.Counter = other, r0.Counter+1
			return match && e && r1 == want
		}
		verdict = errors.Is(err, checkpoint.ErrConflict) && !match
	default:
		op = "GetLease"
		var got checkpoint.Lease
		got, err = m.flaky.GetLease(m.ctx, m.key)
		applied = func(checkpoint.Lease, bool) bool { return false }
		verdict = errors.Is(err, checkpoint.ErrNotFound) && !exists
		if err == nil && (!exists || got != r0) {
			m.t.Fatalf("GetLease = %+v, stored row %+v (exists %v)", got, r0, exists)
		}
	}
	r1, exists1 := m.read()
	same := exists1 == exists && r1 == r0
	desc := func() string {
		return fmt.Sprintf("%s by %s (handle token %q) = %v\n\tbefore: %+v (exists %v)\n\tafter:  %+v (exists %v)",
			op, w, h.Token, err, r0, exists, r1, exists1)
	}
	switch outcome := m.record(op, err); outcome {
	case "ok":
		if op != "GetLease" && !applied(r1, exists1) {
			m.t.Fatalf("%s: success, but the row is not the old row with the call applied", desc())
		}
		if ret != nil && *ret != r1 {
			m.t.Fatalf("%s: returned %+v, which is not the stored row", desc(), *ret)
		}
	case "unavailable":
		if !same && !applied(r1, exists1) {
			m.t.Fatalf("%s: ErrUnavailable, but the row changed other than by the call", desc())
		}
	case "lease lost", "conflict", "behind", "not found":
		if !verdict {
			m.t.Fatalf("%s: the row before the call does not justify %s", desc(), outcome)
		}
		if !same {
			m.t.Fatalf("%s: refused, but the row changed", desc())
		}
	default:
		m.t.Fatalf("%s: unexpected error", desc())
	}
}

func statsString(stats map[string]int) string {
	keys := make([]string, 0, len(stats))
	for k := range stats {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %d; ", k, stats[k])
	}
	return b.String()
}
