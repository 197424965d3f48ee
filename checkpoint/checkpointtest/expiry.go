package checkpointtest

import (
	"time"

	"github.com/shardline/kinesis/checkpoint"
)

// leaseDuration is the lease duration of the suite's observers; only the fake clock sees it.
const leaseDuration = 10 * time.Second

func expiryCases() []testCase {
	return []testCase{
		{"RenewalsKeepLive", expiryRenewalsKeepLive},
		{"CheckpointsDoNotKeepLive", expiryCheckpointsDoNotKeepLive},
		{"RenewalBeatsTake", expiryRenewalBeatsTake},
		{"Workers", expiryWorkers},
	}
}

// observer is another worker judging a lease by its counter, the way the consumer does.
type observer struct {
	e     *env
	clock *fakeClock
	live  *checkpoint.Liveness
}

func (e *env) observer() *observer {
	c := newFakeClock()
	return &observer{e: e, clock: c, live: checkpoint.NewLiveness(leaseDuration, c.Now)}
}

// look reads key's row and reports it with whether the observer judges it expired.
func (o *observer) look(key checkpoint.ShardKey) (checkpoint.Lease, bool) {
	o.e.t.Helper()
	l := o.e.get(key)
	return l, o.live.Observe(keyString(key), l.Counter)
}

// expiryRenewalsKeepLive guards against renewals that do not move the counter (observers would
// steal from a healthy owner every lease duration) and checks that a lease whose owner stopped
// renewing becomes takeable with the counter the observer read.
func expiryRenewalsKeepLive(e *env) {
	o := e.observer()
	a := e.takeFresh("shard-0", "A")
	if _, expired := o.look(a.ShardKey); expired {
		e.t.Fatal("a lease seen for the first time is judged expired")
	}
	for i := range 5 { // 5 × 0.75 durations: longer than a duration in all
		o.clock.Advance(leaseDuration * 3 / 4)
		a = e.renew(a)
		if _, expired := o.look(a.ShardKey); expired {
			e.t.Fatalf("lease judged expired after renewal %d", i+1)
		}
	}
	o.clock.Advance(leaseDuration - time.Nanosecond)
	if _, expired := o.look(a.ShardKey); expired {
		e.t.Fatal("lease judged expired before a full duration without renewal")
	}
	o.clock.Advance(time.Nanosecond)
	l, expired := o.look(a.ShardKey)
	if !expired {
		e.t.Fatal("lease not judged expired after a full duration without renewal")
	}
	b := e.take(a.ShardKey, "B", l.Counter)
	e.wantFenced(a, "the handle of an owner whose lease expired and was taken")
	e.renew(b)
}

// expiryCheckpointsDoNotKeepLive guards against a checkpoint that moves the counter: an owner
// whose renewal loop died but whose handler still checkpoints would look alive, while the
// contract ties liveness to renewals alone.
func expiryCheckpointsDoNotKeepLive(e *env) {
	o := e.observer()
	a := e.takeFresh("shard-0", "A")
	o.look(a.ShardKey)
	for i := range 4 {
		o.clock.Advance(leaseDuration / 4)
		e.checkpoint(a, seq("10", int64(i)))
	}
	if _, expired := o.look(a.ShardKey); !expired {
		e.t.Error("checkpoints alone kept a lease live for a full duration")
	}
}

// expiryRenewalBeatsTake guards against a take that is not conditional on the counter the
// observer read: an owner that renews just after an observer judged its lease expired keeps
// it, and the late take fails.
func expiryRenewalBeatsTake(e *env) {
	o := e.observer()
	a := e.takeFresh("shard-0", "A")
	o.look(a.ShardKey)
	o.clock.Advance(leaseDuration)
	l, expired := o.look(a.ShardKey)
	if !expired {
		e.t.Fatal("lease not judged expired after a full duration without renewal")
	}
	a = e.renew(a) // the owner was only slow
	_, err := e.s.TakeLease(e.ctx, l.ShardKey, "B", l.Counter)
	wantErr(e.t, err, checkpoint.ErrConflict, "TakeLease with the counter read before the owner's renewal")
	e.wantRow(a.ShardKey, a, "the refused take")
	if _, expired := o.look(a.ShardKey); expired {
		e.t.Error("lease still judged expired after its counter moved")
	}
}

// expiryWorkers guards against heartbeats that do not move a worker's counter: its peers would
// count it dead and aim at too many leases each.
func expiryWorkers(e *env) {
	o := e.observer()
	look := func() map[string]bool {
		e.t.Helper()
		ws, err := e.s.ListWorkers(e.ctx, e.group, e.stream)
		if err != nil {
			e.t.Fatalf("ListWorkers: %v", err)
		}
		expired := map[string]bool{}
		for _, w := range ws {
			expired[w.ID] = o.live.Observe(w.ID, w.Counter)
		}
		return expired
	}
	for _, id := range []string{"A", "B"} {
		e.heartbeat(e.group, e.stream, id)
	}
	look()
	for range 3 {
		o.clock.Advance(leaseDuration / 2)
		e.heartbeat(e.group, e.stream, "A")
		look()
	}
	got := look()
	if len(got) != 2 || got["A"] || !got["B"] {
		e.t.Errorf("after A heartbeat every half duration and B stopped, expired = %v, want A live and B expired", got)
	}
	ws, err := e.s.ListWorkers(e.ctx, e.group, e.stream)
	if err != nil {
		e.t.Fatalf("ListWorkers: %v", err)
	}
	for _, w := range ws {
		if w.ID == "B" {
			if err := e.s.RemoveWorker(e.ctx, w); err != nil {
				e.t.Errorf("pruning the expired worker B: %v", err)
			}
		}
	}
	if got := look(); len(got) != 1 || got["A"] {
		e.t.Errorf("after pruning B, workers = %v, want A alone and live", got)
	}
}
