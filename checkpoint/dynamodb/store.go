package dynamodb

import (
	"context"
	"fmt"
	"regexp"

	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/internal/cfgerr"
)

// API is the part of the DynamoDB client that a [Store] calls. *dynamodb.Client satisfies it;
// tests and wrappers (metrics, fault injection) may plug in their own.
type API interface {
	GetItem(ctx context.Context, params *ddb.GetItemInput, optFns ...func(*ddb.Options)) (*ddb.GetItemOutput, error)
	UpdateItem(ctx context.Context, params *ddb.UpdateItemInput, optFns ...func(*ddb.Options)) (*ddb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, params *ddb.DeleteItemInput, optFns ...func(*ddb.Options)) (*ddb.DeleteItemOutput, error)
	Query(ctx context.Context, params *ddb.QueryInput, optFns ...func(*ddb.Options)) (*ddb.QueryOutput, error)
}

var _ API = (*ddb.Client)(nil)

// Store is a [checkpoint.Store] on one DynamoDB table. It is safe for concurrent use, holds
// no connections of its own and starts no goroutines: every method makes its DynamoDB calls
// (one, one per page for the listings, plus a consistent read after some refused writes) on
// the caller's goroutine.
type Store struct {
	client API
	table  string
	cfg    config
}

var _ checkpoint.Store = (*Store)(nil)

// tableName is DynamoDB's rule for table names.
var tableName = regexp.MustCompile(`^[a-zA-Z0-9_.-]{3,255}$`)

const tableRule = "DynamoDB wants 3 to 255 characters of a-z, A-Z, 0-9, '_', '-' and '.'"

func validateTable(table string) error {
	if !tableName.MatchString(table) {
		return fmt.Errorf("%w: table name %q: %s", checkpoint.ErrInvalid, table, tableRule)
	}
	return nil
}

// New returns a Store that keeps its rows in table, which must exist with the layout that
// [CreateTable] creates. New makes no call to DynamoDB; a missing table shows as
// [ErrTableNotFound] on the first call. A nil client, a table name DynamoDB would refuse or a
// bad option, a nil Option included, is a [*ConfigError] naming it, which matches
// [ErrInvalidConfig].
func New(client API, table string, opts ...Option) (*Store, error) {
	if client == nil {
		return nil, cfgerr.New(pkgName, "client", "nil DynamoDB client")
	}
	if !tableName.MatchString(table) {
		return nil, cfgerr.New(pkgName, "table", "%q: %s", table, tableRule)
	}
	cfg := defaultConfig()
	if err := cfgerr.Apply(pkgName, &cfg, opts); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Store{client: client, table: table, cfg: cfg}, nil
}

// Table returns the name of the store's table.
func (s *Store) Table() string { return s.table }

// call bounds ctx by the configured call timeout (WithCallTimeout).
func (s *Store) call(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.cfg.timeout > 0 {
		return context.WithTimeout(ctx, s.cfg.timeout)
	}
	return ctx, func() {}
}
