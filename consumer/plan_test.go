package consumer

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/shardline/kinesis/checkpoint"
)

// Table tests of the balancing policy: decide is a pure function of what a run observed, so
// every interleaving that broke a fleet can be written down as a view.

const planLease = 4 * time.Second

// shards builds a topology from specs "id" (open, listed), "id<p1+p2" (parents), with the
// suffix "!" for closed and "?" for known only from ChildShards (not in a listing).
func shards(specs ...string) *topology {
	t := newTopology()
	t.listed = true
	for _, spec := range specs {
		s := &shardInfo{open: true, listed: true}
		if strings.HasSuffix(spec, "?") {
			spec, s.listed = strings.TrimSuffix(spec, "?"), false
		}
		if strings.HasSuffix(spec, "!") {
			spec, s.open = strings.TrimSuffix(spec, "!"), false
		}
		id, parents, ok := strings.Cut(spec, "<")
		s.id = id
		if ok {
			s.parents = strings.Split(parents, "+")
		}
		t.shards[id] = s
	}
	return t
}

// rows builds lease rows from specs "shard:owner" with optional suffixes "=end" (SHARD_END),
// "=cp" (a checkpoint), "~pending" (pending owner) and "#counter".
func rows(specs ...string) map[string]checkpoint.Lease {
	out := make(map[string]checkpoint.Lease)
	for _, spec := range specs {
		var l checkpoint.Lease
		if i := strings.Index(spec, "#"); i >= 0 {
			fmt.Sscan(spec[i+1:], &l.Counter)
			spec = spec[:i]
		}
		if i := strings.Index(spec, "~"); i >= 0 {
			l.PendingOwner, spec = spec[i+1:], spec[:i]
		}
		switch {
		case strings.HasSuffix(spec, "=end"):
			spec, l.Checkpoint = strings.TrimSuffix(spec, "=end"), checkpoint.Position{ShardEnd: true}
		case strings.HasSuffix(spec, "=cp"):
			spec, l.Checkpoint = strings.TrimSuffix(spec, "=cp"), checkpoint.Position{SequenceNumber: "42"}
		}
		shard, owner, _ := strings.Cut(spec, ":")
		l.ShardKey = checkpoint.ShardKey{Group: "g", Stream: "s", Shard: shard}
		l.Owner = owner
		out[shard] = l
	}
	return out
}

func set(ids ...string) map[string]bool {
	m := make(map[string]bool)
	for _, id := range ids {
		m[id] = true
	}
	return m
}

func newView(topo *topology, leases map[string]checkpoint.Lease) *view {
	return &view{
		self: "me", leases: leases, expired: map[string]bool{}, workers: []string{"me"}, held: map[string]bool{},
		topo: topo, absent: map[string]bool{}, pending: map[string]time.Duration{}, handedOff: map[string]bool{},
		start: TrimHorizon, maxSteals: 8, lease: planLease, rand: rand.New(rand.NewPCG(1, 2)),
	}
}

func takes(p plan) []string {
	var out []string
	for _, t := range p.takes {
		out = append(out, t.shard+"/"+takeNames[t.how])
	}
	return out
}

// asks returns how many handoffs p asks of each owner, as "n@owner".
func asks(p plan) []string {
	var out []string
	perOwner := map[string]int{}
	for _, a := range p.asks {
		perOwner[a.lease.Owner]++
	}
	for _, o := range sortedKeys(perOwner) {
		out = append(out, fmt.Sprintf("%d@%s", perOwner[o], o))
	}
	return out
}

func TestPlanLineage(t *testing.T) {
	tests := []struct {
		name       string
		view       func() *view
		wantReady  []string
		wantRelist bool
	}{
		{
			// Issue 14, failure 1: a worker that never listed since a split learns the merge
			// child 4 (parents 3 and 1) from shard 1's ChildShards. Shard 3 is unknown to it,
			// which does not mean shard 3 left retention: the child must wait for a listing.
			name: "a parent unknown to a stale topology holds the child back",
			view: func() *view {
				return newView(shards("0!", "1!", "4<3+1?"), rows("0:=end", "1:=end"))
			},
			wantReady: nil, wantRelist: true,
		},
		{
			name: "a parent absent from a listing that holds the child has left retention",
			view: func() *view {
				return newView(shards("1!", "4<3+1"), rows("1:=end"))
			},
			wantReady: []string{"4"},
		},
		{
			name: "an unfinished parent held by a dead worker holds the child back; the parent is ready",
			view: func() *view {
				return newView(shards("0!", "1!", "2<0", "3<0!", "4<3+1"), rows("0:=end", "1:=end", "2:w2", "3:dead=cp"))
			},
			wantReady: []string{"2", "3"},
		},
		{
			name: "a child learnt from ChildShards starts at once when its parents are known and finished",
			view: func() *view {
				return newView(shards("0!", "2<0?", "3<0?"), rows("0:=end"))
			},
			wantReady: []string{"2", "3"},
		},
		{
			name: "a finished shard is never ready again",
			view: func() *view {
				return newView(shards("0!", "2<0"), rows("0:=end", "2:"))
			},
			wantReady: []string{"2"},
		},
		{
			// Issue 14, failure 3: rows of shards a stale topology does not know were deleted as
			// "past retention", and the shards re-read from TRIM_HORIZON in a loop.
			name: "a lease row of a shard the topology lacks asks for a listing",
			view: func() *view {
				return newView(shards("0"), rows("0:me", "3:w2=end"))
			},
			wantReady: []string{"0"}, wantRelist: true,
		},
		{
			name: "a row the last listing already lacked asks for nothing",
			view: func() *view {
				v := newView(shards("0"), rows("0:me", "9:=cp"))
				v.absent["9"] = true
				return v
			},
			wantReady: []string{"0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.view()
			p := decide(v)
			if !slices.Equal(p.ready, tt.wantReady) {
				t.Errorf("ready = %v, want %v", p.ready, tt.wantReady)
			}
			if p.relist != tt.wantRelist {
				t.Errorf("relist = %v, want %v", p.relist, tt.wantRelist)
			}
		})
	}
}

func TestPlanPrune(t *testing.T) {
	leases := rows("0:=end", "1:w2=end", "2:=cp", "3:=end")
	// Guards against deleting rows on a stale topology (issue 14, failure 3).
	v := newView(shards("3!", "5<3"), leases)
	if p := decide(v); len(p.prune) != 0 {
		t.Errorf("without a fresh listing, prune = %v, want none", p.prune)
	}
	v.fresh = true
	var pruned []string
	for _, l := range decide(v).prune {
		pruned = append(pruned, l.Shard)
	}
	// 0: finished and gone; 1: held (its owner still writes it); 2: never finished; 3: listed.
	if !slices.Equal(pruned, []string{"0"}) {
		t.Errorf("prune = %v, want [0]", pruned)
	}
}

func TestPlanTakes(t *testing.T) {
	tests := []struct {
		name       string
		view       func() *view
		wantTarget int
		wantTakes  []string // in order; "?" entries match any shard of the class
		wantAsks   []string
	}{
		{
			name: "a lone worker takes every free shard",
			view: func() *view {
				return newView(shards("0", "1", "2"), rows())
			},
			wantTarget: 3, wantTakes: []string{"?/free", "?/free", "?/free"},
		},
		{
			// Issue 14, failure 2: parents first, and an expired lease before free ones.
			name: "closed shards first, then expired before free",
			view: func() *view {
				v := newView(shards("0!", "1", "2", "3<0"), rows("0:dead=cp", "1:dead"))
				v.expired = set("0", "1")
				v.workers = []string{"me", "zz"}
				return v
			},
			wantTarget: 2, wantTakes: []string{"0/expired", "1/expired"},
		},
		{
			name: "a lease naming this worker from an earlier run is taken at once",
			view: func() *view {
				return newView(shards("0"), rows("0:me"))
			},
			wantTarget: 1, wantTakes: []string{"0/own"},
		},
		{
			name: "a live worker's lease is not taken",
			view: func() *view {
				v := newView(shards("0", "1"), rows("0:w2", "1:w2"))
				v.workers, v.maxSteals = []string{"me", "w2"}, 0
				return v
			},
			wantTarget: 1,
		},
		{
			name: "a shard handed over lately is left to its claimant",
			view: func() *view {
				v := newView(shards("0", "1"), rows("0:", "1:"))
				v.handedOff = set("0")
				return v
			},
			wantTarget: 2, wantTakes: []string{"1/free"},
		},
		{
			name: "a worker shutting down takes nothing",
			view: func() *view {
				v := newView(shards("0", "1"), rows())
				v.stopping = true
				return v
			},
			wantTarget: 2,
		},
		{
			name: "WithMaxLeases caps the target",
			view: func() *view {
				v := newView(shards("0", "1", "2", "3"), rows())
				v.maxLeases = 1
				return v
			},
			wantTarget: 1, wantTakes: []string{"?/free"},
		},
		{
			name: "a released handoff is taken as handed over, an ignored one by force",
			view: func() *view {
				v := newView(shards("0", "1", "2", "3"), rows("0:", "1:w2~me", "2:w2", "3:w2"))
				v.workers = []string{"me", "w2"}
				v.pending = map[string]time.Duration{"0": time.Second, "1": planLease + time.Second}
				return v
			},
			wantTarget: 2, wantTakes: []string{"0/handed over", "1/forced"},
		},
		{
			name: "a handoff pending within the lease duration counts toward the target",
			view: func() *view {
				v := newView(shards("0", "1", "2", "3"), rows("0:w2~me", "1:w2", "2:w2", "3:w2"))
				v.workers = []string{"me", "w2"}
				v.pending = map[string]time.Duration{"0": time.Second}
				return v
			},
			wantTarget: 2, wantAsks: []string{"1@w2"},
		},
		{
			// Issue 14, failure 4: one handoff at a time took several lease durations.
			name: "a joiner asks for its whole share at once, from every worker above the target",
			view: func() *view {
				var ids, specs []string
				for i := range 32 {
					id := fmt.Sprintf("%02d", i)
					ids = append(ids, id)
					specs = append(specs, id+":"+[]string{"a", "b"}[i%2])
				}
				v := newView(shards(ids...), rows(specs...))
				v.workers, v.maxSteals = []string{"a", "b", "me"}, 64
				return v
			},
			// 32 over 3: shares 11, 11, 10 in ID order; a and b go from 16 to 11 each.
			wantTarget: 10,
			wantAsks:   []string{"5@a", "5@b"},
		},
		{
			name: "no steal when the shares are as even as they can be",
			view: func() *view {
				v := newView(shards("0", "1", "2", "3", "4"), rows("0:a", "1:a", "2:b", "3:b", "4:me"))
				v.workers, v.held = []string{"a", "b", "me"}, set("4")
				return v
			},
			wantTarget: 1,
		},
		{
			name: "a worker holding two more gives one, and then no more",
			view: func() *view {
				v := newView(shards("0", "1", "2", "3", "4", "5", "6"), rows("0:a", "1:a", "2:a", "3:b", "4:b", "5:b", "6:me"))
				v.workers, v.held = []string{"a", "b", "me"}, set("6")
				return v
			},
			wantTarget: 2, wantAsks: []string{"1@a"},
		},
		{
			// a holds four but two are promised to c: it counts as holding two.
			name: "a lease promised to another claimant is not asked for",
			view: func() *view {
				v := newView(shards("0", "1", "2", "3", "4", "5"), rows("0:a~c", "1:a~c", "2:a", "3:a", "4:c", "5:c"))
				v.workers = []string{"a", "c", "me"}
				return v
			},
			wantTarget: 2, wantAsks: []string{"1@a"},
		},
		{
			name: "an expired lease is not stolen but taken",
			view: func() *view {
				v := newView(shards("0", "1"), rows("0:a", "1:a"))
				v.workers, v.expired = []string{"a", "me"}, set("0", "1")
				return v
			},
			wantTarget: 1, wantTakes: []string{"?/expired"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := decide(tt.view())
			if p.target != tt.wantTarget {
				t.Errorf("target = %d, want %d", p.target, tt.wantTarget)
			}
			got := takes(p)
			match := len(got) == len(tt.wantTakes)
			for i := 0; match && i < len(got); i++ {
				w := tt.wantTakes[i]
				if strings.HasPrefix(w, "?/") {
					match = strings.HasSuffix(got[i], w[1:])
				} else {
					match = got[i] == w
				}
			}
			if !match {
				t.Errorf("takes = %v, want %v", got, tt.wantTakes)
			}
			if got := asks(p); !slices.Equal(got, tt.wantAsks) {
				t.Errorf("asks = %v, want %v", got, tt.wantAsks)
			}
		})
	}
}

// Guards against forgetting a handoff too early (the claimant then takes the released lease as
// a free one and the steal goes uncounted) or never (a dead request blocks the target).
func TestPlanForgetsHandoffs(t *testing.T) {
	v := newView(shards("0", "1", "2", "3"), rows("0:c", "1:w2~me", "3:w2~me"))
	v.workers = []string{"me", "w2"}
	v.pending = map[string]time.Duration{
		"0": time.Second,      // another worker holds it and no request of ours is pending
		"1": time.Second,      // still pending: keep
		"2": time.Second,      // row gone
		"3": 3 * planLease,    // unanswered for too long
		"9": time.Millisecond, // not a shard any more
	}
	got := decide(v).forget
	sort.Strings(got)
	if want := []string{"0", "2", "3", "9"}; !slices.Equal(got, want) {
		t.Errorf("forget = %v, want %v", got, want)
	}
}
