package redis

import (
	"context"
	"fmt"
	"reflect"

	goredis "github.com/redis/go-redis/v9"

	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/internal/cfgerr"
)

// Store is a [checkpoint.Store] kept in Redis. It is safe for concurrent use. It does not own
// the client: closing the client is the caller's job, and a Store needs no Close of its own.
type Store struct {
	client goredis.UniversalClient
	keys   keyspace
}

var _ checkpoint.Store = (*Store)(nil)

// New returns a Store that keeps its rows through client: a *goredis.Client (standalone, or
// sentinel-backed from goredis.NewFailoverClient), a *goredis.ClusterClient, or whatever
// goredis.NewUniversalClient returns. Addresses, TLS, AUTH/ACL credentials, timeouts and
// retries are the client's options. New does no I/O; the first call reaches the server. A nil
// client or a bad option, a nil Option included, is a [*ConfigError] naming it, which matches
// [ErrInvalidConfig].
func New(client goredis.UniversalClient, opts ...Option) (*Store, error) {
	if client == nil || isNilPointer(client) {
		return nil, cfgerr.New(pkgName, "client", "nil Redis client")
	}
	cfg := defaultConfig()
	if err := cfgerr.Apply(pkgName, &cfg, opts); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Store{client: client, keys: newKeyspace(cfg.prefix)}, nil
}

// isNilPointer catches a typed nil such as (*goredis.Client)(nil), which is a non-nil
// interface value that would panic on first use.
func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// run runs script and returns its reply after the status code. A status other than codeOK
// comes back as the contract's error (ErrLeaseLost, ErrConflict, ErrPositionBehind).
func (s *Store) run(ctx context.Context, op string, script *goredis.Script, keys []string, args ...any) ([]any, error) {
	reply, err := script.Run(ctx, s.client, keys, args...).Slice()
	if err != nil {
		return nil, backendError(op, err)
	}
	if len(reply) == 0 {
		return nil, fmt.Errorf("checkpoint/redis: %s: empty script reply", op)
	}
	code, ok := reply[0].(int64)
	if !ok {
		return nil, fmt.Errorf("checkpoint/redis: %s: script status %T, want an integer", op, reply[0])
	}
	if err := statusError(op, code); err != nil {
		return nil, err
	}
	return reply[1:], nil
}

// validateGroupStream checks the arguments of the List methods with the same messages as
// checkpoint.ShardKey.Validate.
func validateGroupStream(op, group, stream string) error {
	switch {
	case group == "":
		return fmt.Errorf("checkpoint/redis: %s: %w: empty consumer group", op, checkpoint.ErrInvalid)
	case stream == "":
		return fmt.Errorf("checkpoint/redis: %s: %w: empty stream name", op, checkpoint.ErrInvalid)
	}
	return nil
}

// wrap prefixes an argument error with the package and operation.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("checkpoint/redis: %s: %w", op, err)
}
