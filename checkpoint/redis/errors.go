package redis

import (
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/shardline/kinesis/checkpoint"
)

// Operation names carried by errors (checkpoint.UnavailableError.Op and messages).
const (
	opGetLease       = "GetLease"
	opListLeases     = "ListLeases"
	opTakeLease      = "TakeLease"
	opRenewLease     = "RenewLease"
	opCheckpoint     = "Checkpoint"
	opReleaseLease   = "ReleaseLease"
	opRequestHandoff = "RequestHandoff"
	opDeleteLease    = "DeleteLease"
	opHeartbeat      = "Heartbeat"
	opListWorkers    = "ListWorkers"
	opRemoveWorker   = "RemoveWorker"
)

// backendError classifies an error of the Redis client. Anything that is not a reply of the
// server (connection refused or reset, timeouts, a closed or exhausted pool, a cancelled
// context) means the server could not answer: it becomes a checkpoint.UnavailableError, which
// still unwraps to the go-redis error and to context.Canceled or DeadlineExceeded. Server
// replies that say "try again" (LOADING, READONLY, MASTERDOWN, CLUSTERDOWN, TRYAGAIN, BUSY,
// NOREPLICAS, OOM, max clients) are unavailability too. Other server errors (WRONGTYPE from a
// foreign key under the prefix, NOPERM, NOAUTH) are permanent and returned wrapped as they
// are. No error ever becomes checkpoint.ErrNotFound: a failed read says nothing about the row.
func backendError(op string, err error) error {
	var reply goredis.Error
	if !errors.As(err, &reply) || transient(err) {
		return checkpoint.Unavailable(op, err)
	}
	return fmt.Errorf("checkpoint/redis: %s: %w", op, err)
}

func transient(err error) bool {
	return goredis.IsLoadingError(err) || goredis.IsReadOnlyError(err) ||
		goredis.IsMasterDownError(err) || goredis.IsClusterDownError(err) ||
		goredis.IsTryAgainError(err) || goredis.IsMaxClientsError(err) ||
		goredis.IsOOMError(err) || goredis.IsNoReplicasError(err) ||
		goredis.HasErrorPrefix(err, "BUSY")
}

// statusError turns a script's status code into the contract's error.
func statusError(op string, code int64) error {
	switch code {
	case codeOK:
		return nil
	case codeLost:
		return fmt.Errorf("checkpoint/redis: %s: %w", op, checkpoint.ErrLeaseLost)
	case codeConflict:
		return fmt.Errorf("checkpoint/redis: %s: %w", op, checkpoint.ErrConflict)
	case codeBehind:
		return fmt.Errorf("checkpoint/redis: %s: %w", op, checkpoint.ErrPositionBehind)
	}
	return fmt.Errorf("checkpoint/redis: %s: unexpected script status %d", op, code)
}
