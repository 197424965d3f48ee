package producer

import (
	"fmt"
	"unicode/utf8"

	"github.com/shardline/kinesis/internal/shardmap"
)

// Record is a user record: what PutRecord and TryPutRecord take, and what the OnFailure hook
// receives back.
type Record struct {
	// PartitionKey decides the shard (through its MD5 hash) unless ExplicitHashKey is set, and
	// is what consumers see as the record's key: 1 to 256 characters of valid UTF-8.
	PartitionKey string
	// ExplicitHashKey, when not empty, replaces the partition key's hash for routing: a
	// decimal integer in [0, 2^128) without leading zeros, as Kinesis expects.
	ExplicitHashKey string
	// Data is the payload. The producer does not copy it: it must not be modified until the
	// record's outcome is known.
	Data []byte
}

// maxKeyUnits is the Kinesis partition key limit, in UTF-16 code units (Kinesis counts
// "Unicode characters" the way Java strings do).
const maxKeyUnits = 256

// check validates r against the Kinesis rules and the configured record limit, and returns the
// hash key that routes it.
func (c *config) check(r *Record) (shardmap.Hash, error) {
	if err := checkPartitionKey(r.PartitionKey); err != nil {
		return shardmap.Hash{}, err
	}
	if n := len(r.PartitionKey) + len(r.Data); n > c.maxRecordSize {
		return shardmap.Hash{}, fmt.Errorf("%w: %d bytes of partition key and data, over the limit of %d",
			ErrRecordTooLarge, n, c.maxRecordSize)
	}
	if r.ExplicitHashKey == "" {
		return shardmap.HashKey(r.PartitionKey), nil
	}
	ehk := r.ExplicitHashKey
	if len(ehk) > 1 && ehk[0] == '0' { // Kinesis' pattern is 0|([1-9]\d{0,38})
		return shardmap.Hash{}, fmt.Errorf("%w: %q has a leading zero", ErrInvalidExplicitHashKey, ehk)
	}
	h, err := shardmap.ParseHash(ehk)
	if err != nil {
		return shardmap.Hash{}, fmt.Errorf("%w: %q", ErrInvalidExplicitHashKey, ehk)
	}
	return h, nil
}

// checkPartitionKey enforces the Kinesis partition key rules: not empty, valid UTF-8 (Kinesis
// receives it as a JSON string), at most 256 UTF-16 code units. A key of at most 256 bytes
// always meets the length rule, so only longer keys are counted.
func checkPartitionKey(pk string) error {
	if pk == "" {
		return ErrEmptyPartitionKey
	}
	if !utf8.ValidString(pk) {
		return ErrInvalidPartitionKey
	}
	if len(pk) <= maxKeyUnits {
		return nil
	}
	units := 0
	for _, r := range pk {
		units++
		if r > 0xFFFF {
			units++ // a surrogate pair in UTF-16
		}
	}
	if units > maxKeyUnits {
		return fmt.Errorf("%w: %d UTF-16 code units", ErrPartitionKeyTooLong, units)
	}
	return nil
}
