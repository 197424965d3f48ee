package dynamodb_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardline/kinesis/checkpoint"
)

// TestTableLayout pins the stored attributes to what doc.go documents. It guards against
// the code and the documented layout drifting apart (operators read and IAM-scope these
// rows), against a position stored without its order key (later conditions would compare
// against nothing and let positions move back), and against any TTL-like attribute creeping
// onto a lease row.
func TestTableLayout(t *testing.T) {
	s, client, table := newStore(t)
	ctx := ctxFor(t)
	key := checkpoint.ShardKey{Group: "orders|app", Stream: "events", Shard: "shardId-000000000001"}
	l, err := s.TakeLease(ctx, key, "worker-1", 0)
	if err != nil {
		t.Fatalf("TakeLease: %v", err)
	}
	if err := s.Checkpoint(ctx, l, pos("49590338271490256608559692538361571095921575989136588898", 3)); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	if err := s.RequestHandoff(ctx, key, "worker-1", "worker-2", l.Counter); err != nil {
		t.Fatalf("RequestHandoff: %v", err)
	}
	if _, err := s.Heartbeat(ctx, checkpoint.Worker{Group: key.Group, Stream: key.Stream, ID: "worker-1", Instance: "0000000000000001-ab"}); err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}

	const pk = "10:orders|app|events"
	row := rawRow(t, client, table, pk, "lease#shardId-000000000001")
	if row == nil {
		t.Fatalf("no row at pk %q, sk %q", pk, "lease#shardId-000000000001")
	}
	want := map[string]string{
		"leaseOwner":   "worker-1",
		"pendingOwner": "worker-2",
		"checkpoint":   "49590338271490256608559692538361571095921575989136588898",
		"checkpointOrder": "056" + "49590338271490256608559692538361571095921575989136588898" +
			":00000000000000000003",
	}
	for name, v := range want {
		if got := sAttr(row, name); got != v {
			t.Errorf("lease row attribute %s = %q, want %q", name, got, v)
		}
	}
	if got := nAttr(row, "leaseCounter"); got != "2" {
		t.Errorf("lease row attribute leaseCounter = %q, want 2 (take, handoff request)", got)
	}
	if got := nAttr(row, "checkpointSubSequenceNumber"); got != "3" {
		t.Errorf("lease row attribute checkpointSubSequenceNumber = %q, want 3", got)
	}
	if sAttr(row, "leaseToken") != l.Token {
		t.Errorf("lease row token %q, want the token TakeLease returned, %q", sAttr(row, "leaseToken"), l.Token)
	}
	documented := map[string]bool{"pk": true, "sk": true, "leaseOwner": true, "leaseToken": true,
		"leaseCounter": true, "pendingOwner": true, "checkpoint": true, "checkpointSubSequenceNumber": true,
		"checkpointOrder": true, "lastWriteID": true}
	for name := range row {
		if !documented[name] {
			t.Errorf("lease row has undocumented attribute %q", name)
		}
		if strings.Contains(strings.ToLower(name), "ttl") || strings.Contains(strings.ToLower(name), "expire") {
			t.Errorf("lease row has a TTL-like attribute %q", name)
		}
	}

	w := rawRow(t, client, table, pk, "worker#worker-1")
	if nAttr(w, "heartbeatCounter") != "1" || sAttr(w, "workerInstance") != "0000000000000001-ab" || len(w) != 4 {
		t.Errorf("worker row = %v, want pk, sk, heartbeatCounter 1 and workerInstance 0000000000000001-ab", w)
	}

	// The store reads back what the layout holds.
	got, err := s.GetLease(ctx, key)
	if err != nil {
		t.Fatalf("GetLease: %v", err)
	}
	if got.PendingOwner != "worker-2" || got.Counter != 2 || got.Checkpoint.SubSequenceNumber != 3 {
		t.Errorf("GetLease = %+v", got)
	}
	if _, err := s.GetLease(ctx, checkpoint.ShardKey{Group: "orders", Stream: "app|events", Shard: key.Shard}); !errors.Is(err, checkpoint.ErrNotFound) {
		t.Errorf("GetLease of group %q stream %q = %v, want ErrNotFound: the partition key must not confuse the two", "orders", "app|events", err)
	}
}

// TestWorkerRowWithoutInstance guards against worker rows written before rows had a
// workerInstance attribute (a table upgraded in place) breaking ListWorkers or Heartbeat, or
// reading as some instance: the consumer would take such a row for a second process with its
// ID.
func TestWorkerRowWithoutInstance(t *testing.T) {
	s, client, table := newStore(t)
	ctx := ctxFor(t)
	_, err := client.PutItem(ctx, &ddb.PutItemInput{
		TableName: aws.String(table),
		Item: map[string]types.AttributeValue{
			"pk":               &types.AttributeValueMemberS{Value: "1:g|s"},
			"sk":               &types.AttributeValueMemberS{Value: "worker#old"},
			"heartbeatCounter": &types.AttributeValueMemberN{Value: "41"},
		},
	})
	if err != nil {
		t.Fatalf("PutItem of an old worker row: %v", err)
	}

	want := checkpoint.Worker{Group: "g", Stream: "s", ID: "old", Counter: 41}
	if ws, err := s.ListWorkers(ctx, "g", "s"); err != nil || len(ws) != 1 || ws[0] != want {
		t.Errorf("ListWorkers = %+v, %v; want [%+v]", ws, err, want)
	}
	prev, err := s.Heartbeat(ctx, checkpoint.Worker{Group: "g", Stream: "s", ID: "old", Instance: "new"})
	if err != nil || prev != want {
		t.Errorf("Heartbeat = %+v, %v; want the old row %+v", prev, err, want)
	}
	want.Counter, want.Instance = 42, "new"
	if ws, err := s.ListWorkers(ctx, "g", "s"); err != nil || len(ws) != 1 || ws[0] != want {
		t.Errorf("after a heartbeat, ListWorkers = %+v, %v; want [%+v]", ws, err, want)
	}
}
