package consumer

import (
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/shardline/kinesis/checkpoint"
)

// Balancing is split in three: observe (lease.go reads the store, the worker registry and the
// shard list into a view), plan (this file: a pure function of the view, table-tested without
// a store), apply (lease.go makes the store calls the plan lists and starts readers).

// view is what one balancing run observed: everything plan depends on.
type view struct {
	self   string
	leases map[string]checkpoint.Lease // every lease row of the group and stream, by shard
	// expired holds the shards whose lease, held by another worker, this worker judges expired:
	// its counter stood still for a lease duration on this worker's clock.
	expired map[string]bool
	workers []string        // live workers of the group, this one included, sorted
	held    map[string]bool // shards this worker reads now
	topo    *topology
	// fresh: the topology comes from a listing made after the lease rows were read, so a row
	// whose shard it lacks belongs to a shard that left the stream's retention.
	fresh bool
	// absent holds rows already found missing from the last listing: they need no new one.
	absent    map[string]bool
	pending   map[string]time.Duration // handoffs this worker asked for, by shard: how long ago
	handedOff map[string]bool          // shards this worker released on request lately
	start     StartPosition
	maxLeases int
	maxSteals int
	lease     time.Duration // the lease duration
	stopping  bool          // the worker is shutting down: take nothing
	rand      *rand.Rand    // spreads workers that start together over different shards
	// nextExpiry is how long until the first lease held by another worker would expire if its
	// counter does not move; 0 for none. Not used by plan: the run schedules the next one by it.
	nextExpiry time.Duration
}

// plan is what a balancing run decided; apply carries it out in order: forget, takes, asks,
// prune.
type plan struct {
	ready  []string // shards to be read now, by this worker or another, sorted
	target int      // leases this worker aims at
	takes  []takeStep
	// spare are further free or expired leases, in order of preference: apply takes one for
	// each take another worker won first, so workers taking at once do not fall short.
	spare  []takeStep
	asks   []handoffAsk
	prune  []checkpoint.Lease // rows of finished shards that left retention
	forget []string           // handoff requests that are over
	// relist: the topology lacks a shard that a decision depends on (a parent named by a
	// child learnt from ChildShards, or a shard that has a lease row): list the shards again
	// before trusting it.
	relist bool
}

// takeStep is one lease to take, conditional on the row read.
type takeStep struct {
	shard string
	lease checkpoint.Lease // the row read; the zero Lease when there is none
	how   takeHow
}

// handoffAsk asks the owner of lease to hand it over. adopt: the row already names this worker
// as the pending owner (a request made before a restart); only remember it.
type handoffAsk struct {
	lease checkpoint.Lease
	adopt bool
}

// takeHow says why a lease is taken.
type takeHow int

const (
	takeFree       takeHow = iota // no owner
	takeExpired                   // its owner stopped renewing for a lease duration
	takeHandedOver                // its owner released it after this worker asked
	takeForced                    // its owner ignored a handoff request for a lease duration
	takeOwn                       // it names this worker's ID: an earlier run that crashed
)

var takeNames = [...]string{"free", "expired", "handed over", "forced", "own"}

// decide is the balancing policy. Each live worker aims at its share of the ready shards:
// floor(shards/workers), one more for the first shards%workers workers in ID order, so that
// workers taking at once agree on who takes the remainder (capped by WithMaxLeases). It takes
// what is free or expired first, shards that gate children (closed ones) before the rest;
// and, still short, asks the most loaded workers for handoffs, several at once, from any
// worker holding at least two more than it does (so 3/3/1 becomes 3/2/2 and then stays).
func decide(v *view) plan {
	var p plan
	lin := &lineage{topo: v.topo, leases: v.leases, start: v.start, memo: make(map[string]bool)}
	for id := range v.topo.shards {
		if lin.ready(id) {
			p.ready = append(p.ready, id)
		}
	}
	sort.Strings(p.ready)
	p.relist = lin.unknownParent
	for _, id := range sortedKeys(v.leases) {
		if _, known := v.topo.shards[id]; known {
			continue
		}
		l := v.leases[id]
		switch {
		case v.fresh && l.Checkpoint.ShardEnd && !l.Held():
			p.prune = append(p.prune, l)
		case !v.fresh && !v.absent[id]:
			p.relist = true // a shard created since the last listing
		}
	}

	p.target = v.share(v.self, len(p.ready))

	// Handoffs asked for earlier: take what the owner released, force what it ignored, forget
	// what is over.
	ready := make(map[string]bool, len(p.ready))
	for _, id := range p.ready {
		ready[id] = true
	}
	incoming := 0
	for _, id := range sortedKeys(v.pending) {
		l, ok := v.leases[id]
		age := v.pending[id]
		switch {
		case !ok || v.held[id] || !ready[id] || age > 2*v.lease ||
			(l.Held() && l.PendingOwner != v.self):
			p.forget = append(p.forget, id)
			continue
		case v.stopping:
		case !l.Held():
			p.takes = append(p.takes, takeStep{shard: id, lease: l, how: takeHandedOver})
		case age > v.lease:
			p.takes = append(p.takes, takeStep{shard: id, lease: l, how: takeForced})
		}
		incoming++
	}
	if v.stopping {
		return p
	}
	forgotten := make(map[string]bool, len(p.forget))
	for _, id := range p.forget {
		forgotten[id] = true
	}
	asked := func(id string) bool { _, ok := v.pending[id]; return ok && !forgotten[id] }

	// A request this worker made before a restart: remember it rather than ask again.
	for _, id := range p.ready {
		if l := v.leases[id]; l.Held() && l.PendingOwner == v.self && !asked(id) && !v.held[id] {
			p.asks = append(p.asks, handoffAsk{lease: l, adopt: true})
			incoming++
		}
	}
	need := p.target - len(v.held) - incoming
	if need <= 0 {
		return p
	}
	free := v.takeable(p.ready, asked)
	p.spare = free[min(need, len(free)):]
	free = free[:min(need, len(free))]
	p.takes = append(p.takes, free...)
	need -= len(free)
	if need > 0 && v.maxSteals > 0 {
		p.asks = append(p.asks, v.steal(p.ready, asked, len(v.held)+incoming+len(free), need)...)
	}
	return p
}

// takeable returns the free, expired or own leases among ready, closed shards first (they
// gate children), expired before free, in random order within each class.
func (v *view) takeable(ready []string, asked func(string) bool) []takeStep {
	type candidate struct {
		step  takeStep
		class int
	}
	var cands []candidate
	for _, id := range ready {
		if v.held[id] || asked(id) {
			continue
		}
		l, hasRow := v.leases[id]
		step := takeStep{shard: id, lease: l}
		switch {
		case !hasRow:
		case !l.Held():
			if v.handedOff[id] {
				continue // released on request: leave it to the claimant for a while
			}
		case l.Owner == v.self:
			step.how = takeOwn
		case v.expired[id]:
			step.how = takeExpired
		default:
			continue
		}
		class := 0
		if v.topo.shards[id].open {
			class = 2
		}
		if step.how == takeFree {
			class++
		}
		cands = append(cands, candidate{step, class})
	}
	if v.rand != nil {
		v.rand.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].class < cands[j].class })
	out := make([]takeStep, 0, len(cands))
	for _, c := range cands {
		out = append(out, c.step)
	}
	return out
}

// steal picks up to need (and maxSteals) leases to ask live workers for, always from the
// worker holding most, while it holds at least two more than this worker (mine, requests
// included) would.
func (v *view) steal(ready []string, asked func(string) bool, mine, need int) []handoffAsk {
	live := make(map[string]bool, len(v.workers))
	for _, w := range v.workers {
		live[w] = true
	}
	// What each live worker will hold once the handoffs already asked of it are done: leases
	// promised to a claimant (PendingOwner set) are leaving it, and are not asked for again.
	// A worker not seen live is left alone: its leases expire if it is gone.
	byOwner := make(map[string][]string)
	for _, id := range ready {
		l, ok := v.leases[id]
		if !ok || !l.Held() || l.Owner == v.self || !live[l.Owner] || v.expired[id] || asked(id) || l.PendingOwner != "" {
			continue
		}
		byOwner[l.Owner] = append(byOwner[l.Owner], id)
	}
	var asks []handoffAsk
	for len(asks) < min(need, v.maxSteals) {
		victim, most := "", 0
		for _, o := range sortedKeys(byOwner) {
			if n := len(byOwner[o]); n > most {
				victim, most = o, n
			}
		}
		if most < mine+2 {
			break
		}
		// A random lease of the victim's, so that workers joining together ask for different
		// ones (a second request for the same lease fails its condition and waits a run).
		shards := byOwner[victim]
		pick := v.order(len(shards))[0]
		asks = append(asks, handoffAsk{lease: v.leases[shards[pick]]})
		byOwner[victim] = slices.Delete(shards, pick, pick+1)
		mine++
	}
	return asks
}

// share returns worker's share of n ready shards: floor(n/workers), plus one for the first
// n%workers live workers in ID order, capped by WithMaxLeases.
func (v *view) share(worker string, n int) int {
	live := max(len(v.workers), 1)
	rank, found := slices.BinarySearch(v.workers, worker)
	if !found {
		rank = len(v.workers)
	}
	s := n / live
	if rank < n%live {
		s++
	}
	if v.maxLeases > 0 {
		s = min(s, v.maxLeases)
	}
	return s
}

// order returns 0..n-1, shuffled when the view has a random source.
func (v *view) order(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	if v.rand != nil {
		v.rand.Shuffle(n, func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
	}
	return idx
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// lineage answers, for one balancing run, which shards are finished, which are ready to read
// and where a ready shard without a checkpoint starts.
type lineage struct {
	topo   *topology
	leases map[string]checkpoint.Lease
	start  StartPosition
	memo   map[string]bool // skipped()
	// unknownParent: some shard waits for a parent the topology does not know.
	unknownParent bool
}

// skipped reports whether a closed shard will never be read by this group: under Latest, a
// shard that closed before the group ever read it, whose parents were skipped too.
func (l *lineage) skipped(id string) bool {
	if v, ok := l.memo[id]; ok {
		return v
	}
	l.memo[id] = false // cycles cannot happen in Kinesis lineage; this just bounds recursion
	s, ok := l.topo.shards[id]
	lease, hasRow := l.leases[id]
	v := ok && l.start == Latest && !s.open && (!hasRow || (lease.Checkpoint.IsZero() && !lease.Held()))
	if v {
		for _, p := range s.parents {
			if _, inTopo := l.topo.shards[p]; inTopo && !l.skipped(p) {
				v = false
			} else if row, has := l.leases[p]; !inTopo && has && !row.Checkpoint.IsZero() {
				v = false
			}
		}
	}
	l.memo[id] = v
	return v
}

// finished reports whether the group is done with shard id.
func (l *lineage) finished(id string) bool {
	if row, ok := l.leases[id]; ok && row.Checkpoint.ShardEnd {
		return true
	}
	return l.skipped(id)
}

// ready reports whether shard id should be read now: not finished, and every parent finished
// or gone from the stream's retention. A parent counts as gone only when a listing that holds
// the child lacks it; a child known from ChildShards alone waits for a listing.
func (l *lineage) ready(id string) bool {
	s, ok := l.topo.shards[id]
	if !ok || l.finished(id) {
		return false
	}
	for _, p := range s.parents {
		if _, inTopo := l.topo.shards[p]; inTopo {
			if !l.finished(p) {
				return false
			}
			continue
		}
		if !s.listed {
			l.unknownParent = true
			return false
		}
	}
	return true
}

// startFor returns where shard id starts when it has no checkpoint: from its beginning when
// the group read one of its parents (so nothing between parent and child is missed),
// otherwise the configured start position.
func (l *lineage) startFor(id string) StartPosition {
	if s, ok := l.topo.shards[id]; ok {
		for _, p := range s.parents {
			if row, has := l.leases[p]; has && !row.Checkpoint.IsZero() {
				return TrimHorizon
			}
		}
	}
	return l.start
}
