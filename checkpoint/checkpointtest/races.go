package checkpointtest

import (
	"errors"
	"fmt"

	"github.com/shardline/kinesis/checkpoint"
)

// racers is how many workers race for one lease: enough that a store whose compare-and-set is
// a read followed by a write loses the race on most runs.
const racers = 16

func raceCases() []testCase {
	return []testCase{
		{"TakeFresh", raceTakeFresh},
		{"Steal", raceSteal},
		{"Heartbeats", raceHeartbeats},
	}
}

// raceTakeFresh guards against a take of a missing row that is not atomic (a read, then a
// create): several workers would own a new shard at once and process its records twice.
func raceTakeFresh(e *env) {
	key := e.key("shard-0")
	e.wantOneWinner(key, 0, nil)
}

// raceSteal guards against a steal whose counter condition is not atomic: of the workers that
// read the same row and try to steal it, exactly one may win.
func raceSteal(e *env) {
	a := e.takeFresh("shard-0", "owner")
	e.checkpoint(a, seq("77", 0))
	a.Checkpoint = seq("77", 0)
	e.wantOneWinner(a.ShardKey, a.Counter, &a)
}

// wantOneWinner races racers workers taking key with counter and fails unless exactly one
// wins, the others fail with ErrConflict, and the stored row is the winner's. When old is not
// nil, it is the handle of the previous owner, which must be fenced afterwards.
func (e *env) wantOneWinner(key checkpoint.ShardKey, counter int64, old *checkpoint.Lease) {
	e.t.Helper()
	leases := make([]checkpoint.Lease, racers)
	errs := make([]error, racers)
	race(racers, func(i int) {
		leases[i], errs[i] = e.s.TakeLease(e.ctx, key, fmt.Sprintf("racer-%02d", i), counter)
	})
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			e.t.Errorf("racer-%02d and racer-%02d both took %s with counter %d", winner, i, keyString(key), counter)
		case err == nil:
			winner = i
		case !errors.Is(err, checkpoint.ErrConflict):
			e.t.Errorf("racer-%02d: TakeLease(counter %d) = %v, want nil or an error matching ErrConflict", i, counter, err)
		}
	}
	if winner < 0 {
		e.t.Fatalf("none of %d racers took %s with counter %d", racers, keyString(key), counter)
	}
	w := leases[winner]
	e.wantRow(key, w, "the race")
	if w.Counter != counter+1 || w.Owner != fmt.Sprintf("racer-%02d", winner) {
		e.t.Errorf("winner's lease is %s, want owner racer-%02d and counter %d", leaseString(w), winner, counter+1)
	}
	if old != nil {
		if w.Checkpoint != old.Checkpoint {
			e.t.Errorf("the steal changed checkpoint %s to %s", posString(old.Checkpoint), posString(w.Checkpoint))
		}
		e.wantFenced(*old, "the handle of the owner that racers stole from")
	}
	e.checkpoint(w, seq("78", 0))
}

// raceHeartbeats guards against a heartbeat that reads and then writes the row: concurrent
// heartbeats (a worker's loop and its shutdown, or two processes started with one ID) would
// lose increments and hand out the same previous counter twice, or pair a counter with an
// instance that another heartbeat wrote, so a process could miss its twin or see one that is
// not there.
func raceHeartbeats(e *env) {
	first := e.heartbeatAs(e.group, e.stream, "w1", instance(0))
	const perRacer = 5
	n := racers * perRacer
	prevs := make([]checkpoint.Worker, n)
	errs := make([]error, n)
	inst := make([]string, racers)
	for r := range inst {
		inst[r] = instance(1 + r)
	}
	race(racers, func(r int) {
		for i := range perRacer {
			w := checkpoint.Worker{Group: e.group, Stream: e.stream, ID: "w1", Instance: inst[r]}
			prevs[r*perRacer+i], errs[r*perRacer+i] = e.s.Heartbeat(e.ctx, w)
		}
	})
	// wrote[c] is the instance of the heartbeat that found counter c, and so wrote c+1.
	wrote := map[int64]string{}
	for i, err := range errs {
		r := i / perRacer
		switch {
		case err != nil:
			e.t.Errorf("concurrent Heartbeat: %v", err)
			continue
		case i%perRacer > 0 && errs[i-1] == nil && prevs[i].Counter <= prevs[i-1].Counter:
			e.t.Errorf("racer %d: a heartbeat returned previous counter %d after one that returned %d; want it to increase",
				r, prevs[i].Counter, prevs[i-1].Counter)
		}
		c := prevs[i].Counter
		if c < first.Counter || c >= first.Counter+int64(n) {
			e.t.Errorf("a concurrent heartbeat returned previous counter %d, want one in [%d, %d]", c, first.Counter, first.Counter+int64(n)-1)
		}
		if _, dup := wrote[c]; dup {
			e.t.Errorf("two concurrent heartbeats returned previous counter %d", c)
		}
		wrote[c] = inst[r]
	}
	// Each heartbeat found the instance of the one that found the counter before its own.
	wrote[first.Counter-1] = first.Instance
	mismatches := 0
	for i, p := range prevs {
		want, ok := wrote[p.Counter-1]
		if errs[i] != nil || !ok || p.Instance == want {
			continue
		}
		if mismatches++; mismatches <= 3 {
			e.t.Errorf("a heartbeat returned previous counter %d with instance %q; the heartbeat that wrote counter %d wrote instance %q",
				p.Counter, p.Instance, p.Counter, want)
		}
	}
	if mismatches > 3 {
		e.t.Errorf("... and %d more heartbeats returned an instance that does not go with their counter", mismatches-3)
	}
	want := first.Counter + int64(n)
	ws, err := e.s.ListWorkers(e.ctx, e.group, e.stream)
	if err != nil || len(ws) != 1 || ws[0].Counter != want || wrote[want-1] == "" || ws[0].Instance != wrote[want-1] {
		e.t.Errorf("after %d concurrent heartbeats, ListWorkers = %+v, %v; want one row at counter %d with instance %q (of the last heartbeat)",
			n, ws, err, want, wrote[want-1])
	}
}
