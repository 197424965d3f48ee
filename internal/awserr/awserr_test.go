package awserr

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// Guards against the two mistakes a classifier can make: giving up on a throttle or a broken
// connection (records fail that would have gone through), or retrying a missing stream or a
// denied permission forever. Wrapped errors must classify like the originals.
func TestRetryableAndLabel(t *testing.T) {
	for _, tc := range []struct {
		err   error
		retry bool
		label string
	}{
		{&types.ProvisionedThroughputExceededException{Message: aws.String("x")}, true, "ProvisionedThroughputExceededException"},
		{&types.LimitExceededException{}, true, "LimitExceededException"},
		{&smithy.GenericAPIError{Code: CodeInternalFailure}, true, CodeInternalFailure},
		{&types.KMSThrottlingException{}, true, "KMSThrottlingException"},
		{&types.ExpiredIteratorException{}, true, "ExpiredIteratorException"},
		{errors.New("connection reset by peer"), true, "connection"},
		{context.DeadlineExceeded, true, "timeout"},
		{&types.ResourceNotFoundException{}, false, "ResourceNotFoundException"},
		{&types.AccessDeniedException{}, false, "AccessDeniedException"},
		{&types.InvalidArgumentException{}, false, "InvalidArgumentException"},
		{&types.KMSDisabledException{}, false, "KMSDisabledException"},
		{&smithy.GenericAPIError{Code: "UnrecognizedClientException"}, false, "UnrecognizedClientException"},
		{context.Canceled, false, "canceled"},
	} {
		wrapped := fmt.Errorf("op: %w", tc.err)
		if got := Retryable(wrapped); got != tc.retry {
			t.Errorf("Retryable(%v) = %v, want %v", tc.err, got, tc.retry)
		}
		if got := Label(wrapped); got != tc.label {
			t.Errorf("Label(%v) = %q, want %q", tc.err, got, tc.label)
		}
	}
	if Retryable(nil) {
		t.Error("Retryable(nil) = true")
	}
}

// Guards against the SDK's own parameter validation being retried forever: the Kinesis client
// returns smithy.InvalidParamsError as a value (not a pointer), wrapped in an OperationError,
// before any request is sent.
func TestSDKParamValidationIsPermanent(t *testing.T) {
	client := kinesis.New(kinesis.Options{Region: "us-east-1", Credentials: aws.AnonymousCredentials{}})
	_, err := client.GetRecords(context.Background(), &kinesis.GetRecordsInput{}) // no ShardIterator
	var params smithy.InvalidParamsError
	if !errors.As(err, &params) {
		t.Fatalf("GetRecords without an iterator = %v, want a smithy.InvalidParamsError value", err)
	}
	if Retryable(err) {
		t.Errorf("Retryable(%v) = true, want false", err)
	}
}
