package dynamodb

import (
	"errors"
	"strings"
	"testing"

	"github.com/shardline/kinesis/checkpoint"
)

// TestPartitionKeyInjective guards against an encoding of (group, stream) in which two
// different pairs share a partition key, as a plain separator would: ("a|b", "c") and
// ("a", "b|c") would then read and fence each other's leases.
func TestPartitionKeyInjective(t *testing.T) {
	names := []string{"a", "b", "a|b", "b|c", "c", "1:a", "1", ":", "|", "||", "10:x", "x|", "é", "a\x00b", "#", "lease#"}
	seen := make(map[string][2]string)
	for _, g := range names {
		for _, s := range names {
			pk, err := partitionKey(g, s)
			if err != nil {
				t.Fatalf("partitionKey(%q, %q): %v", g, s, err)
			}
			if prev, dup := seen[pk]; dup {
				t.Errorf("partitionKey(%q, %q) = partitionKey(%q, %q) = %q", g, s, prev[0], prev[1], pk)
			}
			seen[pk] = [2]string{g, s}
		}
	}
}

// TestKeyLimits guards against sending keys DynamoDB refuses with a ValidationException (a
// configuration-looking error at run time) or, for invalid UTF-8, silently rewrites (two names
// would then share rows): both must be ErrInvalid before any call.
func TestKeyLimits(t *testing.T) {
	long := strings.Repeat("x", 2048)
	for _, tc := range []struct {
		name string
		key  checkpoint.ShardKey
	}{
		{"group not UTF-8", checkpoint.ShardKey{Group: "g\xff", Stream: "s", Shard: "1"}},
		{"stream not UTF-8", checkpoint.ShardKey{Group: "g", Stream: "s\xfe", Shard: "1"}},
		{"shard not UTF-8", checkpoint.ShardKey{Group: "g", Stream: "s", Shard: "\xc3"}},
		{"partition key too long", checkpoint.ShardKey{Group: long, Stream: "s", Shard: "1"}},
		{"sort key too long", checkpoint.ShardKey{Group: "g", Stream: "s", Shard: long[:1024]}},
	} {
		if _, err := leaseKey(tc.key); !errors.Is(err, checkpoint.ErrInvalid) {
			t.Errorf("%s: leaseKey = %v, want ErrInvalid", tc.name, err)
		}
	}
	// The limits are DynamoDB's exactly: keys of 2048 and 1024 bytes pass, one byte more fails.
	g := strings.Repeat("g", maxPartitionKey-len("2041:|s")) // "2041:" + g + "|s" is 2048 bytes
	shard := strings.Repeat("1", maxSortKey-len(leasePrefix))
	if _, err := leaseKey(checkpoint.ShardKey{Group: g, Stream: "s", Shard: shard}); err != nil {
		t.Errorf("leaseKey at the size limits: %v", err)
	}
	if _, err := leaseKey(checkpoint.ShardKey{Group: g, Stream: "st", Shard: shard}); !errors.Is(err, checkpoint.ErrInvalid) {
		t.Errorf("leaseKey with a 2049-byte partition key = %v, want ErrInvalid", err)
	}
	if _, err := leaseKey(checkpoint.ShardKey{Group: "g", Stream: "s", Shard: shard + "1"}); !errors.Is(err, checkpoint.ErrInvalid) {
		t.Errorf("leaseKey with a 1025-byte sort key = %v, want ErrInvalid", err)
	}
}
