package checkpoint

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound: the store has no row for the key. It never stands for a failed read.
	ErrNotFound = errors.New("checkpoint: not found")
	// ErrLeaseLost: the caller no longer holds the lease (another worker took it, or it was
	// released). The write changed nothing; the caller must stop working on the shard.
	ErrLeaseLost = errors.New("checkpoint: lease lost")
	// ErrConflict: the row changed since the caller read it (another worker took, renewed or
	// released it first). The write changed nothing.
	ErrConflict = errors.New("checkpoint: conflict")
	// ErrPositionBehind: the position is behind the stored one; positions never move back.
	ErrPositionBehind = errors.New("checkpoint: position behind the stored checkpoint")
	// ErrUnavailable: the store could not be reached or did not answer. Nothing can be said
	// about the row; retry later.
	ErrUnavailable = errors.New("checkpoint: store unavailable")
	// ErrInvalid: an argument is malformed (empty group, stream, shard, worker or worker
	// instance, or a position that is not a decimal sequence number).
	ErrInvalid = errors.New("checkpoint: invalid argument")
)

// UnavailableError wraps a backend failure (connection refused, timeout, throttling) so that
// errors.Is(err, ErrUnavailable) holds while errors.As still reaches the backend's own error.
type UnavailableError struct {
	Op  string // the store operation, such as "Checkpoint"
	Err error  // the backend error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("checkpoint: %s: store unavailable: %v", e.Op, e.Err)
}

// Unwrap returns the backend error.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Is reports whether target is ErrUnavailable.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Unavailable returns an *UnavailableError for op, or nil when err is nil.
func Unavailable(op string, err error) error {
	if err == nil {
		return nil
	}
	return &UnavailableError{Op: op, Err: err}
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// Validate returns an error matching ErrInvalid when a field of k is empty.
func (k ShardKey) Validate() error {
	switch {
	case k.Group == "":
		return invalid("empty consumer group")
	case k.Stream == "":
		return invalid("empty stream name")
	case k.Shard == "":
		return invalid("empty shard ID")
	}
	return nil
}

// ValidateHeartbeat returns an error matching ErrInvalid when the group, stream, ID or
// instance of w is empty: the arguments that [Workers.Heartbeat] refuses. Its counter is not
// looked at.
func ValidateHeartbeat(w Worker) error {
	if err := ValidateWorker(w.Group, w.Stream, w.ID); err != nil {
		return err
	}
	if w.Instance == "" {
		return invalid("empty worker instance")
	}
	return nil
}

// ValidateWorker returns an error matching ErrInvalid when group, stream or worker is empty.
func ValidateWorker(group, stream, worker string) error {
	switch {
	case group == "":
		return invalid("empty consumer group")
	case stream == "":
		return invalid("empty stream name")
	case worker == "":
		return invalid("empty worker ID")
	}
	return nil
}
