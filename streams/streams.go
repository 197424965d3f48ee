// Package streams prepares the Kinesis stream a program writes to or reads from: Ensure
// creates it unless it exists and waits until it is ACTIVE, with the AWS SDK's own waiter.
//
//	cfg, err := config.LoadDefaultConfig(ctx) // honours AWS_ENDPOINT_URL_KINESIS, e.g. a local stack
//	if err != nil {
//		return err
//	}
//	client := kinesis.NewFromConfig(cfg)
//	if err := streams.Ensure(ctx, client, "orders", 4); err != nil {
//		return err
//	}
//	p, err := producer.New(client, "orders")
//
// It depends on the AWS SDK and nothing else: no test helpers, no containers. Streams in
// production are usually created by infrastructure code (CloudFormation, Terraform, CDK);
// Ensure suits examples, tools, tests and services that own their stream.
package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// API is the part of the Kinesis client Ensure calls; *kinesis.Client satisfies it.
type API interface {
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
	CreateStream(ctx context.Context, in *kinesis.CreateStreamInput, optFns ...func(*kinesis.Options)) (*kinesis.CreateStreamOutput, error)
	// DescribeStream is what the SDK's StreamExists waiter polls.
	DescribeStream(ctx context.Context, in *kinesis.DescribeStreamInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamOutput, error)
}

var _ API = (*kinesis.Client)(nil)

// MaxWait bounds how long Ensure waits for a stream to become ACTIVE when ctx has no
// deadline. Kinesis usually activates a new stream within a minute.
const MaxWait = 5 * time.Minute

// Waiter delays: a local engine activates a stream at once, AWS within seconds to a minute;
// DescribeStream allows 10 calls per second per account.
const (
	minDelay = 100 * time.Millisecond
	maxDelay = 5 * time.Second
)

// Ensure makes sure stream exists and is ACTIVE. It looks the stream up first
// (DescribeStreamSummary), so that processes starting together do not all call CreateStream
// (5 calls per second per account); a stream that does not exist is created in provisioned
// mode with shards shards, and one that another caller created meanwhile is fine. It then
// waits until the stream is ACTIVE (the SDK's StreamExists waiter) for as long as ctx allows,
// at most MaxWait when ctx has no deadline; a stream still not ACTIVE then is an error
// matching context.DeadlineExceeded.
//
// An existing stream is used as it is: Ensure never changes its shard count or mode. Errors
// wrap the SDK's (errors.As reaches *types.LimitExceededException, an access-denied error,
// ...). Ensure needs kinesis:DescribeStreamSummary, kinesis:DescribeStream and, to create,
// kinesis:CreateStream.
func Ensure(ctx context.Context, client API, stream string, shards int) error {
	switch {
	case client == nil:
		return errors.New("streams: nil Kinesis client")
	case stream == "":
		return errors.New("streams: empty stream name")
	case shards < 1:
		return fmt.Errorf("streams: %s: %d shards: need at least 1", stream, shards)
	}
	sum, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	var notFound *types.ResourceNotFoundException
	switch {
	case errors.As(err, &notFound):
		_, err = client.CreateStream(ctx, &kinesis.CreateStreamInput{
			StreamName: aws.String(stream),
			ShardCount: aws.Int32(int32(min(shards, 1<<31-1))),
		})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) { // in use: created by someone else meanwhile
			return fmt.Errorf("streams: create %s: %w", stream, err)
		}
	case err != nil:
		return fmt.Errorf("streams: describe %s: %w", stream, err)
	case sum.StreamDescriptionSummary != nil && sum.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive:
		return nil
	}
	wait := MaxWait
	if deadline, ok := ctx.Deadline(); ok {
		wait = time.Until(deadline)
	}
	if wait <= 0 {
		return fmt.Errorf("streams: wait for %s to be ACTIVE: %w", stream, context.DeadlineExceeded)
	}
	w := kinesis.NewStreamExistsWaiter(client, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = minDelay, maxDelay
	})
	if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(stream)}, wait); err != nil {
		var op *smithy.OperationError
		var api smithy.APIError
		if !errors.As(err, &op) && !errors.As(err, &api) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			// The waiter gave up at its maximum wait, a moment before ctx's deadline (or at
			// MaxWait): say so the way ctx would have.
			err = fmt.Errorf("%v: %w", err, context.DeadlineExceeded)
		}
		return fmt.Errorf("streams: wait for %s to be ACTIVE: %w", stream, err)
	}
	return nil
}
