package producer

import "github.com/shardline/kinesis/internal/shardmap"

// keyTable is what ordering needs to know about keys: which have records in flight, and which
// an entry looked at earlier in the shard being planned holds. A record's key is its 128-bit
// hash key (the MD5 of its partition key, or its explicit hash key), mixed down to one of
// keyBuckets buckets.
//
// Keys only ever need comparing within one shard: a key maps to one shard, and while records
// of a shard that left the shard map are queued or in flight nothing is sent at all. So a
// bucket in flight remembers which shard holds it, and only blocks keys of that shard (a
// bucket that two shards hold blocks both); the plan marks are made anew for each shard.
// Two keys of one shard that share a bucket are ordered as if they were one key: that costs a
// round trip of throughput, never order. It is rare for single records (with 1,000 keys of a
// shard in flight, one new key in 65 collides), and frequent between aggregates holding
// hundreds of distinct keys each, whose sets then serialize as if they overlapped (one such
// aggregate per round trip per shard, what ordering cost before keys were tracked).
//
// Arrays instead of maps keep the cost at a few memory operations per key and the memory
// fixed at 640 KiB, however many distinct keys a stream has. Only the dispatcher goroutine
// uses it.
type keyTable struct {
	busy  []int32  // entries in flight holding a key of the bucket
	owner []uint32 // the kid of the shard those entries belong to, or mixed
	seen  []uint16 // the shard scan that last looked at an entry holding a key of the bucket
	// scan is the current shard scan's number, always even: seen holds scan for an entry
	// held back, scan+1 for an entry chosen for the request. 0 is never used.
	scan uint16
}

// A bucket's kind of block in the current scan, from blocked.
const (
	free      = iota
	inFlight  // a key in flight, or an older entry held back in this scan
	candidate // an entry chosen for the request being planned
)

const (
	keyBits    = 16 // at most 16: aggregates keep their buckets as uint16
	keyBuckets = 1 << keyBits
	// mixed is the owner of a bucket whose keys in flight belong to more than one shard, and
	// the kid of an entry routed outside the shard map (a gap): its keys block every shard.
	mixed = ^uint32(0)
)

func newKeyTable() *keyTable {
	return &keyTable{
		busy:  make([]int32, keyBuckets),
		owner: make([]uint32, keyBuckets),
		seen:  make([]uint16, keyBuckets),
		scan:  2,
	}
}

// keyBucket mixes both halves of h into a bucket, so that explicit hash keys that differ only
// in their high bits (shard boundaries, say) do not all share one.
func keyBucket(h shardmap.Hash) uint32 {
	x := (h.Hi ^ h.Lo*0xC2B2AE3D27D4EB4F) * 0x9E3779B97F4A7C15
	return uint32(x >> (64 - keyBits))
}

// kid returns the owner id that e's keys are compared under.
func kid(e *entry) uint32 {
	if e.stray {
		return mixed
	}
	return e.shard.kid
}

// newScan starts the scan of one shard's queue: what earlier scans looked at no longer counts.
func (k *keyTable) newScan() {
	k.scan += 2
	if k.scan == 0 { // wrapped: forget every mark rather than mistake an old one for new
		clear(k.seen)
		k.scan = 2
	}
}

// list appends to dst the distinct buckets of rs: an aggregate's key set, kept with its entry
// so that planning walks a short array instead of every record. It uses the scan marks, so it
// must not be called while a plan is made (collect).
func (k *keyTable) list(rs []*Result, dst []uint16) []uint16 {
	k.newScan()
	for _, r := range rs {
		if b := keyBucket(r.hash); k.seen[b] != k.scan {
			k.seen[b] = k.scan
			dst = append(dst, uint16(b))
		}
	}
	return dst
}

// blocked reports whether a key of e shares a bucket with a key of its shard in flight or
// with an entry looked at earlier in this scan (older, or a candidate of the same request),
// and what the first such bucket it finds is held by: inFlight or candidate; free when none
// is.
func (k *keyTable) blocked(e *entry) int {
	id := kid(e)
	if e.recs == nil {
		return k.kind(keyBucket(e.hash), id)
	}
	for _, b := range e.keys {
		if kind := k.kind(uint32(b), id); kind != free {
			return kind
		}
	}
	return free
}

func (k *keyTable) kind(b, id uint32) int {
	switch {
	case k.seen[b] == k.scan+1:
		return candidate
	case k.seen[b] == k.scan:
		return inFlight
	case k.busy[b] > 0 && (k.owner[b] == id || k.owner[b] == mixed || id == mixed):
		return inFlight
	}
	return free
}

// look marks e's buckets as held by an entry of this scan, chosen for the request or not: no
// newer entry sharing one may join the request or overtake e.
func (k *keyTable) look(e *entry, chosen bool) {
	mark := k.scan
	if chosen {
		mark++
	}
	if e.recs == nil {
		k.seen[keyBucket(e.hash)] = mark
		return
	}
	for _, b := range e.keys {
		k.seen[b] = mark
	}
}

// anyBusy reports whether a record of rs, all of shard s, shares a bucket with a key of s in
// flight.
func (k *keyTable) anyBusy(s *shard, rs []*Result) bool {
	for _, r := range rs {
		if b := keyBucket(r.hash); k.busy[b] > 0 && (k.owner[b] == s.kid || k.owner[b] == mixed) {
			return true
		}
	}
	return false
}

// fly counts e's keys into flight (delta 1) or out of it (delta -1). Counting out, it
// reports whether a bucket that more than one shard held was among them: entries of any
// shard may have waited for it.
func (k *keyTable) fly(e *entry, delta int32) (mixedFreed bool) {
	id := kid(e)
	if e.recs == nil {
		return k.count(keyBucket(e.hash), id, delta)
	}
	for _, b := range e.keys {
		mixedFreed = k.count(uint32(b), id, delta) || mixedFreed
	}
	return mixedFreed
}

func (k *keyTable) count(b, id uint32, delta int32) (mixedFreed bool) {
	mixedFreed = delta < 0 && k.owner[b] == mixed
	switch n := k.busy[b]; {
	case delta > 0 && n == 0:
		k.owner[b] = id
	case delta > 0 && k.owner[b] != id:
		k.owner[b] = mixed
	case delta < 0 && n == 1:
		k.owner[b] = 0
	}
	k.busy[b] += delta
	return mixedFreed
}
