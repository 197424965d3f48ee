package checkpointtest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/shardline/kinesis/checkpoint"
)

func workerCases() []testCase {
	return []testCase{
		{"Heartbeat", workerHeartbeat},
		{"Instances", workerInstances},
		{"ListMany", workerListMany},
		{"Remove", workerRemove},
	}
}

// instance returns a worker instance value of the form the consumer writes: 16 hex digits of
// a start time, "-", random hex. n picks the start time, so instance(1) and instance(2) are
// two runs of one worker.
func instance(n int) string {
	return fmt.Sprintf("%016x-%s", int64(1735689600000000000)+int64(n), randomHex(8))
}

// heartbeat makes a heartbeat of worker id with an instance of its own and returns the row it
// must have written.
func (e *env) heartbeat(group, stream, id string) checkpoint.Worker {
	e.t.Helper()
	return e.heartbeatAs(group, stream, id, "instance-of-"+id)
}

// heartbeatAs makes a heartbeat of worker id as inst, checks that the previous row it returns
// is a row of that worker, and returns the row the heartbeat must have written: the previous
// one with inst and the counter moved by one.
func (e *env) heartbeatAs(group, stream, id, inst string) checkpoint.Worker {
	e.t.Helper()
	w := checkpoint.Worker{Group: group, Stream: stream, ID: id, Instance: inst}
	prev, err := e.s.Heartbeat(e.ctx, w)
	if err != nil {
		e.t.Fatalf("Heartbeat(%s): %v", workerString(w), err)
	}
	if prev.Group != group || prev.Stream != stream || prev.ID != id || prev.Counter < 0 {
		e.t.Fatalf("Heartbeat(%s) = %s, want the previous row of the same group, stream and ID", workerString(w), workerString(prev))
	}
	w.Counter = prev.Counter + 1
	return w
}

func (e *env) workers(group, stream string) []checkpoint.Worker {
	e.t.Helper()
	ws, err := e.s.ListWorkers(e.ctx, group, stream)
	if err != nil {
		e.t.Fatalf("ListWorkers(%q, %q): %v", group, stream, err)
	}
	slices.SortFunc(ws, func(a, b checkpoint.Worker) int { return strings.Compare(a.ID, b.ID) })
	return ws
}

func workerString(w checkpoint.Worker) string {
	return fmt.Sprintf("{group %q stream %q ID %q instance %q counter %d}", w.Group, w.Stream, w.ID, w.Instance, w.Counter)
}

// workerHeartbeat guards against a heartbeat that does not create the row, does not move the
// counter by one, or returns something other than the row as it was before: the row it wrote
// (a worker would take its own instance for another process's, or never see another's), or a
// made-up row for a worker that had none.
func workerHeartbeat(e *env) {
	if ws := e.workers(e.group, e.stream); len(ws) != 0 {
		e.t.Fatalf("ListWorkers of a new group = %+v, want none", ws)
	}
	inst := instance(1)
	first := checkpoint.Worker{Group: e.group, Stream: e.stream, ID: "A", Instance: inst}
	prev, err := e.s.Heartbeat(e.ctx, first)
	if err != nil {
		e.t.Fatalf("Heartbeat(%s): %v", workerString(first), err)
	}
	none := checkpoint.Worker{Group: e.group, Stream: e.stream, ID: "A"}
	if prev != none {
		e.t.Errorf("first Heartbeat of a worker returned %s, want %s: the row as it was, i.e. none, with counter 0 and no instance",
			workerString(prev), workerString(none))
	}
	w := first
	w.Counter = 1
	if ws := e.workers(e.group, e.stream); !slices.Equal(ws, []checkpoint.Worker{w}) {
		e.t.Errorf("after the first Heartbeat, ListWorkers = %+v, want [%s]", ws, workerString(w))
	}
	for range 3 {
		prev, err := e.s.Heartbeat(e.ctx, checkpoint.Worker{Group: e.group, Stream: e.stream, ID: "A", Instance: inst, Counter: 99})
		if err != nil {
			e.t.Fatalf("Heartbeat: %v", err)
		}
		if prev != w {
			e.t.Errorf("Heartbeat of a row at %s returned %s, want that row", workerString(w), workerString(prev))
		}
		w.Counter++
	}
	if ws := e.workers(e.group, e.stream); !slices.Equal(ws, []checkpoint.Worker{w}) {
		e.t.Errorf("after 4 heartbeats, ListWorkers = %+v, want [%s] (the Counter a heartbeat is given is ignored)", ws, workerString(w))
	}
}

// workerInstances guards against a store that loses the instance (never stores it, stores it
// only when it creates the row, drops it when listing), returns the instance it was just given
// instead of the stored one, or mixes up the rows of two workers: a second process started
// with a worker's ID would go unnoticed, or a worker would see a duplicate that is not there.
func workerInstances(e *env) {
	a1, a2, b := instance(1), instance(2), instance(3)
	e.heartbeatAs(e.group, e.stream, "A", a1)
	e.heartbeatAs(e.group, e.stream, "A", a1)
	wantB := e.heartbeatAs(e.group, e.stream, "B", b)
	steps := []struct{ inst, wantPrev string }{
		{a2, a1}, // a second process with ID A starts
		{a1, a2}, // the first one heartbeats again and finds the second's instance
		{a1, a1},
		{a2, a1},
	}
	var w checkpoint.Worker
	for i, step := range steps {
		in := checkpoint.Worker{Group: e.group, Stream: e.stream, ID: "A", Instance: step.inst}
		prev, err := e.s.Heartbeat(e.ctx, in)
		if err != nil {
			e.t.Fatalf("Heartbeat(%s): %v", workerString(in), err)
		}
		if prev.Instance != step.wantPrev || prev.Counter != int64(2+i) || prev.ID != "A" {
			e.t.Errorf("step %d: Heartbeat(%s) returned %s, want the previous row: instance %q, counter %d",
				i, workerString(in), workerString(prev), step.wantPrev, 2+i)
		}
		w = in
		w.Counter = int64(3 + i)
	}
	if got := e.workers(e.group, e.stream); !slices.Equal(got, []checkpoint.Worker{w, wantB}) {
		e.t.Errorf("ListWorkers = %+v, want [%s %s]: each row with the instance of its last heartbeat",
			got, workerString(w), workerString(wantB))
	}
}

// workerListMany guards against a listing that stops after one page or lists workers of
// another group or stream whose name shares a prefix: either would skew every worker's share.
func workerListMany(e *env) {
	want := make([]checkpoint.Worker, manyRows)
	for i := range want {
		want[i] = e.heartbeat(e.group, e.stream, fmt.Sprintf("worker-%04d", i))
	}
	e.heartbeat(e.group, e.stream+"-2", "worker-0000")
	e.heartbeat(e.group+"-2", e.stream, "worker-9999")
	if got := e.workers(e.group, e.stream); !slices.Equal(got, want) {
		e.t.Errorf("ListWorkers returned %d rows, want the %d heartbeats of this group and stream", len(got), len(want))
	}
}

// workerRemove guards against a removal that ignores the counter: an observer pruning a worker
// it judged dead would delete the row of a worker that heartbeat in between.
func workerRemove(e *env) {
	w := e.heartbeat(e.group, e.stream, "A")
	b := e.heartbeat(e.group, e.stream, "B")
	cur := e.heartbeat(e.group, e.stream, "A")
	err := e.s.RemoveWorker(e.ctx, w)
	wantErr(e.t, err, checkpoint.ErrConflict, fmt.Sprintf("RemoveWorker(counter %d) of a row at counter %d", w.Counter, cur.Counter))
	if got := e.workers(e.group, e.stream); !slices.Equal(got, []checkpoint.Worker{cur, b}) {
		e.t.Errorf("after a refused RemoveWorker, ListWorkers = %+v, want [%+v %+v]", got, cur, b)
	}
	if err := e.s.RemoveWorker(e.ctx, cur); err != nil {
		e.t.Fatalf("RemoveWorker(%+v): %v", cur, err)
	}
	if got := e.workers(e.group, e.stream); !slices.Equal(got, []checkpoint.Worker{b}) {
		e.t.Errorf("after RemoveWorker(A), ListWorkers = %+v, want [%+v]", got, b)
	}
	err = e.s.RemoveWorker(e.ctx, cur)
	wantErr(e.t, err, checkpoint.ErrConflict, "RemoveWorker of a missing row")
	if got := e.workers(e.group, e.stream); !slices.Equal(got, []checkpoint.Worker{b}) {
		e.t.Errorf("after RemoveWorker of a missing row, ListWorkers = %+v, want [%+v]", got, b)
	}
	e.heartbeat(e.group, e.stream, "A") // a worker that comes back registers again
	if got := e.workers(e.group, e.stream); len(got) != 2 {
		e.t.Errorf("after A came back, ListWorkers = %+v, want A and B", got)
	}
}
