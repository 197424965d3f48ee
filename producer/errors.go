package producer

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	"github.com/shardline/kinesis/internal/awserr"
	"github.com/shardline/kinesis/internal/cfgerr"
)

// Errors Put and its variants return at once, before accepting a record.
var (
	// ErrClosed is returned by Put after Close began, and is the outcome error (wrapped with
	// the cause, such as context.DeadlineExceeded) of every record that Close could not deliver
	// before its context ended.
	ErrClosed = errors.New("producer: closed")
	// ErrBufferFull means backpressure: the buffer holds its maximum of records or bytes (see
	// WithBufferLimits). TryPut and TryPutRecord return it at once; Put and PutRecord return
	// an error matching both it and the context's error when their context ended while they
	// waited for room, so overload is told apart from a caller's deadline that expired for
	// another reason (a Put that was never blocked does not match it).
	ErrBufferFull = errors.New("producer: buffer full")

	// ErrEmptyPartitionKey: Kinesis requires a partition key of at least one character.
	ErrEmptyPartitionKey = errors.New("producer: empty partition key")
	// ErrPartitionKeyTooLong: the partition key is longer than 256 characters, counted as
	// Kinesis counts them (UTF-16 code units: a character outside the Basic Multilingual Plane
	// counts twice). Any key of at most 256 bytes passes.
	ErrPartitionKeyTooLong = errors.New("producer: partition key longer than 256 characters")
	// ErrInvalidPartitionKey: the partition key is not valid UTF-8. Kinesis receives keys as
	// JSON strings, so invalid bytes would be replaced in transit and the record would be hashed
	// (and routed) differently from what the producer predicted.
	ErrInvalidPartitionKey = errors.New("producer: partition key is not valid UTF-8")
	// ErrRecordTooLarge: partition key plus data exceed the record size limit (see
	// WithMaxRecordSize).
	ErrRecordTooLarge = errors.New("producer: record too large")
	// ErrInvalidExplicitHashKey: the explicit hash key is not a decimal integer in [0, 2^128).
	ErrInvalidExplicitHashKey = errors.New("producer: explicit hash key is not a decimal integer in [0, 2^128)")
)

// ErrWaitAbandoned is matched by the error of a Result.Wait (and PutSync) whose context ended
// before the record's outcome was known. It says nothing about the record, which goes on and
// ends delivered or failed later; the error also matches the context's error. Outcome errors
// never match it, so test it before anything else (see Result.Wait for the order).
var ErrWaitAbandoned = errors.New("producer: stopped waiting for the outcome")

// ErrMaybeWritten marks the outcome error of a failed record that Kinesis may have stored all
// the same: errors.Is(outcome.Err, ErrMaybeWritten) is true when any attempt that carried the
// record ended without a known result, even if later attempts were refused. Such attempts are
// a request that timed out (see WithCallTimeout), a connection that failed after the
// request may have been sent, a 5xx answer (an error from the service or a gateway, which may
// follow the write), a response that could not be read, a try of the AWS SDK's own retries
// inside one call that ended so, a request in flight when Close gave up, and an aggregate
// that Kinesis stored on a shard outside the record's hash-key range after a reshard (read by
// consumers that do not check ranges, dropped by the KCL and Shardline's consumer). It is
// false when every attempt was surely refused or never made: entry error codes, 4xx answers,
// connections that could not be opened, records refused by validation or never sent.
//
// The error still matches its cause: errors.As finds the *RetryBudgetError, *EntryError or
// AWS exception, and errors.Is finds ErrClosed.
var ErrMaybeWritten = errors.New("producer: the record may have been written")

// maybeWrittenError is an outcome error that also matches ErrMaybeWritten.
type maybeWrittenError struct{ err error }

func (e *maybeWrittenError) Error() string {
	return e.err.Error() + " (the record may have been written: an attempt's result is unknown)"
}

func (e *maybeWrittenError) Unwrap() []error { return []error{e.err, ErrMaybeWritten} }

// maybeWritten returns err marked with ErrMaybeWritten.
func maybeWritten(err error) error {
	if errors.Is(err, ErrMaybeWritten) {
		return err
	}
	return &maybeWrittenError{err: err}
}

// resultUnknown reports whether a PutRecords call (or one try of the SDK inside it) that
// failed with err may have reached Kinesis and stored records: anything but an answer with a
// 4xx status (or an AWS exception of the client's fault, from clients that return those
// without an HTTP response), a connection that could not be opened, and our own validation.
func resultUnknown(err error) bool {
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) && status.HTTPStatusCode() != 0 { // 0: the SDK got no response
		code := status.HTTPStatusCode()
		return code < 400 || code >= 500 // a 2xx or 3xx with an error: the answer was unreadable
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorFault() == smithy.FaultServer
	}
	var dns *net.DNSError
	var op *net.OpError
	switch {
	case errors.As(err, &dns), errors.As(err, new(smithy.InvalidParamsError)), errors.As(err, new(*smithy.InvalidParamsError)):
		return false // never sent
	case errors.As(err, &op) && op.Op == "dial":
		return false // no connection, so no request
	}
	return true // a timeout, a broken connection, an unreadable answer: no answer at all
}

// Kinesis per-entry error codes of PutRecords that are worth retrying.
const (
	CodeThroughputExceeded = "ProvisionedThroughputExceededException"
	CodeInternalFailure    = "InternalFailure"
)

// EntryError is the error of one PutRecords entry, as the response reported it (ErrorCode and
// ErrorMessage). Records of an entry that failed with a code other than
// ProvisionedThroughputExceededException or InternalFailure end with an EntryError; the
// retryable ones end with a RetryBudgetError wrapping their last EntryError if retrying never
// succeeded.
type EntryError struct {
	Code    string
	Message string
}

// Error implements error.
func (e *EntryError) Error() string {
	return "producer: PutRecords entry failed: " + e.Code + ": " + e.Message
}

// ErrorCode returns the Kinesis error code, as smithy.APIError does.
func (e *EntryError) ErrorCode() string { return e.Code }

// Retryable reports whether Kinesis said the entry may succeed when sent again.
func (e *EntryError) Retryable() bool {
	return e.Code == CodeThroughputExceeded || e.Code == CodeInternalFailure
}

// RetryBudgetError is the outcome error of a record that failed every attempt the retry
// budget allowed (see WithRetryBudget): the maximum number of attempts, or the maximum age
// after which a record is no longer retried. Err is the last attempt's error.
type RetryBudgetError struct {
	Attempts int // PutRecords attempts that carried the record
	// Age is the time since the record's first attempt; for a record that was never sent
	// (no shard map could be listed), the time since Put accepted it.
	Age time.Duration
	Err error // the last cause: an *EntryError or a request error
}

// Error implements error.
func (e *RetryBudgetError) Error() string {
	return fmt.Sprintf("producer: retry budget spent after %d attempts in %v: %v",
		e.Attempts, e.Age.Round(time.Millisecond), e.Err)
}

// Unwrap returns the last cause.
func (e *RetryBudgetError) Unwrap() error { return e.Err }

// FailedError is what Flush and Close return when records they waited for failed: Count of
// them, every one reported through its Result (and the OnFailure hook). Flush waits for the
// records accepted before it was called, and counts those among them that fail after the call
// began; Close counts every record that fails after Close was first called, those it gives up
// on included. Records that failed before the call are not counted: their Results already
// told. Use errors.As to get it.
//
// First is not part of the error chain (errors.Is and errors.As do not look into it), so that
// a record's cause is never mistaken for the call's: a record that timed out does not make
// errors.Is(err, context.DeadlineExceeded) true. The chain holds Err only.
type FailedError struct {
	Op    string // "flush" or "close"
	Count int    // records that failed
	First error  // the outcome error of the first of them
	// Err is, for a Close that gave up when its context ended, an error matching both
	// ErrClosed and the context's error; nil otherwise.
	Err error
}

// Error implements error.
func (e *FailedError) Error() string {
	msg := fmt.Sprintf("producer: %s: %d records failed, the first with: %v", e.Op, e.Count, e.First)
	if e.Err != nil {
		msg = fmt.Sprintf("producer: %s gave up (%v): %d records failed, the first with: %v", e.Op, e.Err, e.Count, e.First)
	}
	return msg
}

// Unwrap returns Err.
func (e *FailedError) Unwrap() error { return e.Err }

// ErrInvalidConfig is matched (errors.Is) by every error New returns for a bad option or
// argument. It is one value shared by every Shardline package (consumer.ErrInvalidConfig,
// the checkpoint stores' and the metrics collectors' are the same), so one check covers them
// all.
var ErrInvalidConfig = cfgerr.ErrInvalidConfig

// ConfigError is the error New returns for a bad option, argument or combination of options:
// Package ("producer"), Option (the option function at fault, such as "WithLinger", or
// "client", "stream", "opts[2]" for a nil Option) and Reason. It matches ErrInvalidConfig.
// It is the same type in every Shardline package (consumer.ConfigError too), so one
// errors.As covers them all.
type ConfigError = cfgerr.ConfigError

// wrongShardError is the cause recorded for a user record that an aggregate carried to a
// shard whose hash-key range does not contain the record's own hash key.
type wrongShardError struct{ predicted, landed string }

func (e *wrongShardError) Error() string {
	return "producer: aggregate predicted for shard " + e.predicted + " landed on " + e.landed +
		", outside this record's hash-key range"
}

// IsRetryable reports whether err, from a Kinesis call or a record's outcome, may go away when
// the call is made again: throttling and limit-exceeded errors, InternalFailure, 5xx responses,
// network errors and timeouts, and ErrBufferFull (try again once records are delivered).
// Missing streams, denied access, invalid arguments, KMS key problems, bad credentials, records
// refused by validation and everything the producer itself gave up on (ErrClosed,
// RetryBudgetError, ErrMaybeWritten) are not.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var budget *RetryBudgetError
	if errors.As(err, &budget) || errors.Is(err, ErrClosed) || errors.Is(err, ErrMaybeWritten) || isValidationError(err) {
		return false
	}
	var entry *EntryError
	if errors.As(err, &entry) {
		return entry.Retryable()
	}
	return awserr.Retryable(err)
}

func isValidationError(err error) bool {
	for _, e := range []error{ErrEmptyPartitionKey, ErrPartitionKeyTooLong, ErrInvalidPartitionKey,
		ErrRecordTooLarge, ErrInvalidExplicitHashKey} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// isThrottle reports whether err says a shard or the account is over its limits.
func isThrottle(err error) bool {
	var entry *EntryError
	if errors.As(err, &entry) {
		return entry.Code == CodeThroughputExceeded
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		_, ok := retry.DefaultThrottleErrorCodes[api.ErrorCode()]
		return ok || api.ErrorCode() == "KMSThrottlingException"
	}
	return false
}

// errorType is the error_type metric label of err: the AWS error code when there is one, else
// a short class.
func errorType(err error) string {
	var entry *EntryError
	var budget *RetryBudgetError
	switch {
	case errors.As(err, &entry):
		return entry.Code
	case errors.As(err, &budget):
		return "retry_budget"
	case errors.Is(err, ErrClosed):
		return "closed"
	}
	return awserr.Label(err)
}
