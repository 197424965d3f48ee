package shardmap

import (
	"crypto/md5"
	"errors"
	"fmt"
	"math/bits"
)

// Hash is a 128-bit Kinesis hash key: the MD5 of a partition key read as a big-endian
// unsigned integer, or an explicit hash key.
type Hash struct{ Hi, Lo uint64 }

// MaxHash is the largest hash key, 2¹²⁸−1.
var MaxHash = Hash{Hi: ^uint64(0), Lo: ^uint64(0)}

// HashKey returns the hash key Kinesis derives from partitionKey.
func HashKey(partitionKey string) Hash {
	// A stack buffer covers keys up to 256 bytes (the Kinesis limit) without an allocation.
	var buf [256]byte
	var sum [md5.Size]byte
	if len(partitionKey) <= len(buf) {
		sum = md5.Sum(buf[:copy(buf[:], partitionKey)])
	} else {
		sum = md5.Sum([]byte(partitionKey))
	}
	return hashOf(sum)
}

// HashKeyBytes is HashKey for a key held in a byte slice.
func HashKeyBytes(partitionKey []byte) Hash { return hashOf(md5.Sum(partitionKey)) }

func hashOf(sum [md5.Size]byte) Hash {
	var h Hash
	for i := 0; i < 8; i++ {
		h.Hi = h.Hi<<8 | uint64(sum[i])
		h.Lo = h.Lo<<8 | uint64(sum[8+i])
	}
	return h
}

// Compare returns -1, 0 or +1 as h is less than, equal to or greater than o.
func (h Hash) Compare(o Hash) int {
	switch {
	case h.Hi < o.Hi:
		return -1
	case h.Hi > o.Hi:
		return 1
	case h.Lo < o.Lo:
		return -1
	case h.Lo > o.Lo:
		return 1
	}
	return 0
}

const pow19 = 10_000_000_000_000_000_000 // 10¹⁹, the largest power of ten in a uint64

// String returns h in decimal, the form Kinesis uses for hash keys.
func (h Hash) String() string {
	var buf [40]byte
	return string(h.AppendDecimal(buf[:0]))
}

// AppendDecimal appends h in decimal to dst.
func (h Hash) AppendDecimal(dst []byte) []byte {
	// Split into base-10¹⁹ digits: h = (q1·10¹⁹ + r1)·10¹⁹ + r0 with q1 < 10¹.
	q1hi, rem := bits.Div64(0, h.Hi, pow19)
	q1lo, r0 := bits.Div64(rem, h.Lo, pow19) // (q1hi:q1lo) = h / 10¹⁹
	q2, r1 := bits.Div64(q1hi, q1lo, pow19)
	var tmp [40]byte
	i := len(tmp)
	put := func(v uint64, width int) {
		for n := 0; n < width || (width == 0 && v > 0); n++ {
			i--
			tmp[i] = byte('0' + v%10)
			v /= 10
		}
	}
	switch {
	case q2 > 0:
		put(r0, 19)
		put(r1, 19)
		put(q2, 0)
	case r1 > 0:
		put(r0, 19)
		put(r1, 0)
	case r0 > 0:
		put(r0, 0)
	default:
		i--
		tmp[i] = '0'
	}
	return append(dst, tmp[i:]...)
}

// ErrBadHash reports a hash key that is not a decimal integer in [0, 2¹²⁸).
var ErrBadHash = errors.New("shardmap: hash key is not a decimal integer in [0, 2^128)")

// ParseHash parses a decimal hash key, as found in ListShards' HashKeyRange or an explicit hash
// key.
func ParseHash(s string) (Hash, error) {
	if s == "" || len(s) > 39 {
		return Hash{}, fmt.Errorf("%w: %q", ErrBadHash, s)
	}
	var h Hash
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return Hash{}, fmt.Errorf("%w: %q", ErrBadHash, s)
		}
		// h = h·10 + digit, failing on overflow past 128 bits.
		hiHi, hiLo := bits.Mul64(h.Hi, 10)
		loHi, loLo := bits.Mul64(h.Lo, 10)
		sum, carry := bits.Add64(hiLo, loHi, 0)
		lo, carry2 := bits.Add64(loLo, uint64(c-'0'), 0)
		sum, carry3 := bits.Add64(sum, carry2, 0)
		if hiHi != 0 || carry != 0 || carry3 != 0 {
			return Hash{}, fmt.Errorf("%w: %q", ErrBadHash, s)
		}
		h = Hash{Hi: sum, Lo: lo}
	}
	return h, nil
}

// Range is an inclusive range of hash keys, as a shard owns.
type Range struct{ Start, End Hash }

// Contains reports whether h lies in r.
func (r Range) Contains(h Hash) bool { return r.Start.Compare(h) <= 0 && h.Compare(r.End) <= 0 }
