package consumer

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/kinesis/internal/shardmap"
)

// shardInfo is what the consumer knows of one shard.
type shardInfo struct {
	id      string
	parents []string // ParentShardId and AdjacentParentShardId, when set
	rng     shardmap.Range
	open    bool
	// listed: the shard was in the last full listing. A shard known only from the ChildShards
	// of a parent's last GetRecords is not, and a parent it names that the topology does not
	// know may be a shard created after the last listing rather than one past retention.
	listed bool
}

// topology is the stream's shard lineage, from ListShards and from the ChildShards that
// GetRecords returns at a shard's end. Only the coordinator goroutine changes it.
//
// What a listing leaves out matters as much as what it holds: a shard absent from a full
// listing has left the stream's retention. That conclusion is drawn only from a listing,
// never from a topology that is merely stale, because a worker that has not listed since a
// reshard does not know the new shards at all (issue 14: a child read before a parent the
// worker had never heard of, and finished shards' rows deleted as "past retention").
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
		info := &shardInfo{id: aws.ToString(s.ShardId), rng: rng, open: shardmap.IsOpen(s), listed: true}
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
	// A shard that ended since the listing was taken keeps its end: the listing may predate it.
	for id, s := range next {
		if old, ok := t.shards[id]; ok && !old.open {
			s.open = false
		}
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

// counts returns the open and closed shards known.
func (t *topology) counts() (open, closed int) {
	for _, s := range t.shards {
		if s.open {
			open++
		} else {
			closed++
		}
	}
	return open, closed
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
