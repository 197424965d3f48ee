// Package awserr classifies errors of Kinesis calls the same way for the producer and the
// consumer: whether another attempt can succeed, and the error_type metric label.
package awserr

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// CodeInternalFailure is the per-entry and request error code of a Kinesis-side failure.
const CodeInternalFailure = "InternalFailure"

// Retryable reports whether another attempt of the call that returned err can succeed:
// throttling, service faults, timeouts and broken connections can; a missing stream, denied
// access, invalid arguments, KMS key problems, bad credentials and cancellation cannot.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var (
		notFound   *types.ResourceNotFoundException
		invalid    *types.InvalidArgumentException
		denied     *types.AccessDeniedException
		kmsDenied  *types.KMSAccessDeniedException
		kmsOff     *types.KMSDisabledException
		kmsState   *types.KMSInvalidStateException
		kmsMissing *types.KMSNotFoundException
		kmsOptIn   *types.KMSOptInRequired
		params     *smithy.InvalidParamsError
		paramsVal  smithy.InvalidParamsError // what the SDK's validators return
	)
	switch {
	case errors.As(err, &notFound), errors.As(err, &invalid), errors.As(err, &denied),
		errors.As(err, &kmsDenied), errors.As(err, &kmsOff), errors.As(err, &kmsState),
		errors.As(err, &kmsMissing), errors.As(err, &kmsOptIn), errors.As(err, &params), errors.As(err, &paramsVal):
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true // a request timeout: the next attempt gets a new deadline
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
			"MissingAuthenticationToken", "ExpiredTokenException", "IncompleteSignature",
			"ValidationException", "SerializationException", "UnknownOperationException",
			"ResourceNotFoundException", "InvalidArgumentException":
			return false
		case CodeInternalFailure, "InternalServerError", "ServiceUnavailable",
			"KMSThrottlingException", "ResourceInUseException", "ExpiredIteratorException":
			return true
		}
	}
	switch retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) {
	case aws.TrueTernary:
		return true
	case aws.FalseTernary:
		return false
	}
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) {
		code := status.HTTPStatusCode()
		return code >= 500 || code == 429
	}
	if api != nil {
		return api.ErrorFault() == smithy.FaultServer
	}
	// No AWS error code and no HTTP status: the request did not complete (connection,
	// transport or response decoding trouble). Worth another try within the retry budget.
	return true
}

// Label returns the error_type metric label of err: the AWS error code when there is one,
// else "timeout", "canceled" or "connection".
func Label(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() != "" {
		return api.ErrorCode()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	var timeout interface{ Timeout() bool }
	if errors.As(err, &timeout) && timeout.Timeout() {
		return "timeout"
	}
	return "connection"
}
