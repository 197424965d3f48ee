package redis

import (
	"testing"

	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/checkpoint/checkpointtest"
	"github.com/shardline/kinesis/localstack"
)

// TestConformance runs the suite every checkpoint.Store passes, against the stack's Redis,
// each subtest under a key prefix of its own that is deleted when it ends.
func TestConformance(t *testing.T) {
	client := localstack.Redis(t)
	checkpointtest.Run(t, func(t *testing.T) checkpoint.Store {
		s, err := New(client, WithPrefix(localstack.RedisPrefix(t, client)))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return s
	})
}
