package localstack_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/redis/go-redis/v9"

	"github.com/shardline/kinesis/localstack"
)

// Guards against a Kinesis engine that is up but unusable (wrong protocol, wrong port, stream
// never ACTIVE): a record put with the raw SDK must come back from its shard.
func TestKinesisSmoke(t *testing.T) {
	client := localstack.Kinesis(t)
	stream := localstack.NewStream(t, client, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	put, err := client.PutRecord(ctx, &kinesis.PutRecordInput{
		StreamName: aws.String(stream), PartitionKey: aws.String("smoke"), Data: []byte("hello"),
	})
	if err != nil {
		t.Fatalf("PutRecord: %v", err)
	}
	it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(stream), ShardId: put.ShardId,
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		t.Fatalf("GetShardIterator: %v", err)
	}
	got, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatalf("GetRecords: %v", err)
	}
	if len(got.Records) != 1 || string(got.Records[0].Data) != "hello" ||
		aws.ToString(got.Records[0].SequenceNumber) != aws.ToString(put.SequenceNumber) {
		t.Fatalf("GetRecords returned %+v, want the one record put", got.Records)
	}
}

// Guards against a DynamoDB engine whose conditional writes do not fail typed: the checkpoint
// stores' fencing depends on ConditionalCheckFailedException.
func TestDynamoDBSmoke(t *testing.T) {
	client := localstack.DynamoDB(t)
	table := localstack.NewTable(t, client, func(ctx context.Context, name string) error {
		_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            aws.String(name),
			BillingMode:          ddbtypes.BillingModePayPerRequest,
			AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
			KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: ddbtypes.KeyTypeHash}},
		})
		if err != nil {
			return err
		}
		return dynamodb.NewTableExistsWaiter(client).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, time.Minute)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	put := func() error {
		_, err := client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:           aws.String(table),
			Item:                map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "a"}},
			ConditionExpression: aws.String("attribute_not_exists(pk)"),
		})
		return err
	}
	if err := put(); err != nil {
		t.Fatalf("first conditional PutItem: %v", err)
	}
	var ccf *ddbtypes.ConditionalCheckFailedException
	if err := put(); !errors.As(err, &ccf) {
		t.Fatalf("second conditional PutItem = %v, want ConditionalCheckFailedException", err)
	}
}

// Guards against a Redis without scripting: the Redis store's compare-and-set is all Lua.
func TestRedisSmoke(t *testing.T) {
	c := localstack.Redis(t)
	prefix := localstack.RedisPrefix(t, c)
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING: %v", err)
	}
	cas := redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then redis.call("SET", KEYS[1], ARGV[2]) return 1 end
return 0`)
	key := prefix + "k"
	if err := c.Set(ctx, key, "old", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := cas.Run(ctx, c, []string{key}, "old", "new").Int(); err != nil || n != 1 {
		t.Fatalf("CAS with the right value = %d, %v; want 1", n, err)
	}
	if n, err := cas.Run(ctx, c, []string{key}, "old", "newer").Int(); err != nil || n != 0 {
		t.Fatalf("CAS with a stale value = %d, %v; want 0", n, err)
	}
	if v := c.Get(ctx, key).Val(); v != "new" {
		t.Fatalf("value = %q, want new", v)
	}
}
