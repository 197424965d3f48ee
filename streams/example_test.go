package streams_test

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/kinesis/producer"
	"github.com/shardline/kinesis/streams"
)

// A program that owns its stream creates it at start-up, then checks it can write to it.
// config.LoadDefaultConfig honours AWS_ENDPOINT_URL_KINESIS, so the same code runs against
// the local stack (eval "$(localstack/up)") and against AWS.
func ExampleEnsure() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	client := kinesis.NewFromConfig(cfg)
	if err := streams.Ensure(ctx, client, "orders", 4); err != nil {
		fmt.Println(err)
		return
	}
	p, err := producer.New(client, "orders")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close(context.Background())
	if err := p.Ready(ctx); err != nil {
		fmt.Println(err)
	}
}
