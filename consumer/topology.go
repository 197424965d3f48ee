package consumer

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/internal/shardmap"
)

// shardInfo is what the consumer knows of one shard.
type shardInfo struct {
	id      string
	parents []string // ParentShardId and AdjacentParentShardId, when set
	rng     shardmap.Range
	open    bool
}

// topology is the stream's shard lineage, from ListShards and from the ChildShards that
// GetRecords returns at a shard's end. Only the coordinator goroutine changes it.
type topology struct {
	shards map[string]*shardInfo
	listed bool // a full ListShards has been merged
}

func newTopology() *topology { return &topology{shards: make(map[string]*shardInfo)} }

// replace installs a full shard listing and returns how many reshards it reveals: groups of
// new shards sharing their parents (a split makes two children of one parent, a merge one
// child of two), counted only after the first listing.
func (t *topology) replace(list []types.Shard) (reshards int, err error) {
	next := make(map[string]*shardInfo, len(list))
	for _, s := range list {
		rng, err := shardmap.ShardRange(s)
		if err != nil {
			return 0, err
		}
		info := &shardInfo{id: aws.ToString(s.ShardId), rng: rng, open: shardmap.IsOpen(s)}
		for _, p := range []*string{s.ParentShardId, s.AdjacentParentShardId} {
			if aws.ToString(p) != "" {
				info.parents = append(info.parents, *p)
			}
		}
		next[info.id] = info
	}
	if t.listed {
		reshards = countReshards(t.shards, next)
	}
	t.shards, t.listed = next, true
	return reshards, nil
}

// addChildren merges the children a shard reported at its end, so they can start before the
// next full listing, and marks the parent closed. It returns the reshards it reveals.
func (t *topology) addChildren(parent string, children []types.ChildShard) (reshards int) {
	if p, ok := t.shards[parent]; ok {
		p.open = false
	}
	added := make(map[string]*shardInfo)
	for _, c := range children {
		id := aws.ToString(c.ShardId)
		if _, known := t.shards[id]; known || c.HashKeyRange == nil {
			continue
		}
		start, err1 := shardmap.ParseHash(aws.ToString(c.HashKeyRange.StartingHashKey))
		end, err2 := shardmap.ParseHash(aws.ToString(c.HashKeyRange.EndingHashKey))
		if err1 != nil || err2 != nil {
			continue
		}
		info := &shardInfo{id: id, parents: c.ParentShards, rng: shardmap.Range{Start: start, End: end}, open: true}
		t.shards[id], added[id] = info, info
	}
	return countReshards(nil, added)
}

func countReshards(old, next map[string]*shardInfo) int {
	events := make(map[[2]string]bool)
	for id, s := range next {
		if _, ok := old[id]; ok || len(s.parents) == 0 {
			continue
		}
		var key [2]string
		copy(key[:], s.parents)
		events[key] = true
	}
	return len(events)
}

// lineage answers, for one balancing run, which shards are finished, which are ready to read
// and where a ready shard without a checkpoint starts.
type lineage struct {
	topo   *topology
	leases map[string]checkpoint.Lease
	start  StartPosition
	memo   map[string]bool // skipped()
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
// or gone from the stream's retention (absent from the listing).
func (l *lineage) ready(id string) bool {
	s, ok := l.topo.shards[id]
	if !ok || l.finished(id) {
		return false
	}
	for _, p := range s.parents {
		if _, inTopo := l.topo.shards[p]; inTopo && !l.finished(p) {
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
