package events_test

import (
	"errors"
	"fmt"

	"github.com/shardline/kinesis/events"
)

// A Summary is a listener that keeps counts for a status page; give it to
// producer.WithListener or consumer.WithListener. Here its events are handed over by hand.
func ExampleSummary() {
	summary := events.NewSummary(100)
	summary.OnEvent(events.Event{Type: events.LeaseAcquired, Stream: "orders", Shard: "shardId-000000000000"})
	summary.OnEvent(events.Event{Type: events.CheckpointWritten, Stream: "orders", Shard: "shardId-000000000000"})
	summary.OnEvent(events.Event{Type: events.CheckpointFailed, Stream: "orders", Shard: "shardId-000000000000",
		Err: errors.New("store unavailable")})

	s := summary.Snapshot()
	fmt.Println(s.Total, s.ByType[events.CheckpointFailed], s.ByShard["shardId-000000000000"][events.LeaseAcquired])
	// Output: 3 1 1
}
