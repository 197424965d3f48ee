package dynamodb_test

import (
	"context"
	"errors"
	"log"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/shardline/kinesis/checkpoint"
	ddbstore "github.com/shardline/kinesis/checkpoint/dynamodb"
)

// This example needs a DynamoDB endpoint (AWS, or AWS_ENDPOINT_URL_DYNAMODB pointing at a
// local emulator), so it is compiled but not run.
func Example() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	client := dynamodb.NewFromConfig(cfg)

	// Once per deployment, or at every start: an existing table is fine.
	if err := ddbstore.CreateTable(ctx, client, "shardline-leases"); err != nil {
		log.Fatal(err)
	}
	store, err := ddbstore.New(client, "shardline-leases", ddbstore.WithCallTimeout(3*time.Second))
	if err != nil {
		log.Fatal(err)
	}

	key := checkpoint.ShardKey{Group: "billing", Stream: "orders", Shard: "shardId-000000000000"}
	lease, err := store.TakeLease(ctx, key, "worker-1", 0) // 0: the row does not exist yet
	if err != nil {
		log.Fatal(err)
	}
	pos := checkpoint.Position{SequenceNumber: "49590338271490256608559692538361571095921575989136588898"}
	switch err := store.Checkpoint(ctx, lease, pos); {
	case errors.Is(err, checkpoint.ErrLeaseLost):
		// Another worker took the shard: stop processing it.
	case errors.Is(err, checkpoint.ErrUnavailable):
		// DynamoDB did not answer (throttled, unreachable, timed out): retry later.
	case err != nil:
		log.Fatal(err) // a configuration error, such as ErrTableNotFound or AccessDenied
	}
	if err := store.ReleaseLease(ctx, lease, checkpoint.Position{}); err != nil {
		log.Print(err)
	}
}
