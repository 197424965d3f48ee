package dynamodb_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardline/kinesis/checkpoint"
	ddbstore "github.com/shardline/kinesis/checkpoint/dynamodb"
	"github.com/shardline/kinesis/localstack"
)

// TestNewValidates guards against a store built from bad configuration that fails later,
// at the first call deep inside a consumer, or panics: New refuses it with a ConfigError
// naming the option, which matches the ErrInvalidConfig every Shardline package shares (and
// not checkpoint.ErrInvalid, which is for bad call arguments).
func TestNewValidates(t *testing.T) {
	client := ddb.New(ddb.Options{Region: "us-east-1"})
	for _, tc := range []struct {
		name   string
		client ddbstore.API
		table  string
		opts   []ddbstore.Option
		option string
	}{
		{"nil client", nil, "table", nil, "client"},
		{"empty table", client, "", nil, "table"},
		{"short table", client, "ab", nil, "table"},
		{"table with a space", client, "my table", nil, "table"},
		{"table too long", client, strings.Repeat("t", 256), nil, "table"},
		{"negative timeout", client, "table", []ddbstore.Option{ddbstore.WithCallTimeout(-time.Second)}, "WithCallTimeout"},
		{"negative timeout, by the deprecated name", client, "table", []ddbstore.Option{ddbstore.WithOperationTimeout(-time.Second)}, "WithCallTimeout"},
		{"negative page limit", client, "table", []ddbstore.Option{ddbstore.WithPageLimit(-1)}, "WithPageLimit"},
		{"nil option", client, "table", []ddbstore.Option{nil}, "opts[0]"},
		{"nil API option", client, "table", []ddbstore.Option{ddbstore.WithAPIOptions(nil)}, "WithAPIOptions"},
	} {
		s, err := ddbstore.New(tc.client, tc.table, tc.opts...)
		var ce *ddbstore.ConfigError
		if !errors.Is(err, ddbstore.ErrInvalidConfig) || !errors.As(err, &ce) || ce.Option != tc.option ||
			ce.Package != "checkpoint/dynamodb" || errors.Is(err, checkpoint.ErrInvalid) || s != nil {
			t.Errorf("%s: New = %v, %v; want nil and a ConfigError for %s", tc.name, s, err, tc.option)
		}
	}
	s, err := ddbstore.New(client, "shardline.leases_v2-x", ddbstore.WithCallTimeout(time.Second))
	if err != nil || s.Table() != "shardline.leases_v2-x" {
		t.Errorf("New with a valid configuration = %v, %v", s, err)
	}
}

// countingAPI counts the Query calls that reach the client.
type countingAPI struct {
	ddbstore.API
	queries atomic.Int64
}

func (c *countingAPI) Query(ctx context.Context, in *ddb.QueryInput, optFns ...func(*ddb.Options)) (*ddb.QueryOutput, error) {
	c.queries.Add(1)
	return c.API.Query(ctx, in, optFns...)
}

// TestListPaginates guards against listings that return only the first Query page: with
// hundreds of shards (or a real table's 1 MB pages) a worker would not see some leases or
// workers, and balance on a wrong count. The page limit makes a few rows span several pages;
// the call count proves they did.
func TestListPaginates(t *testing.T) {
	client := localstack.DynamoDB(t)
	table := newTable(t, client)
	api := &countingAPI{API: client}
	s, err := ddbstore.New(api, table, ddbstore.WithPageLimit(3))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t)
	const group, stream, n = "g", "s", 10
	var wantShards, wantWorkers []string
	for i := range n {
		shard := fmt.Sprintf("shardId-%012d", i)
		if _, err := s.TakeLease(ctx, checkpoint.ShardKey{Group: group, Stream: stream, Shard: shard}, "w", 0); err != nil {
			t.Fatal(err)
		}
		wantShards = append(wantShards, shard)
		id := fmt.Sprintf("worker-%02d", i)
		if _, err := s.Heartbeat(ctx, checkpoint.Worker{Group: group, Stream: stream, ID: id, Instance: "i"}); err != nil {
			t.Fatal(err)
		}
		wantWorkers = append(wantWorkers, id)
	}
	// Rows of a neighbouring stream share no partition key with these.
	if _, err := s.TakeLease(ctx, checkpoint.ShardKey{Group: group, Stream: stream + "x", Shard: "shardId-000000000000"}, "w", 0); err != nil {
		t.Fatal(err)
	}

	api.queries.Store(0)
	leases, err := s.ListLeases(ctx, group, stream)
	if err != nil {
		t.Fatal(err)
	}
	var gotShards []string
	for _, l := range leases {
		gotShards = append(gotShards, l.Shard)
	}
	slices.Sort(gotShards)
	if !slices.Equal(gotShards, wantShards) {
		t.Errorf("ListLeases = %v, want %v", gotShards, wantShards)
	}
	if q := api.queries.Load(); q < n/3 {
		t.Errorf("ListLeases made %d Query calls for %d rows at 3 per page; pagination was not exercised", q, n)
	}

	workers, err := s.ListWorkers(ctx, group, stream)
	if err != nil {
		t.Fatal(err)
	}
	var gotWorkers []string
	for _, w := range workers {
		gotWorkers = append(gotWorkers, w.ID)
	}
	slices.Sort(gotWorkers)
	if !slices.Equal(gotWorkers, wantWorkers) {
		t.Errorf("ListWorkers = %v, want %v", gotWorkers, wantWorkers)
	}
}

// TestMissingTable guards against a mistyped table name, region or account read as "no
// checkpoint yet" (ErrNotFound), which would make every worker restart every shard from its
// start position, or as a transient ErrUnavailable that is retried forever without telling
// anyone: it must be ErrTableNotFound, with the SDK's exception reachable.
func TestMissingTable(t *testing.T) {
	client := localstack.DynamoDB(t)
	s, err := ddbstore.New(client, localstack.UniqueName(t, "missing-"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range everyMethod() {
		err := c.run(ctxFor(t), s)
		var rnf *types.ResourceNotFoundException
		switch {
		case errors.Is(err, checkpoint.ErrNotFound), errors.Is(err, checkpoint.ErrUnavailable):
			t.Errorf("%s on a missing table = %v, want ErrTableNotFound only", c.name, err)
		case !errors.Is(err, ddbstore.ErrTableNotFound) || !errors.As(err, &rnf):
			t.Errorf("%s on a missing table = %v, want ErrTableNotFound wrapping ResourceNotFoundException", c.name, err)
		}
	}
}

// TestCreateTable guards against a CreateTable that fails when the table exists (every
// worker calls it at start), that accepts a table of another layout (every call would then
// fail with a ValidationException at run time), or that returns before the table is usable.
func TestCreateTable(t *testing.T) {
	client := localstack.DynamoDB(t)
	ctx := ctxFor(t)
	table := newTable(t, client) // CreateTable once
	if err := ddbstore.CreateTable(ctx, client, table); err != nil {
		t.Fatalf("CreateTable of an existing table with the right schema: %v", err)
	}
	s, err := ddbstore.New(client, table)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Heartbeat(ctx, checkpoint.Worker{Group: "g", Stream: "s", ID: "w", Instance: "i"}); err != nil {
		t.Fatalf("the created table does not work: %v", err)
	}
	desc, err := client.DescribeTable(ctx, &ddb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	if bm := desc.Table.BillingModeSummary; bm == nil || bm.BillingMode != types.BillingModePayPerRequest {
		t.Errorf("billing mode %+v, want PAY_PER_REQUEST", bm)
	}

	for _, tc := range []struct {
		name  string
		attrs []types.AttributeDefinition
		keys  []types.KeySchemaElement
	}{
		{"hash key only",
			[]types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
			[]types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}}},
		{"numeric sort key",
			[]types.AttributeDefinition{
				{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS},
				{AttributeName: aws.String("sk"), AttributeType: types.ScalarAttributeTypeN}},
			[]types.KeySchemaElement{
				{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange}}},
		{"KCL layout",
			[]types.AttributeDefinition{{AttributeName: aws.String("leaseKey"), AttributeType: types.ScalarAttributeTypeS}},
			[]types.KeySchemaElement{{AttributeName: aws.String("leaseKey"), KeyType: types.KeyTypeHash}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			other := localstack.NewTable(t, client, func(ctx context.Context, name string) error {
				_, err := client.CreateTable(ctx, &ddb.CreateTableInput{
					TableName: aws.String(name), BillingMode: types.BillingModePayPerRequest,
					AttributeDefinitions: tc.attrs, KeySchema: tc.keys,
				})
				return err
			})
			err := ddbstore.CreateTable(ctx, client, other)
			if !errors.Is(err, ddbstore.ErrSchemaMismatch) {
				t.Errorf("CreateTable over a table with %s = %v, want ErrSchemaMismatch", tc.name, err)
			}
		})
	}

	if err := ddbstore.CreateTable(ctx, client, "no"); !errors.Is(err, checkpoint.ErrInvalid) {
		t.Errorf("CreateTable with an invalid name = %v, want ErrInvalid", err)
	}
}

// TestOutageThenRecovery guards against a store that is left broken by an outage (a cached
// failure, a poisoned connection), that loses or changes a lease while the store cannot be
// reached, or that answers any call during the outage with something other than
// ErrUnavailable: GetLease of an existing row must never say ErrNotFound, and a listing must
// never come back empty.
func TestOutageThenRecovery(t *testing.T) {
	client := localstack.DynamoDB(t)
	table := newTable(t, client)
	s, ft := newFaultyStore(t, table, 0, 1)
	direct, err := ddbstore.New(client, table)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t)
	key := checkpoint.ShardKey{Group: "g", Stream: "s", Shard: "shardId-000000000000"}
	l, err := s.TakeLease(ctx, key, "w1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Checkpoint(ctx, l, pos("100", 0)); err != nil {
		t.Fatal(err)
	}
	w := checkpoint.Worker{Group: "g", Stream: "s", ID: "w1", Instance: "i1"}
	if _, err := s.Heartbeat(ctx, w); err != nil {
		t.Fatal(err)
	}
	w.Counter = 1 // the row as the heartbeat left it
	before, err := direct.GetLease(ctx, key)
	if err != nil {
		t.Fatal(err)
	}

	ft.down.Store(true)
	calls := []call{
		{"GetLease", func(ctx context.Context, s *ddbstore.Store) error { _, err := s.GetLease(ctx, key); return err }},
		{"ListLeases", func(ctx context.Context, s *ddbstore.Store) error {
			ls, err := s.ListLeases(ctx, "g", "s")
			if err == nil && len(ls) == 0 {
				return errors.New("empty listing without an error")
			}
			return err
		}},
		{"TakeLease", func(ctx context.Context, s *ddbstore.Store) error {
			_, err := s.TakeLease(ctx, key, "w2", l.Counter)
			return err
		}},
		{"RenewLease", func(ctx context.Context, s *ddbstore.Store) error { _, err := s.RenewLease(ctx, l); return err }},
		{"Checkpoint", func(ctx context.Context, s *ddbstore.Store) error { return s.Checkpoint(ctx, l, pos("200", 0)) }},
		{"ReleaseLease", func(ctx context.Context, s *ddbstore.Store) error { return s.ReleaseLease(ctx, l, pos("300", 0)) }},
		{"RequestHandoff", func(ctx context.Context, s *ddbstore.Store) error {
			return s.RequestHandoff(ctx, key, "w1", "w2", l.Counter)
		}},
		{"DeleteLease", func(ctx context.Context, s *ddbstore.Store) error { return s.DeleteLease(ctx, key, l.Counter) }},
		{"Heartbeat", func(ctx context.Context, s *ddbstore.Store) error {
			_, err := s.Heartbeat(ctx, w)
			return err
		}},
		{"ListWorkers", func(ctx context.Context, s *ddbstore.Store) error {
			ws, err := s.ListWorkers(ctx, "g", "s")
			if err == nil && len(ws) == 0 {
				return errors.New("empty listing without an error")
			}
			return err
		}},
		{"RemoveWorker", func(ctx context.Context, s *ddbstore.Store) error { return s.RemoveWorker(ctx, w) }},
	}
	for _, c := range calls {
		wantUnavailable(t, c.name+" during the outage", c.run(ctx, s))
	}
	if after, err := direct.GetLease(ctx, key); err != nil || after != before {
		t.Errorf("during the outage the row changed from %+v to %+v (%v)", before, after, err)
	}

	ft.down.Store(false)
	r, err := s.RenewLease(ctx, l)
	if err != nil {
		t.Fatalf("RenewLease after the outage: %v (nothing reached DynamoDB, so the lease is still held)", err)
	}
	if err := s.Checkpoint(ctx, r, pos("200", 0)); err != nil {
		t.Fatalf("Checkpoint after the outage: %v", err)
	}
	if err := s.ReleaseLease(ctx, r, pos("300", 0)); err != nil {
		t.Fatalf("ReleaseLease after the outage: %v", err)
	}
	want := checkpoint.Lease{ShardKey: key, Counter: before.Counter + 2, Checkpoint: pos("300", 0)}
	if got, err := direct.GetLease(ctx, key); err != nil || got != want {
		t.Errorf("after recovery the row is %+v (%v), want %+v", got, err, want)
	}
	if ws, err := s.ListWorkers(ctx, "g", "s"); err != nil || len(ws) != 1 || ws[0] != w {
		t.Errorf("after recovery ListWorkers = %+v, %v; want [%+v]", ws, err, w)
	}
}
