package streams_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/kinesis/localstack"
	"github.com/shardline/kinesis/streams"
)

// Guards against Ensure working on fakes only: on the local stack's Kinesis it creates a
// stream that is ACTIVE with the shards asked for when it returns, and a second call (a
// second process starting) succeeds without touching it.
func TestIntegrationEnsure(t *testing.T) {
	client := localstack.Kinesis(t)
	name := localstack.UniqueName(t, "shardline-ensure-")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = client.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(name), EnforceConsumerDeletion: aws.Bool(true)})
	})
	if err := streams.Ensure(ctx, client, name, 3); err != nil {
		t.Fatal(err)
	}
	sum, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if d := sum.StreamDescriptionSummary; d.StreamStatus != types.StreamStatusActive || aws.ToInt32(d.OpenShardCount) != 3 {
		t.Errorf("after Ensure: %s with %d open shards, want ACTIVE with 3", d.StreamStatus, aws.ToInt32(d.OpenShardCount))
	}
	if err := streams.Ensure(ctx, client, name, 5); err != nil {
		t.Errorf("Ensure of an existing stream: %v", err)
	}
	sum, err = client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil || aws.ToInt32(sum.StreamDescriptionSummary.OpenShardCount) != 3 {
		t.Errorf("Ensure changed an existing stream: %v, %+v", err, sum)
	}
}
