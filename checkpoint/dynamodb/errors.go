package dynamodb

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/shardline/kinesis/checkpoint"
)

var (
	// ErrTableNotFound: DynamoDB answered that the table does not exist. It is a
	// configuration error (wrong name, region or account, or the table was never created
	// with [CreateTable]) and never stands for a missing row: it matches neither
	// [checkpoint.ErrNotFound] nor [checkpoint.ErrUnavailable]. errors.As still reaches the
	// SDK's *types.ResourceNotFoundException.
	ErrTableNotFound = errors.New("checkpoint/dynamodb: table not found")

	// ErrSchemaMismatch: [CreateTable] found an existing table whose key schema is not the
	// one this package writes.
	ErrSchemaMismatch = errors.New("checkpoint/dynamodb: table has a different key schema")
)

// classify turns an error of a DynamoDB call other than ConditionalCheckFailedException into
// the store's error for op:
//
//   - ResourceNotFoundException: ErrTableNotFound;
//   - a client error that retrying cannot fix (ValidationException, AccessDeniedException,
//     UnrecognizedClientException, ...): returned wrapped, matching no sentinel, because
//     "retry later" would hide a configuration error;
//   - everything else (no connection, timeout, cancelled context, throttling, 5xx, an
//     answer that could not be read): checkpoint.ErrUnavailable, since nothing is known
//     about the row.
func classify(table, op string, err error) error {
	var rnf *types.ResourceNotFoundException
	if errors.As(err, &rnf) {
		return fmt.Errorf("%w: %q (%s): %w", ErrTableNotFound, table, op, err)
	}
	if refusedForGood(err) {
		return fmt.Errorf("checkpoint/dynamodb: %s: %w", op, err)
	}
	return checkpoint.Unavailable(op, err)
}

// refusedForGood reports whether DynamoDB answered err as a client error that retrying does
// not fix. Modelled exceptions say so with their fault; others (AccessDeniedException,
// UnrecognizedClientException) reach the SDK as generic errors of unknown fault, which the
// HTTP status classifies.
func refusedForGood(err error) bool {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || retryableCode(apiErr.ErrorCode()) {
		return false
	}
	switch apiErr.ErrorFault() {
	case smithy.FaultClient:
		return true
	case smithy.FaultServer:
		return false
	}
	var resp interface{ HTTPStatusCode() int }
	if !errors.As(err, &resp) {
		return false
	}
	status := resp.HTTPStatusCode()
	return status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests
}

// retryableCode reports whether an error code names a throttling or timeout error, which
// DynamoDB reports as client faults although retrying later fixes them.
func retryableCode(code string) bool {
	_, throttle := retry.DefaultThrottleErrorCodes[code]
	_, timeout := retry.DefaultRetryableErrorCodes[code]
	return throttle || timeout
}

// conditionFailed reports whether err is DynamoDB's ConditionalCheckFailedException and
// returns it.
func conditionFailed(err error) (*types.ConditionalCheckFailedException, bool) {
	var ccf *types.ConditionalCheckFailedException
	ok := errors.As(err, &ccf)
	return ccf, ok
}

// opError prefixes err (a sentinel of package checkpoint, or a validation error) with the
// package and op, keeping it matchable with errors.Is.
func opError(op string, err error) error {
	return fmt.Errorf("checkpoint/dynamodb: %s: %w", op, err)
}
