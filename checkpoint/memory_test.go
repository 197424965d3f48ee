package checkpoint_test

import (
	"context"
	"testing"

	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/checkpoint/checkpointtest"
)

// TestMemory runs the conformance suite against the reference store, a new one per subtest.
func TestMemory(t *testing.T) {
	checkpointtest.Run(t, func(*testing.T) checkpoint.Store { return checkpoint.NewMemory() })
}

// TestMemoryShared runs the suite against one store for every subtest, the way a store on a
// shared server runs it: it guards against subtests whose names collide.
func TestMemoryShared(t *testing.T) {
	s := checkpoint.NewMemory()
	checkpointtest.Run(t, func(*testing.T) checkpoint.Store { return s })
}

// TestMemoryZeroValue guards against a zero Memory (a struct field, say) that panics on its
// first write instead of behaving as an empty store.
func TestMemoryZeroValue(t *testing.T) {
	ctx := context.Background()
	var m checkpoint.Memory
	key := checkpoint.ShardKey{Group: "g", Stream: "s", Shard: "x"}
	if _, err := m.TakeLease(ctx, key, "w", 0); err != nil {
		t.Errorf("TakeLease on a zero Memory: %v", err)
	}
	var z checkpoint.Memory
	if w, err := z.Heartbeat(ctx, "g", "s", "w"); err != nil || w.Counter != 1 {
		t.Errorf("Heartbeat on a zero Memory = %+v, %v", w, err)
	}
}
