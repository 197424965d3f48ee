package checkpoint_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/shardline/kinesis/checkpoint"
)

// TestUnavailableError guards against an UnavailableError that errors.Is cannot match once
// wrapped, or that hides the backend's own error from errors.As (callers need both: the
// sentinel to retry, the backend error to log or classify).
func TestUnavailableError(t *testing.T) {
	backend := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	err := fmt.Errorf("consumer: renew: %w", checkpoint.Unavailable("RenewLease", backend))

	if !errors.Is(err, checkpoint.ErrUnavailable) {
		t.Errorf("errors.Is(%v, ErrUnavailable) = false", err)
	}
	for _, other := range []error{checkpoint.ErrNotFound, checkpoint.ErrLeaseLost, checkpoint.ErrConflict, checkpoint.ErrPositionBehind, checkpoint.ErrInvalid} {
		if errors.Is(err, other) {
			t.Errorf("errors.Is(%v, %v) = true", err, other)
		}
	}
	var ue *checkpoint.UnavailableError
	if !errors.As(err, &ue) || ue.Op != "RenewLease" || ue.Err != backend {
		t.Errorf("errors.As(%v, *UnavailableError) = %v, %+v", err, ue != nil, ue)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe != backend {
		t.Errorf("errors.As(%v, *net.OpError) did not reach the backend error", err)
	}
	if msg := ue.Error(); !strings.HasPrefix(msg, "checkpoint: RenewLease:") || !strings.Contains(msg, "connection refused") {
		t.Errorf("Error() = %q, want the package prefix, the operation and the backend error", msg)
	}
}

// TestUnavailableContext guards against a cancelled context that callers cannot tell from an
// outage: both sentinels must match.
func TestUnavailableContext(t *testing.T) {
	err := checkpoint.Unavailable("GetLease", context.Canceled)
	if !errors.Is(err, checkpoint.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("%v matches ErrUnavailable %v, context.Canceled %v; want both", err,
			errors.Is(err, checkpoint.ErrUnavailable), errors.Is(err, context.Canceled))
	}
}

// TestUnavailableNil guards against Unavailable returning a typed nil pointer inside a non-nil
// error interface, which would turn every success into a failure.
func TestUnavailableNil(t *testing.T) {
	if err := checkpoint.Unavailable("GetLease", nil); err != nil {
		t.Errorf("Unavailable(op, nil) = %#v, want nil", err)
	}
}

// TestSentinelMessages guards against messages without the package prefix (STYLE: errors say
// where they come from) and against two sentinels that are the same error.
func TestSentinelMessages(t *testing.T) {
	all := []error{checkpoint.ErrNotFound, checkpoint.ErrLeaseLost, checkpoint.ErrConflict,
		checkpoint.ErrPositionBehind, checkpoint.ErrUnavailable, checkpoint.ErrInvalid}
	for i, err := range all {
		if !strings.HasPrefix(err.Error(), "checkpoint: ") {
			t.Errorf("%q lacks the package prefix", err)
		}
		for _, other := range all[i+1:] {
			if errors.Is(err, other) {
				t.Errorf("%q matches %q", err, other)
			}
		}
	}
}

// TestValidateNames guards against empty names passing validation: their rows would collide
// once a store joins names into keys.
func TestValidateNames(t *testing.T) {
	for _, k := range []checkpoint.ShardKey{
		{Stream: "s", Shard: "x"},
		{Group: "g", Shard: "x"},
		{Group: "g", Stream: "s"},
	} {
		if err := k.Validate(); !errors.Is(err, checkpoint.ErrInvalid) || !strings.HasPrefix(err.Error(), "checkpoint: ") {
			t.Errorf("%+v.Validate() = %v, want a checkpoint error matching ErrInvalid", k, err)
		}
	}
	if err := (checkpoint.ShardKey{Group: "g", Stream: "s", Shard: "x"}).Validate(); err != nil {
		t.Errorf("Validate of a full key = %v", err)
	}
	for _, w := range [][3]string{{"", "s", "w"}, {"g", "", "w"}, {"g", "s", ""}} {
		if err := checkpoint.ValidateWorker(w[0], w[1], w[2]); !errors.Is(err, checkpoint.ErrInvalid) {
			t.Errorf("ValidateWorker(%q, %q, %q) = %v, want an error matching ErrInvalid", w[0], w[1], w[2], err)
		}
	}
	if err := checkpoint.ValidateWorker("g", "s", "w"); err != nil {
		t.Errorf("ValidateWorker of full names = %v", err)
	}
	full := checkpoint.Worker{Group: "g", Stream: "s", ID: "w", Instance: "i"}
	if err := checkpoint.ValidateHeartbeat(full); err != nil {
		t.Errorf("ValidateHeartbeat(%+v) = %v", full, err)
	}
	for _, blank := range []func(*checkpoint.Worker){
		func(w *checkpoint.Worker) { w.Group = "" },
		func(w *checkpoint.Worker) { w.Stream = "" },
		func(w *checkpoint.Worker) { w.ID = "" },
		func(w *checkpoint.Worker) { w.Instance = "" },
	} {
		w := full
		blank(&w)
		if err := checkpoint.ValidateHeartbeat(w); !errors.Is(err, checkpoint.ErrInvalid) || !strings.HasPrefix(err.Error(), "checkpoint: ") {
			t.Errorf("ValidateHeartbeat(%+v) = %v, want a checkpoint error matching ErrInvalid", w, err)
		}
	}
}
