// Package hashkey maps partition keys and explicit hash keys to Kinesis shards the way the
// service does: the MD5 of the partition key read as a 128-bit big-endian integer, or the
// explicit hash key as a decimal, falls in exactly one open shard's hash-key range.
//
// It is written independently of the libraries under comparison so that it can judge where
// their records landed.
package hashkey

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"math/big"
)

// Hash is a 128-bit hash key.
type Hash struct{ Hi, Lo uint64 }

// Max is the largest hash key, 2^128-1.
var Max = Hash{Hi: ^uint64(0), Lo: ^uint64(0)}

// Less reports whether h < o.
func (h Hash) Less(o Hash) bool { return h.Hi < o.Hi || (h.Hi == o.Hi && h.Lo < o.Lo) }

// Big returns h as a big.Int.
func (h Hash) Big() *big.Int {
	b := new(big.Int).SetUint64(h.Hi)
	b.Lsh(b, 64)
	return b.Or(b, new(big.Int).SetUint64(h.Lo))
}

// String returns h in decimal, the form Kinesis uses for hash keys.
func (h Hash) String() string { return h.Big().String() }

// FromBig converts b, which must be in [0, 2^128-1].
func FromBig(b *big.Int) (Hash, error) {
	if b.Sign() < 0 || b.BitLen() > 128 {
		return Hash{}, fmt.Errorf("hashkey: %s is outside [0, 2^128-1]", b)
	}
	var buf [16]byte
	b.FillBytes(buf[:])
	return Hash{Hi: binary.BigEndian.Uint64(buf[:8]), Lo: binary.BigEndian.Uint64(buf[8:])}, nil
}

// Parse reads a decimal hash key (an explicit hash key or a range bound).
func Parse(s string) (Hash, error) {
	b, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return Hash{}, fmt.Errorf("hashkey: %q is not a decimal integer", s)
	}
	return FromBig(b)
}

// Of returns the hash key of a partition key: its MD5 as a big-endian integer.
func Of(partitionKey string) Hash {
	sum := md5.Sum([]byte(partitionKey))
	return Hash{Hi: binary.BigEndian.Uint64(sum[:8]), Lo: binary.BigEndian.Uint64(sum[8:])}
}

// Range is a shard's inclusive hash-key range.
type Range struct {
	ShardID    string
	Start, End Hash
}

// Contains reports whether h is in r.
func (r Range) Contains(h Hash) bool { return !h.Less(r.Start) && !r.End.Less(h) }

// Even splits the hash-key space into n ranges as CreateStream does: shard i starts at
// floor(i * 2^128 / n) and the last one ends at 2^128-1. Shard IDs are shardId-%012d.
func Even(n int) []Range {
	space := new(big.Int).Lsh(big.NewInt(1), 128)
	out := make([]Range, n)
	for i := range n {
		start := new(big.Int).Div(new(big.Int).Mul(space, big.NewInt(int64(i))), big.NewInt(int64(n)))
		end := new(big.Int).Div(new(big.Int).Mul(space, big.NewInt(int64(i+1))), big.NewInt(int64(n)))
		end.Sub(end, big.NewInt(1))
		s, _ := FromBig(start)
		e, _ := FromBig(end)
		out[i] = Range{ShardID: fmt.Sprintf("shardId-%012d", i), Start: s, End: e}
	}
	return out
}

// Find returns the index of the range that holds h, or -1.
func Find(ranges []Range, h Hash) int {
	for i := range ranges {
		if ranges[i].Contains(h) {
			return i
		}
	}
	return -1
}
