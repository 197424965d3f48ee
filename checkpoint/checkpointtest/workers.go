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
		{"ListMany", workerListMany},
		{"Remove", workerRemove},
	}
}

func (e *env) heartbeat(group, stream, id string) checkpoint.Worker {
	e.t.Helper()
	w, err := e.s.Heartbeat(e.ctx, group, stream, id)
	if err != nil {
		e.t.Fatalf("Heartbeat(%q, %q, %q): %v", group, stream, id, err)
	}
	if w.Group != group || w.Stream != stream || w.ID != id || w.Counter <= 0 {
		e.t.Fatalf("Heartbeat(%q, %q, %q) = %+v, want its own group, stream and ID and a positive counter", group, stream, id, w)
	}
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

// workerHeartbeat guards against a heartbeat that does not create the row, does not move the
// counter by one, or returns something other than what it stored.
func workerHeartbeat(e *env) {
	if ws := e.workers(e.group, e.stream); len(ws) != 0 {
		e.t.Fatalf("ListWorkers of a new group = %+v, want none", ws)
	}
	w := e.heartbeat(e.group, e.stream, "A")
	for range 3 {
		n := e.heartbeat(e.group, e.stream, "A")
		if n.Counter != w.Counter+1 {
			e.t.Errorf("Heartbeat after counter %d returned counter %d, want %d", w.Counter, n.Counter, w.Counter+1)
		}
		w = n
	}
	if ws := e.workers(e.group, e.stream); !slices.Equal(ws, []checkpoint.Worker{w}) {
		e.t.Errorf("ListWorkers = %+v, want [%+v]", ws, w)
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
