package consumer

import (
	"errors"
	"fmt"

	"github.com/shardline/kinesis/internal/awserr"
	"github.com/shardline/kinesis/internal/cfgerr"
)

// ErrInvalidConfig is matched (errors.Is) by every error New returns for a bad option or
// argument, and by Run's for a nil handler. It is one value shared by every Shardline
// package (producer.ErrInvalidConfig, the checkpoint stores' and the metrics collectors' are
// the same), so one check covers them all.
var ErrInvalidConfig = cfgerr.ErrInvalidConfig

// ConfigError is the error New returns for a bad option, argument or combination of options:
// Package ("consumer"), Option (the option function at fault, such as "WithLeaseDuration",
// or "client", "stream", "store", "opts[2]" for a nil Option, "handler" for Run) and Reason.
// It matches ErrInvalidConfig. It is the same type in every Shardline package
// (producer.ConfigError too), so one errors.As covers them all.
type ConfigError = cfgerr.ConfigError

var (
	// ErrAlreadyRunning: Run was called on a Consumer that is running or has run.
	ErrAlreadyRunning = errors.New("consumer: Run called twice")
	// ErrNotHeld: a manual checkpoint was attempted for a shard whose lease this worker no
	// longer holds. It wraps checkpoint.ErrLeaseLost when the store said so.
	ErrNotHeld = errors.New("consumer: lease not held")
	// ErrForeignRecord: Batch.CheckpointRecord was given a record that is not in the batch.
	ErrForeignRecord = errors.New("consumer: record not in this batch")
	// ErrDuplicateWorker: another live process of the group uses this worker's ID and started
	// earlier. Run stops with a *DuplicateWorkerError that matches it.
	ErrDuplicateWorker = errors.New("consumer: another live process uses this worker ID")
)

// DuplicateWorkerError is returned by Run when another live process of the group heartbeats
// with the same worker ID and started earlier (see WithWorkerID). It matches
// ErrDuplicateWorker.
type DuplicateWorkerError struct {
	WorkerID string
	Instance string // this process's instance value (start time and random suffix)
	Other    string // the other process's instance value
}

func (e *DuplicateWorkerError) Error() string {
	return fmt.Sprintf("consumer: worker ID %q is used by another live process (instance %s, this one %s): give each process its own ID",
		e.WorkerID, e.Other, e.Instance)
}

// Is reports whether target is ErrDuplicateWorker.
func (e *DuplicateWorkerError) Is(target error) bool { return target == ErrDuplicateWorker }

// FinalCheckpointError is returned by Run when the final checkpoint of some shards could not
// be written at shutdown: the records handled after their last checkpoint will be delivered
// again to the next owner. Errs holds each shard's error.
type FinalCheckpointError struct {
	Shards []string // sorted
	Errs   map[string]error
}

func (e *FinalCheckpointError) Error() string {
	return fmt.Sprintf("consumer: progress of %d shard(s) not saved at shutdown %v: %v", len(e.Shards), e.Shards, e.Errs[e.Shards[0]])
}

// Unwrap returns the shards' errors, so errors.Is and errors.As reach the store's error.
func (e *FinalCheckpointError) Unwrap() []error {
	errs := make([]error, 0, len(e.Shards))
	for _, s := range e.Shards {
		errs = append(errs, e.Errs[s])
	}
	return errs
}

// HandlerError is returned by Run under the StopOnFailure policy when a handler kept failing
// on a batch after every retry. Nothing past the batch before it was checkpointed.
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

// FatalError wraps an error that retrying cannot fix, or that says the worker is
// misconfigured: from Kinesis (the stream does not exist, access denied, a KMS key disabled),
// from the checkpoint store (a missing DynamoDB table, a permission error, a store that cannot
// be reached when Run starts, or that stayed unreachable past WithMaxStoreOutage). Run stops
// with it; errors.As reaches the AWS or store error.
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
