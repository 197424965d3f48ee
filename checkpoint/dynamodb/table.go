package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardline/kinesis/checkpoint"
)

// TableAPI is the part of the DynamoDB client that [CreateTable] calls. *dynamodb.Client
// satisfies it.
type TableAPI interface {
	CreateTable(ctx context.Context, params *ddb.CreateTableInput, optFns ...func(*ddb.Options)) (*ddb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, params *ddb.DescribeTableInput, optFns ...func(*ddb.Options)) (*ddb.DescribeTableOutput, error)
}

var _ TableAPI = (*ddb.Client)(nil)

// tableWait is the longest CreateTable waits for a table to become ACTIVE when ctx has no
// earlier deadline; DynamoDB usually takes seconds.
const tableWait = 10 * time.Minute

// CreateTable creates table with the layout a [Store] uses (partition key "pk" and sort key
// "sk", both strings, on-demand PAY_PER_REQUEST billing) and waits until it is ACTIVE. A
// table that already exists with that key schema is fine (nil), so every worker may call
// CreateTable at start; one with another key schema is an error matching
// [ErrSchemaMismatch]. It needs dynamodb:CreateTable and dynamodb:DescribeTable.
//
// CreateTable sets no TTL, no index and no stream: positions must never expire, and strongly
// consistent reads need the base table. Deletion protection and point-in-time recovery are
// worth turning on for production tables; do that with your infrastructure tooling.
func CreateTable(ctx context.Context, client TableAPI, table string) error {
	if client == nil {
		return opError("CreateTable", fmt.Errorf("%w: nil DynamoDB client", checkpoint.ErrInvalid))
	}
	if err := validateTable(table); err != nil {
		return opError("CreateTable", err)
	}
	_, err := client.CreateTable(ctx, &ddb.CreateTableInput{
		TableName:   aws.String(table),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrSK), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange},
		},
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("checkpoint/dynamodb: create table %s: %w", table, err)
	}
	w := ddb.NewTableExistsWaiter(client, func(o *ddb.TableExistsWaiterOptions) {
		o.MinDelay = 500 * time.Millisecond
		o.MaxDelay = 5 * time.Second
	})
	out, err := w.WaitForOutput(ctx, &ddb.DescribeTableInput{TableName: aws.String(table)}, tableWait)
	if err != nil {
		return fmt.Errorf("checkpoint/dynamodb: wait for table %s to be ACTIVE: %w", table, err)
	}
	return checkSchema(table, out.Table)
}

// checkSchema verifies that desc has the key schema CreateTable creates.
func checkSchema(table string, desc *types.TableDescription) error {
	if desc == nil {
		return fmt.Errorf("checkpoint/dynamodb: table %s: DescribeTable returned no description", table)
	}
	want := map[string]types.KeyType{attrPK: types.KeyTypeHash, attrSK: types.KeyTypeRange}
	ok := len(desc.KeySchema) == len(want)
	for _, k := range desc.KeySchema {
		ok = ok && want[aws.ToString(k.AttributeName)] == k.KeyType
	}
	for _, d := range desc.AttributeDefinitions {
		if _, key := want[aws.ToString(d.AttributeName)]; key && d.AttributeType != types.ScalarAttributeTypeS {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("%w: table %s has key schema %s; want pk (HASH, S), sk (RANGE, S)",
			ErrSchemaMismatch, table, describeSchema(desc))
	}
	return nil
}

func describeSchema(desc *types.TableDescription) string {
	attrTypes := make(map[string]types.ScalarAttributeType)
	for _, d := range desc.AttributeDefinitions {
		attrTypes[aws.ToString(d.AttributeName)] = d.AttributeType
	}
	s := ""
	for i, k := range desc.KeySchema {
		if i > 0 {
			s += ", "
		}
		name := aws.ToString(k.AttributeName)
		s += fmt.Sprintf("%s (%s, %s)", name, k.KeyType, attrTypes[name])
	}
	if s == "" {
		s = "(none)"
	}
	return s
}
