package consumer_test

import (
	"context"
	"fmt"
	"log"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/consumer"
)

// A worker that prints every record and stops gracefully on SIGTERM: it finishes the batch in
// hand, checkpoints it and hands its leases back.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	// checkpoint.NewMemory suits one process; use checkpoint/redis or checkpoint/dynamodb to
	// share shards across a fleet and survive restarts.
	c, err := consumer.New(kinesis.NewFromConfig(cfg), "orders", checkpoint.NewMemory(),
		consumer.WithGroup("printer"),
		consumer.WithStartPosition(consumer.TrimHorizon),
		consumer.WithCheckpointInterval(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	err = c.Run(ctx, func(ctx context.Context, b *consumer.Batch) error {
		for _, r := range b.Records {
			fmt.Printf("%s %s/%d %s\n", r.ShardID, r.SequenceNumber, r.SubSequenceNumber, r.Data)
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
}
