package checkpointtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardline/kinesis/checkpoint"
)

// A mutant is a store with one bug that some store could plausibly have. The suite must fail
// against every mutant, in the subtests that guard against that bug: a subtest that no mutant
// fails could be a test that cannot fail.
type mutant struct {
	wrap func(checkpoint.Store) checkpoint.Store
	// catchers are subtests (Group/Case) of which at least one must fail; every one listed
	// that passes is reported, so the list stays honest.
	catchers []string
}

var mutants = map[string]mutant{
	"TakeIgnoresCounter": {
		func(s checkpoint.Store) checkpoint.Store { return takeIgnoresCounter{s} },
		[]string{"Leases/TakeFresh", "Leases/TakeConditional", "Expiry/RenewalBeatsTake"},
	},
	"TakeReadThenWrite": {
		func(s checkpoint.Store) checkpoint.Store { return takeReadThenWrite{s} },
		[]string{"Races/TakeFresh", "Races/Steal"},
	},
	"TakeKeepsToken": {
		func(s checkpoint.Store) checkpoint.Store { return takeKeepsToken{s} },
		[]string{"Leases/TokensUnique", "Fencing/OldTenure"},
	},
	"RenewKeepsCounter": {
		func(s checkpoint.Store) checkpoint.Store { return renewKeepsCounter{s} },
		[]string{"Leases/Counter", "Expiry/RenewalsKeepLive", "Expiry/RenewalBeatsTake"},
	},
	"CheckpointBumpsCounter": {
		func(s checkpoint.Store) checkpoint.Store { return checkpointBumpsCounter{s} },
		[]string{"Positions/RoundTrip", "Leases/Counter", "Expiry/CheckpointsDoNotKeepLive", "Fencing/TokenNotCounter"},
	},
	"FenceOnCounter": {
		func(s checkpoint.Store) checkpoint.Store { return fenceOnCounter{s} },
		[]string{"Fencing/TokenNotCounter", "Fencing/HandoffRequestKeepsHandle", "Handoff/Graceful"},
	},
	"FenceOnOwnerOnly": {
		func(s checkpoint.Store) checkpoint.Store { return fenceOnOwnerOnly{s} },
		[]string{"Fencing/OldTenure", "Fencing/ForgedHandle"},
	},
	"FreeRowIsHeld": {
		func(s checkpoint.Store) checkpoint.Store { return freeRowIsHeld{s} },
		[]string{"Fencing/FreeOrMissingRow"},
	},
	"BehindBeforeLost": {
		func(s checkpoint.Store) checkpoint.Store { return behindBeforeLost{s} },
		[]string{"Fencing/AfterSteal", "Fencing/OldTenure"},
	},
	"CheckpointReadThenWrite": {
		func(s checkpoint.Store) checkpoint.Store {
			return &checkpointReadThenWrite{Store: s, pos: map[checkpoint.ShardKey]checkpoint.Position{}}
		},
		[]string{"Positions/ConcurrentWritersNeverRegress"},
	},
	"SequenceAsString": {
		func(s checkpoint.Store) checkpoint.Store { return sequenceAsString{s} },
		[]string{"Positions/NeverBackwards"},
	},
	"ShardEndOverwritable": {
		func(s checkpoint.Store) checkpoint.Store { return shardEndOverwritable{s} },
		[]string{"Positions/ShardEnd"},
	},
	"ReleaseForgetsPosition": {
		func(s checkpoint.Store) checkpoint.Store { return releaseForgetsPosition{s} },
		[]string{"Leases/ReleaseKeepsPosition", "Leases/Counter", "Handoff/Graceful"},
	},
	"ReleaseIgnoresFinal": {
		func(s checkpoint.Store) checkpoint.Store { return releaseIgnoresFinal{s} },
		[]string{"Leases/ReleaseFinal", "Handoff/Graceful"},
	},
	"ReleaseDespiteBehind": {
		func(s checkpoint.Store) checkpoint.Store { return releaseDespiteBehind{s} },
		[]string{"Leases/ReleaseFinalBehind", "Positions/ShardEnd"},
	},
	"HandoffIgnoresCondition": {
		func(s checkpoint.Store) checkpoint.Store { return handoffIgnoresCondition{s} },
		[]string{"Handoff/Conditional"},
	},
	"TakeKeepsPendingOwner": {
		func(s checkpoint.Store) checkpoint.Store { return takeKeepsPendingOwner{s} },
		[]string{"Handoff/TakeClearsPending"},
	},
	"DeleteIgnoresCounter": {
		func(s checkpoint.Store) checkpoint.Store { return deleteIgnoresCounter{s} },
		[]string{"Leases/Delete"},
	},
	"MissingIsZeroLease": {
		func(s checkpoint.Store) checkpoint.Store { return missingIsZeroLease{s} },
		[]string{"Leases/GetMissing", "Leases/TakeFresh", "Leases/Delete"},
	},
	"ListFirstPageOnly": {
		func(s checkpoint.Store) checkpoint.Store { return listFirstPageOnly{s} },
		[]string{"Leases/ListMany", "Workers/ListMany"},
	},
	"JoinedKeys": {
		func(s checkpoint.Store) checkpoint.Store { return joinedKeys{s} },
		[]string{"Scopes/SeparatorsInNames"},
	},
	"ShardOnlyKeys": {
		func(s checkpoint.Store) checkpoint.Store { return shardOnlyKeys{s} },
		[]string{"Scopes/GroupsAndStreams"},
	},
	"HeartbeatKeepsCounter": {
		func(s checkpoint.Store) checkpoint.Store { return heartbeatKeepsCounter{s} },
		[]string{"Workers/Heartbeat", "Expiry/Workers", "Races/Heartbeats"},
	},
	"HeartbeatReturnsNew": {
		func(s checkpoint.Store) checkpoint.Store { return heartbeatReturnsNew{s} },
		[]string{"Workers/Heartbeat", "Workers/Instances", "Races/Heartbeats"},
	},
	"HeartbeatReturnsOwnInstance": {
		func(s checkpoint.Store) checkpoint.Store { return heartbeatReturnsOwnInstance{s} },
		[]string{"Workers/Instances", "Races/Heartbeats"},
	},
	"HeartbeatIgnoresInstance": {
		func(s checkpoint.Store) checkpoint.Store { return heartbeatIgnoresInstance{s} },
		[]string{"Workers/Heartbeat", "Workers/Instances", "Workers/ListMany", "Races/Heartbeats"},
	},
	"HeartbeatKeepsFirstInstance": {
		func(s checkpoint.Store) checkpoint.Store { return heartbeatKeepsFirstInstance{s} },
		[]string{"Workers/Instances", "Races/Heartbeats"},
	},
	"HeartbeatReadThenWrite": {
		func(s checkpoint.Store) checkpoint.Store { return heartbeatReadThenWrite{s} },
		[]string{"Races/Heartbeats"},
	},
	"ListWorkersDropsInstance": {
		func(s checkpoint.Store) checkpoint.Store { return listWorkersDropsInstance{s} },
		[]string{"Workers/Heartbeat", "Workers/Instances", "Workers/ListMany", "Workers/Remove", "Scopes/GroupsAndStreams"},
	},
	"AcceptsEmptyInstance": {
		func(s checkpoint.Store) checkpoint.Store { return acceptsEmptyInstance{s} },
		[]string{"Arguments/EmptyNames"},
	},
	"RemoveIgnoresCounter": {
		func(s checkpoint.Store) checkpoint.Store { return removeIgnoresCounter{s} },
		[]string{"Workers/Remove"},
	},
	"AcceptsEmptyNames": {
		func(s checkpoint.Store) checkpoint.Store { return acceptsEmptyNames{s} },
		[]string{"Arguments/EmptyNames"},
	},
	"AcceptsBadPositions": {
		func(s checkpoint.Store) checkpoint.Store { return acceptsBadPositions{s} },
		[]string{"Arguments/BadPositions"},
	},
	"IgnoresContext": {
		func(s checkpoint.Store) checkpoint.Store { return ignoresContext{s} },
		[]string{"Arguments/CanceledContext"},
	},
}

const mutantEnv = "CHECKPOINTTEST_MUTANT"

// TestMutant runs the suite against the mutant named by $CHECKPOINTTEST_MUTANT; it is the child
// process of TestSuiteCatchesMutants.
func TestMutant(t *testing.T) {
	name := os.Getenv(mutantEnv)
	if name == "" {
		t.Skip("run by TestSuiteCatchesMutants")
	}
	m, ok := mutants[name]
	if !ok {
		t.Fatalf("no mutant %q", name)
	}
	Run(t, func(*testing.T) checkpoint.Store { return m.wrap(checkpoint.NewMemory()) })
}

// TestSuiteCatchesMutants guards against a suite that passes broken stores: it runs the suite
// against each mutant in a child process and fails unless the subtests meant to catch that
// mutant's bug fail.
func TestSuiteCatchesMutants(t *testing.T) {
	if os.Getenv(mutantEnv) != "" {
		t.Skip("in a child process")
	}
	if testing.Short() {
		t.Skip("starts one process per mutant")
	}
	failed := regexp.MustCompile(`--- FAIL: TestMutant/([^/\s]+/[^/\s]+) `)
	caught := map[string]bool{}
	for _, name := range slices.Sorted(mapKeys(mutants)) {
		m := mutants[name]
		cmd := exec.Command(os.Args[0], "-test.run=^TestMutant$", "-test.v", "-test.count=1", "-test.timeout=2m")
		cmd.Env = append(os.Environ(), mutantEnv+"="+name)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Errorf("mutant %s: the suite passed or did not run (%v); want it to fail", name, err)
			continue
		}
		fails := map[string]bool{}
		for _, m := range failed.FindAllStringSubmatch(string(out), -1) {
			fails[m[1]] = true
			caught[m[1]] = true
		}
		if len(fails) == 0 {
			t.Errorf("mutant %s: the child failed without a failing subtest:\n%s", name, out)
			continue
		}
		for _, c := range m.catchers {
			if !fails[c] {
				t.Errorf("mutant %s: subtest %s passed; it should catch this bug (failed: %v)", name, c, slices.Sorted(mapKeys(fails)))
			}
		}
	}
	// Every subtest must be able to fail: each one is a catcher of some mutant or is listed
	// here with the reason no wrapper around Memory can break it.
	untestable := map[string]string{}
	for _, g := range suite() {
		for _, c := range g.cases {
			name := g.name + "/" + c.name
			if !caught[name] && untestable[name] == "" {
				t.Errorf("subtest %s failed against no mutant: add a mutant that breaks it", name)
			}
		}
	}
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// The mutants. Each wraps a correct store and breaks one rule.

type takeIgnoresCounter struct{ checkpoint.Store }

func (s takeIgnoresCounter) TakeLease(ctx context.Context, k checkpoint.ShardKey, w string, _ int64) (checkpoint.Lease, error) {
	l, err := s.GetLease(ctx, k)
	if err != nil && !errors.Is(err, checkpoint.ErrNotFound) {
		return l, err
	}
	return s.Store.TakeLease(ctx, k, w, l.Counter)
}

// takeReadThenWrite checks the counter, then writes whatever the row holds by then.
type takeReadThenWrite struct{ checkpoint.Store }

func (s takeReadThenWrite) TakeLease(ctx context.Context, k checkpoint.ShardKey, w string, c int64) (checkpoint.Lease, error) {
	l, err := s.GetLease(ctx, k)
	if err != nil && !errors.Is(err, checkpoint.ErrNotFound) {
		return l, err
	}
	if l.Counter != c {
		return checkpoint.Lease{}, fmt.Errorf("%w: mutant", checkpoint.ErrConflict)
	}
	time.Sleep(5 * time.Millisecond) // the other racers read the same row meanwhile
	for {
		l, _ := s.GetLease(ctx, k)
		n, err := s.Store.TakeLease(ctx, k, w, l.Counter)
		if !errors.Is(err, checkpoint.ErrConflict) {
			return n, err
		}
	}
}

// takeKeepsToken keeps the token of the previous tenure when a worker takes its own lease again.
type takeKeepsToken struct{ checkpoint.Store }

func (s takeKeepsToken) TakeLease(ctx context.Context, k checkpoint.ShardKey, w string, c int64) (checkpoint.Lease, error) {
	old, _ := s.GetLease(ctx, k)
	l, err := s.Store.TakeLease(ctx, k, w, c)
	if err == nil && old.Owner == w {
		l.Token = old.Token // the handle the caller gets; also what a stale handle can use
		return l, nil
	}
	return l, err
}

func (s takeKeepsToken) fix(ctx context.Context, l checkpoint.Lease) checkpoint.Lease {
	if cur, err := s.GetLease(ctx, l.ShardKey); err == nil && cur.Owner == l.Owner {
		l.Token = cur.Token
	}
	return l
}

func (s takeKeepsToken) RenewLease(ctx context.Context, l checkpoint.Lease) (checkpoint.Lease, error) {
	return s.Store.RenewLease(ctx, s.fix(ctx, l))
}

func (s takeKeepsToken) Checkpoint(ctx context.Context, l checkpoint.Lease, p checkpoint.Position) error {
	return s.Store.Checkpoint(ctx, s.fix(ctx, l), p)
}

func (s takeKeepsToken) ReleaseLease(ctx context.Context, l checkpoint.Lease, p checkpoint.Position) error {
	return s.Store.ReleaseLease(ctx, s.fix(ctx, l), p)
}

type renewKeepsCounter struct{ checkpoint.Store }

func (s renewKeepsCounter) RenewLease(ctx context.Context, l checkpoint.Lease) (checkpoint.Lease, error) {
	cur, err := s.GetLease(ctx, l.ShardKey)
	if err != nil || l.Owner == "" || cur.Owner != l.Owner || cur.Token != l.Token {
		return checkpoint.Lease{}, fmt.Errorf("%w: mutant", checkpoint.ErrLeaseLost)
	}
	return cur, nil
}

type checkpointBumpsCounter struct{ checkpoint.Store }

func (s checkpointBumpsCounter) Checkpoint(ctx context.Context, l checkpoint.Lease, p checkpoint.Position) error {
	if err := s.Store.Checkpoint(ctx, l, p); err != nil {
		return err
	}
	_, err := s.Store.RenewLease(ctx, l)
	return err
}

// fenceOnCounter also requires the handle's counter to be the stored one.
type fenceOnCounter struct{ checkpoint.Store }

func (s fenceOnCounter) check(ctx context.Context, l checkpoint.Lease) error {
	if cur, err := s.GetLease(ctx, l.ShardKey); err == nil && cur.Counter != l.Counter {
		return fmt.Errorf("%w: mutant", checkpoint.ErrLeaseLost)
	}
	return nil
}

func (s fenceOnCounter) Checkpoint(ctx context.Context, l checkpoint.Lease, p checkpoint.Position) error {
	if err := s.check(ctx, l); err != nil {
		return err
	}
	return s.Store.Checkpoint(ctx, l, p)
}

func (s fenceOnCounter) RenewLease(ctx context.Context, l checkpoint.Lease) (checkpoint.Lease, error) {
	if err := s.check(ctx, l); err != nil {
		return checkpoint.Lease{}, err
	}
	return s.Store.RenewLease(ctx, l)
}

func (s fenceOnCounter) ReleaseLease(ctx context.Context, l checkpoint.Lease, p checkpoint.Position) error {
	if err := s.check(ctx, l); err != nil {
		return err
	}
	return s.Store.ReleaseLease(ctx, l, p)
}

// fenceOnOwnerOnly accepts any token of the right owner.
type fenceOnOwnerOnly struct{ checkpoint.Store }

func (s fenceOnOwnerOnly) fix(ctx context.Context, l checkpoint.Lease) checkpoint.Lease {
	if cur, err := s.GetLease(ctx, l.ShardKey); err == nil && cur.Owner == l.Owner {
		l.Token = cur.Token
	}
	return l
}

func (s fenceOnOwnerOnly) Checkpoint(ctx context.Context, l checkpoint.Lease, p checkpoint.Position) error {
	return s.Store.Checkpoint(ctx, s.fix(ctx, l), p)
}

func (s fenceOnOwnerOnly) RenewLease(ctx context.Context, l checkpoint.Lease) (checkpoint.Lease, error) {
	return s.Store.RenewLease(ctx, s.fix(ctx, l))
}

func (s fenceOnOwnerOnly) ReleaseLease(ctx context.Context, l checkpoint.Lease, p checkpoint.Position) error {
	return s.Store.ReleaseLease(ctx, s.fix(ctx, l), p)
}

// freeRowIsHeld lets a handle with an empty owner and token "renew" a free row.
type freeRowIsHeld struct{ checkpoint.Store }

func (s freeRowIsHeld) RenewLease(ctx context.Context, l checkpoint.Lease) (checkpoint.Lease, error) {
	if cur, err := s.GetLease(ctx, l.ShardKey); err == nil && l.Owner == "" && cur.Owner == "" && l.Token == cur.Token {
		return cur, nil
	}
	return s.Store.RenewLease(ctx, l)
}

// behindBeforeLost checks the position before the owner.
type behindBeforeLost struct{ checkpoint.Store }

func (s behindBeforeLost) Checkpoint(ctx context.Context, l checkpoint.Lease, p checkpoint.Position) error {
	if cur, err := s.GetLease(ctx, l.ShardKey); err == nil && p.Validate() == nil && p.Compare(cur.Checkpoint) < 0 {
		return fmt.Errorf("%w: mutant", checkpoint.ErrPositionBehind)
	}
	return s.Store.Checkpoint(ctx, l, p)
}

// sequenceAsString refuses positions that are behind as strings.
// checkpointReadThenWrite compares with the stored position, then writes in a second step. It
// keeps positions beside the wrapped store, which would refuse to move one back.
type checkpointReadThenWrite struct {
	checkpoint.Store
	mu  sync.Mutex
	pos map[checkpoint.ShardKey]checkpoint.Position
}

func (s *checkpointReadThenWrite) Checkpoint(ctx context.Context, l checkpoint.Lease, p checkpoint.Position) error {
	if cur, err := s.Store.GetLease(ctx, l.ShardKey); err != nil || l.Owner == "" || cur.Owner != l.Owner || cur.Token != l.Token {
		return fmt.Errorf("%w: mutant", checkpoint.ErrLeaseLost)
	}
	s.mu.Lock()
	cur := s.pos[l.ShardKey]
	s.mu.Unlock()
	if p.Compare(cur) < 0 {
		return fmt.Errorf("%w: mutant", checkpoint.ErrPositionBehind)
	}
	time.Sleep(time.Millisecond)
	s.mu.Lock()
	s.pos[l.ShardKey] = p
	s.mu.Unlock()
	return nil
}

func (s *checkpointReadThenWrite) GetLease(ctx context.Context, k checkpoint.ShardKey) (checkpoint.Lease, error) {
	l, err := s.Store.GetLease(ctx, k)
	s.mu.Lock()
	if p, ok := s.pos[k]; ok {
		l.Checkpoint = p
	}
	s.mu.Unlock()
	return l, err
}

type sequenceAsString struct{ checkpoint.Store }

func (s sequenceAsString) Checkpoint(ctx context.Context, l checkpoint.Lease, p checkpoint.Position) error {
	if cur, err := s.GetLease(ctx, l.ShardKey); err == nil && !p.ShardEnd && !cur.Checkpoint.ShardEnd && p.SequenceNumber < cur.Checkpoint.SequenceNumber {
		return fmt.Errorf("%w: mutant", checkpoint.ErrPositionBehind)
	}
	return s.Store.Checkpoint(ctx, l, p)
}

// shardEndOverwritable accepts (and drops) positions after a shard end.
type shardEndOverwritable struct{ checkpoint.Store }

func (s shardEndOverwritable) Checkpoint(ctx context.Context, l checkpoint.Lease, p checkpoint.Position) error {
	err := s.Store.Checkpoint(ctx, l, p)
	if errors.Is(err, checkpoint.ErrPositionBehind) && !p.ShardEnd {
		return nil
	}
	return err
}

// releaseForgetsPosition shows no checkpoint on a free lease.
type releaseForgetsPosition struct{ checkpoint.Store }

func (s releaseForgetsPosition) GetLease(ctx context.Context, k checkpoint.ShardKey) (checkpoint.Lease, error) {
	l, err := s.Store.GetLease(ctx, k)
	if !l.Held() {
		l.Checkpoint = checkpoint.Position{}
	}
	return l, err
}

type releaseIgnoresFinal struct{ checkpoint.Store }

func (s releaseIgnoresFinal) ReleaseLease(ctx context.Context, l checkpoint.Lease, _ checkpoint.Position) error {
	return s.Store.ReleaseLease(ctx, l, checkpoint.Position{})
}

// releaseDespiteBehind releases even when the final position is refused.
type releaseDespiteBehind struct{ checkpoint.Store }

func (s releaseDespiteBehind) ReleaseLease(ctx context.Context, l checkpoint.Lease, p checkpoint.Position) error {
	err := s.Store.ReleaseLease(ctx, l, p)
	if errors.Is(err, checkpoint.ErrPositionBehind) {
		return s.Store.ReleaseLease(ctx, l, checkpoint.Position{})
	}
	return err
}

// handoffIgnoresCondition asks whoever holds the row, at whatever counter.
type handoffIgnoresCondition struct{ checkpoint.Store }

func (s handoffIgnoresCondition) RequestHandoff(ctx context.Context, k checkpoint.ShardKey, _, claimant string, _ int64) error {
	cur, err := s.GetLease(ctx, k)
	if err != nil {
		return fmt.Errorf("%w: %w", checkpoint.ErrConflict, err)
	}
	if cur.Owner == "" {
		return nil // "succeeds" on a free lease
	}
	return s.Store.RequestHandoff(ctx, k, cur.Owner, claimant, cur.Counter)
}

// takeKeepsPendingOwner puts the pending owner back after a take.
type takeKeepsPendingOwner struct{ checkpoint.Store }

func (s takeKeepsPendingOwner) TakeLease(ctx context.Context, k checkpoint.ShardKey, w string, c int64) (checkpoint.Lease, error) {
	old, _ := s.GetLease(ctx, k)
	l, err := s.Store.TakeLease(ctx, k, w, c)
	if err == nil && old.PendingOwner != "" {
		if s.Store.RequestHandoff(ctx, k, w, old.PendingOwner, l.Counter) == nil {
			l.PendingOwner = old.PendingOwner
			l.Counter++
		}
	}
	return l, err
}

type deleteIgnoresCounter struct{ checkpoint.Store }

func (s deleteIgnoresCounter) DeleteLease(ctx context.Context, k checkpoint.ShardKey, c int64) error {
	if cur, err := s.GetLease(ctx, k); err == nil {
		c = cur.Counter
	}
	return s.Store.DeleteLease(ctx, k, c)
}

type missingIsZeroLease struct{ checkpoint.Store }

func (s missingIsZeroLease) GetLease(ctx context.Context, k checkpoint.ShardKey) (checkpoint.Lease, error) {
	l, err := s.Store.GetLease(ctx, k)
	if errors.Is(err, checkpoint.ErrNotFound) {
		return checkpoint.Lease{ShardKey: k}, nil
	}
	return l, err
}

type listFirstPageOnly struct{ checkpoint.Store }

func (s listFirstPageOnly) ListLeases(ctx context.Context, g, st string) ([]checkpoint.Lease, error) {
	ls, err := s.Store.ListLeases(ctx, g, st)
	return ls[:min(len(ls), 100)], err
}

func (s listFirstPageOnly) ListWorkers(ctx context.Context, g, st string) ([]checkpoint.Worker, error) {
	ws, err := s.Store.ListWorkers(ctx, g, st)
	return ws[:min(len(ws), 100)], err
}

// joinedKeys stores (group, stream) as one name "group:stream", the way a key built by
// concatenation would, and splits it back at the first ":".
type joinedKeys struct{ checkpoint.Store }

func (joinedKeys) in(g, s string) (string, string) { return g + ":" + s, "-" }

func (joinedKeys) out(g string) (string, string) {
	g, s, _ := strings.Cut(g, ":")
	return g, s
}

func (j joinedKeys) key(k checkpoint.ShardKey) checkpoint.ShardKey {
	k.Group, k.Stream = j.in(k.Group, k.Stream)
	return k
}

func (j joinedKeys) lease(l checkpoint.Lease, err error) (checkpoint.Lease, error) {
	l.Group, l.Stream = j.out(l.Group)
	return l, err
}

func (j joinedKeys) handle(l checkpoint.Lease) checkpoint.Lease {
	l.ShardKey = j.key(l.ShardKey)
	return l
}

func (j joinedKeys) GetLease(ctx context.Context, k checkpoint.ShardKey) (checkpoint.Lease, error) {
	return j.lease(j.Store.GetLease(ctx, j.key(k)))
}

func (j joinedKeys) ListLeases(ctx context.Context, g, s string) ([]checkpoint.Lease, error) {
	ls, err := j.Store.ListLeases(ctx, g+":"+s, "-")
	for i := range ls {
		ls[i], _ = j.lease(ls[i], nil)
	}
	return ls, err
}

func (j joinedKeys) TakeLease(ctx context.Context, k checkpoint.ShardKey, w string, c int64) (checkpoint.Lease, error) {
	return j.lease(j.Store.TakeLease(ctx, j.key(k), w, c))
}

func (j joinedKeys) RenewLease(ctx context.Context, l checkpoint.Lease) (checkpoint.Lease, error) {
	return j.lease(j.Store.RenewLease(ctx, j.handle(l)))
}

func (j joinedKeys) Checkpoint(ctx context.Context, l checkpoint.Lease, p checkpoint.Position) error {
	return j.Store.Checkpoint(ctx, j.handle(l), p)
}

func (j joinedKeys) ReleaseLease(ctx context.Context, l checkpoint.Lease, p checkpoint.Position) error {
	return j.Store.ReleaseLease(ctx, j.handle(l), p)
}

func (j joinedKeys) RequestHandoff(ctx context.Context, k checkpoint.ShardKey, o, c string, n int64) error {
	return j.Store.RequestHandoff(ctx, j.key(k), o, c, n)
}

func (j joinedKeys) DeleteLease(ctx context.Context, k checkpoint.ShardKey, n int64) error {
	return j.Store.DeleteLease(ctx, j.key(k), n)
}

// shardOnlyKeys keys rows by shard ID alone.
type shardOnlyKeys struct{ checkpoint.Store }

func (shardOnlyKeys) key(k checkpoint.ShardKey) checkpoint.ShardKey {
	return checkpoint.ShardKey{Group: "all", Stream: "all", Shard: k.Shard}
}

func (s shardOnlyKeys) lease(k checkpoint.ShardKey, l checkpoint.Lease, err error) (checkpoint.Lease, error) {
	l.Group, l.Stream = k.Group, k.Stream
	return l, err
}

func (s shardOnlyKeys) handle(l checkpoint.Lease) checkpoint.Lease {
	l.ShardKey = s.key(l.ShardKey)
	return l
}

func (s shardOnlyKeys) GetLease(ctx context.Context, k checkpoint.ShardKey) (checkpoint.Lease, error) {
	l, err := s.Store.GetLease(ctx, s.key(k))
	return s.lease(k, l, err)
}

func (s shardOnlyKeys) TakeLease(ctx context.Context, k checkpoint.ShardKey, w string, c int64) (checkpoint.Lease, error) {
	l, err := s.Store.TakeLease(ctx, s.key(k), w, c)
	return s.lease(k, l, err)
}

func (s shardOnlyKeys) RenewLease(ctx context.Context, l checkpoint.Lease) (checkpoint.Lease, error) {
	n, err := s.Store.RenewLease(ctx, s.handle(l))
	return s.lease(l.ShardKey, n, err)
}

func (s shardOnlyKeys) Checkpoint(ctx context.Context, l checkpoint.Lease, p checkpoint.Position) error {
	return s.Store.Checkpoint(ctx, s.handle(l), p)
}

func (s shardOnlyKeys) ReleaseLease(ctx context.Context, l checkpoint.Lease, p checkpoint.Position) error {
	return s.Store.ReleaseLease(ctx, s.handle(l), p)
}

// row returns the stored row of w's worker ID, or a row with counter 0 and no instance.
func row(ctx context.Context, s checkpoint.Store, w checkpoint.Worker) (checkpoint.Worker, error) {
	ws, err := s.ListWorkers(ctx, w.Group, w.Stream)
	if err != nil {
		return checkpoint.Worker{}, err
	}
	for _, x := range ws {
		if x.ID == w.ID {
			return x, nil
		}
	}
	return checkpoint.Worker{Group: w.Group, Stream: w.Stream, ID: w.ID}, nil
}

// heartbeatKeepsCounter creates a missing row and otherwise changes nothing.
type heartbeatKeepsCounter struct{ checkpoint.Store }

func (s heartbeatKeepsCounter) Heartbeat(ctx context.Context, w checkpoint.Worker) (checkpoint.Worker, error) {
	if err := checkpoint.ValidateHeartbeat(w); err != nil {
		return checkpoint.Worker{}, err
	}
	cur, err := row(ctx, s.Store, w)
	if err != nil || cur.Counter > 0 {
		return cur, err
	}
	return s.Store.Heartbeat(ctx, w)
}

// heartbeatReturnsNew returns the row it wrote instead of the one before.
type heartbeatReturnsNew struct{ checkpoint.Store }

func (s heartbeatReturnsNew) Heartbeat(ctx context.Context, w checkpoint.Worker) (checkpoint.Worker, error) {
	prev, err := s.Store.Heartbeat(ctx, w)
	if err != nil {
		return prev, err
	}
	prev.Instance = w.Instance
	prev.Counter++
	return prev, nil
}

// heartbeatReturnsOwnInstance returns the previous counter with the instance it was given.
type heartbeatReturnsOwnInstance struct{ checkpoint.Store }

func (s heartbeatReturnsOwnInstance) Heartbeat(ctx context.Context, w checkpoint.Worker) (checkpoint.Worker, error) {
	prev, err := s.Store.Heartbeat(ctx, w)
	if err == nil && prev.Counter > 0 {
		prev.Instance = w.Instance
	}
	return prev, err
}

// heartbeatIgnoresInstance stores no instance: every row reads instance "".
type heartbeatIgnoresInstance struct{ checkpoint.Store }

func (s heartbeatIgnoresInstance) Heartbeat(ctx context.Context, w checkpoint.Worker) (checkpoint.Worker, error) {
	if err := checkpoint.ValidateHeartbeat(w); err != nil {
		return checkpoint.Worker{}, err
	}
	w.Instance = "-"
	prev, err := s.Store.Heartbeat(ctx, w)
	prev.Instance = ""
	return prev, err
}

func (s heartbeatIgnoresInstance) ListWorkers(ctx context.Context, g, st string) ([]checkpoint.Worker, error) {
	ws, err := s.Store.ListWorkers(ctx, g, st)
	for i := range ws {
		ws[i].Instance = ""
	}
	return ws, err
}

// heartbeatKeepsFirstInstance sets the instance only when it creates the row, the way
// SET if_not_exists(instance, :i) or HSETNX would.
type heartbeatKeepsFirstInstance struct{ checkpoint.Store }

func (s heartbeatKeepsFirstInstance) Heartbeat(ctx context.Context, w checkpoint.Worker) (checkpoint.Worker, error) {
	if err := checkpoint.ValidateHeartbeat(w); err != nil {
		return checkpoint.Worker{}, err
	}
	if cur, err := row(ctx, s.Store, w); err == nil && cur.Instance != "" {
		w.Instance = cur.Instance
	}
	return s.Store.Heartbeat(ctx, w)
}

// heartbeatReadThenWrite reads the row, then writes it in a second step.
type heartbeatReadThenWrite struct{ checkpoint.Store }

func (s heartbeatReadThenWrite) Heartbeat(ctx context.Context, w checkpoint.Worker) (checkpoint.Worker, error) {
	if err := checkpoint.ValidateHeartbeat(w); err != nil {
		return checkpoint.Worker{}, err
	}
	prev, err := row(ctx, s.Store, w)
	if err != nil {
		return prev, err
	}
	time.Sleep(time.Millisecond) // the other racers read the same row meanwhile
	_, err = s.Store.Heartbeat(ctx, w)
	return prev, err
}

// listWorkersDropsInstance lists every worker without its instance.
type listWorkersDropsInstance struct{ checkpoint.Store }

func (s listWorkersDropsInstance) ListWorkers(ctx context.Context, g, st string) ([]checkpoint.Worker, error) {
	ws, err := s.Store.ListWorkers(ctx, g, st)
	for i := range ws {
		ws[i].Instance = ""
	}
	return ws, err
}

// acceptsEmptyInstance heartbeats with an empty instance as if it were "-".
type acceptsEmptyInstance struct{ checkpoint.Store }

func (s acceptsEmptyInstance) Heartbeat(ctx context.Context, w checkpoint.Worker) (checkpoint.Worker, error) {
	if w.Instance == "" {
		w.Instance = "-"
	}
	return s.Store.Heartbeat(ctx, w)
}

type removeIgnoresCounter struct{ checkpoint.Store }

func (s removeIgnoresCounter) RemoveWorker(ctx context.Context, w checkpoint.Worker) error {
	ws, _ := s.ListWorkers(ctx, w.Group, w.Stream)
	for _, x := range ws {
		if x.ID == w.ID {
			w.Counter = x.Counter
		}
	}
	return s.Store.RemoveWorker(ctx, w)
}

// acceptsEmptyNames stores an empty shard ID as "-".
type acceptsEmptyNames struct{ checkpoint.Store }

func (s acceptsEmptyNames) GetLease(ctx context.Context, k checkpoint.ShardKey) (checkpoint.Lease, error) {
	if k.Shard == "" {
		k.Shard = "-"
	}
	return s.Store.GetLease(ctx, k)
}

// acceptsBadPositions drops invalid positions silently.
type acceptsBadPositions struct{ checkpoint.Store }

func (s acceptsBadPositions) Checkpoint(ctx context.Context, l checkpoint.Lease, p checkpoint.Position) error {
	if p.Validate() != nil {
		return nil
	}
	return s.Store.Checkpoint(ctx, l, p)
}

// ignoresContext goes on with a context that never ends.
type ignoresContext struct{ checkpoint.Store }

func (s ignoresContext) Checkpoint(_ context.Context, l checkpoint.Lease, p checkpoint.Position) error {
	return s.Store.Checkpoint(context.Background(), l, p)
}
