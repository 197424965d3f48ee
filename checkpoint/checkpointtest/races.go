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

// raceHeartbeats guards against a heartbeat that reads and then writes the counter: concurrent
// heartbeats (a worker's loop and its shutdown, or two processes started with one ID) would
// lose increments and hand out the same counter twice.
func raceHeartbeats(e *env) {
	first, err := e.s.Heartbeat(e.ctx, e.group, e.stream, "w1")
	if err != nil {
		e.t.Fatalf("Heartbeat: %v", err)
	}
	const perRacer = 5
	counters := make([]int64, racers*perRacer)
	errs := make([]error, racers*perRacer)
	race(racers, func(r int) {
		for i := range perRacer {
			var w checkpoint.Worker
			w, errs[r*perRacer+i] = e.s.Heartbeat(e.ctx, e.group, e.stream, "w1")
			counters[r*perRacer+i] = w.Counter
		}
	})
	seen := map[int64]bool{}
	for i, err := range errs {
		if err != nil {
			e.t.Errorf("concurrent Heartbeat: %v", err)
			continue
		}
		if seen[counters[i]] {
			e.t.Errorf("two concurrent heartbeats returned counter %d", counters[i])
		}
		seen[counters[i]] = true
	}
	want := first.Counter + racers*perRacer
	ws, err := e.s.ListWorkers(e.ctx, e.group, e.stream)
	if err != nil || len(ws) != 1 || ws[0].Counter != want {
		e.t.Errorf("after %d concurrent heartbeats, ListWorkers = %+v, %v; want one row at counter %d", racers*perRacer, ws, err, want)
	}
}
