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
	if prev, err := z.Heartbeat(ctx, checkpoint.Worker{Group: "g", Stream: "s", ID: "w", Instance: "i"}); err != nil || prev.Counter != 0 {
		t.Errorf("Heartbeat on a zero Memory = %+v, %v", prev, err)
	}
	if ws, err := z.ListWorkers(ctx, "g", "s"); err != nil || len(ws) != 1 || ws[0].Counter != 1 || ws[0].Instance != "i" {
		t.Errorf("after Heartbeat on a zero Memory, ListWorkers = %+v, %v", ws, err)
	}
}
