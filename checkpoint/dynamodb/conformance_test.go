package dynamodb_test

import (
	"testing"

	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/checkpoint/checkpointtest"
	ddbstore "github.com/shardline/kinesis/checkpoint/dynamodb"
	"github.com/shardline/kinesis/localstack"
)

// TestConformance runs the shared conformance suite against the store on dynalite. All
// subtests share one table, as the groups and streams of a deployment do: the suite gives
// each subtest a group and stream of its own, so this also checks that rows of different
// (group, stream) pairs never meet in one table.
func TestConformance(t *testing.T) {
	client := localstack.DynamoDB(t)
	table := newTable(t, client)
	store, err := ddbstore.New(client, table)
	if err != nil {
		t.Fatal(err)
	}
	checkpointtest.Run(t, func(t *testing.T) checkpoint.Store { return store })
}
