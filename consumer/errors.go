package consumer

import (
	"errors"
	"fmt"

	"github.com/shardline/kinesis/internal/awserr"
)

var (
	// ErrInvalidConfig wraps every configuration error New returns.
	ErrInvalidConfig = errors.New("consumer: invalid configuration")
	// ErrAlreadyRunning: Run was called on a Consumer that is running or has run.
	ErrAlreadyRunning = errors.New("consumer: Run called twice")
	// ErrNotHeld: a manual checkpoint was attempted for a shard whose lease this worker no
	// longer holds. It wraps checkpoint.ErrLeaseLost when the store said so.
	ErrNotHeld = errors.New("consumer: lease not held")
)

// HandlerError is returned by Run when a handler kept failing on a batch after every retry.
// Nothing past the batch before it was checkpointed.
type HandlerError struct {
	Shard          string
	SequenceNumber string // first record of the failed batch
	Attempts       int
	Err            error // the handler's last error
}

func (e *HandlerError) Error() string {
	return fmt.Sprintf("consumer: handler failed %d times on shard %s at sequence %s: %v",
		e.Attempts, e.Shard, e.SequenceNumber, e.Err)
}

// Unwrap returns the handler's error.
func (e *HandlerError) Unwrap() error { return e.Err }

// DecodeError is returned by Run under DecodePolicy DecodeStop when a record carries the KPL
// magic and checksum but does not parse.
type DecodeError struct {
	Shard          string
	SequenceNumber string
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("consumer: malformed aggregated record on shard %s at sequence %s", e.Shard, e.SequenceNumber)
}

// FatalError wraps an error from Kinesis that retrying cannot fix (the stream does not
// exist, access denied, a KMS key disabled); Run stops with it.
type FatalError struct {
	Op  string
	Err error
}

func (e *FatalError) Error() string { return fmt.Sprintf("consumer: %s: %v", e.Op, e.Err) }

// Unwrap returns the Kinesis error.
func (e *FatalError) Unwrap() error { return e.Err }

// IsRetryable reports whether a Kinesis read error is worth retrying: throttling, expired
// iterators, service and network failures. Configuration and permission errors are not.
func IsRetryable(err error) bool { return awserr.Retryable(err) }

// errorType is the error_type label of err: the AWS error code when there is one, else a
// short class.
func errorType(err error) string { return awserr.Label(err) }
