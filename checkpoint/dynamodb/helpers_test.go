package dynamodb_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardline/kinesis/checkpoint"
	ddbstore "github.com/shardline/kinesis/checkpoint/dynamodb"
	"github.com/shardline/kinesis/localstack"
)

// newTable creates a table with CreateTable (so the tests use the schema users get) and
// deletes it when the test ends.
func newTable(t testing.TB, client *ddb.Client) string {
	t.Helper()
	return localstack.NewTable(t, client, func(ctx context.Context, name string) error {
		return ddbstore.CreateTable(ctx, client, name)
	})
}

// newStore returns a store on a fresh table of the local DynamoDB, the client it uses and
// the table name.
func newStore(t testing.TB, opts ...ddbstore.Option) (*ddbstore.Store, *ddb.Client, string) {
	t.Helper()
	client := localstack.DynamoDB(t)
	table := newTable(t, client)
	s, err := ddbstore.New(client, table, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, client, table
}

// ctxFor returns a context that ends with the test, bounded so a hang fails instead of
// stalling the run.
func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// rawRow reads the row at (pk, sk) with the given client, bypassing the store; nil when
// there is none.
func rawRow(t testing.TB, client *ddb.Client, table, pk, sk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := client.GetItem(ctxFor(t), &ddb.GetItemInput{
		TableName:      aws.String(table),
		ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: pk},
			"sk": &types.AttributeValueMemberS{Value: sk},
		},
	})
	if err != nil {
		t.Fatalf("direct GetItem(%q, %q): %v", pk, sk, err)
	}
	return out.Item
}

func sAttr(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func nAttr(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberN); ok {
		return v.Value
	}
	return ""
}

func pos(seq string, sub int64) checkpoint.Position {
	return checkpoint.Position{SequenceNumber: seq, SubSequenceNumber: sub}
}
