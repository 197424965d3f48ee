package checkpoint

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
)

// Position is how far a consumer group has processed a shard: every user record up to and
// including (SequenceNumber, SubSequenceNumber) is done. The zero Position means nothing was
// processed yet.
type Position struct {
	// SequenceNumber is the Kinesis sequence number: a decimal integer of up to 129 digits.
	SequenceNumber string `json:"sequence_number,omitempty"`
	// SubSequenceNumber is the index of the user record inside an aggregated Kinesis record;
	// 0 for a plain record.
	SubSequenceNumber int64 `json:"sub_sequence_number,omitempty"`
	// ShardEnd marks a shard read to its end (the KCL's SHARD_END). It is after every other
	// position; SequenceNumber and SubSequenceNumber are ignored.
	ShardEnd bool `json:"shard_end,omitempty"`
}

// IsZero reports whether p is the zero Position (nothing processed).
func (p Position) IsZero() bool { return p == Position{} }

// String returns "SHARD_END", "" for the zero Position, or "sequence/subsequence".
func (p Position) String() string {
	switch {
	case p.ShardEnd:
		return "SHARD_END"
	case p.IsZero():
		return ""
	}
	return p.SequenceNumber + "/" + strconv.FormatInt(p.SubSequenceNumber, 10)
}

// Validate returns an error matching ErrInvalid unless p is the zero Position, a shard end, or
// a canonical decimal sequence number (no sign, no leading zero, at most 129 digits) with a
// non-negative sub-sequence number.
func (p Position) Validate() error {
	if p.ShardEnd || p.IsZero() {
		return nil
	}
	s := p.SequenceNumber
	if s == "" || len(s) > 129 || (len(s) > 1 && s[0] == '0') {
		return invalid("sequence number %q is not a canonical decimal", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return invalid("sequence number %q is not a canonical decimal", s)
		}
	}
	if p.SubSequenceNumber < 0 {
		return invalid("negative sub-sequence number %d", p.SubSequenceNumber)
	}
	return nil
}

// Compare returns -1, 0 or +1 as p is before, equal to or after q. Sequence numbers compare as
// integers, then sub-sequence numbers; the zero Position is first and ShardEnd last. Both must
// be valid (see Validate). The order is the byte order of [Position.OrderKey]; Compare does not
// allocate.
func (p Position) Compare(q Position) int {
	if c := cmp.Compare(p.rank(), q.rank()); c != 0 || p.rank() != rankSequence {
		return c
	}
	// Canonical decimals: the longer one is the larger; equal lengths compare digit by digit.
	if c := cmp.Compare(len(p.SequenceNumber), len(q.SequenceNumber)); c != 0 {
		return c
	}
	if c := strings.Compare(p.SequenceNumber, q.SequenceNumber); c != 0 {
		return c
	}
	return cmp.Compare(p.SubSequenceNumber, q.SubSequenceNumber)
}

const (
	rankZero = iota
	rankSequence
	rankShardEnd
)

// rank orders the three kinds of positions: nothing processed, a record, the shard's end.
func (p Position) rank() int {
	switch {
	case p.ShardEnd:
		return rankShardEnd
	case p.IsZero():
		return rankZero
	}
	return rankSequence
}

// OrderKey returns a string whose byte order is the order of positions: "" for the zero
// Position, "999" for ShardEnd, otherwise the sequence number's length in three digits, the
// sequence number, ":" and the sub-sequence number in 20 digits. Stores use it to compare
// positions inside a conditional write (a Lua script, a DynamoDB condition expression).
// p must be valid.
func (p Position) OrderKey() string {
	switch {
	case p.ShardEnd:
		return "999"
	case p.IsZero():
		return ""
	}
	return fmt.Sprintf("%03d%s:%020d", len(p.SequenceNumber), p.SequenceNumber, p.SubSequenceNumber)
}
