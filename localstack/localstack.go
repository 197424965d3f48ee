// Package localstack hands tests a ready local AWS stack: Kinesis, DynamoDB and Redis on
// loopback, with a fresh stream, table or key prefix per test, removed when the test ends.
//
//	func TestSomething(t *testing.T) {
//		client := localstack.Kinesis(t) // skips (or fails in CI) without a stack
//		stream := localstack.NewStream(t, client, 4) // deleted when the test ends
//		p, err := producer.New(client, stream)
//		...
//	}
//
// It is a test helper: it imports testing and testcontainers-go. Programs load their AWS
// configuration with config.LoadDefaultConfig (which honours the AWS_ENDPOINT_URL_* variables
// localstack/up exports) and create their streams with package streams.
//
// Endpoints are resolved in this order:
//
//  1. Environment variables, as printed by localstack/up: AWS_ENDPOINT_URL_KINESIS,
//     AWS_ENDPOINT_URL_DYNAMODB (or one AWS_ENDPOINT_URL for real LocalStack), AWS_REGION,
//     credentials, and SHARDLINE_REDIS_URL. SHARDLINE_USE_AWS=1 uses the default AWS
//     configuration without any endpoint (real AWS; costs money).
//
//  2. A Docker engine that answers: LocalStack and Redis containers through testcontainers-go,
//     started once per test binary. The image is DefaultLocalStackImage, a tag that starts
//     without an auth token, unless SHARDLINE_LOCALSTACK_IMAGE names another;
//     LOCALSTACK_AUTH_TOKEN, when set, is passed to the container (newer tags exit without
//     it, and the error then quotes LocalStack's reason and says what to set).
//
//  3. Neither: the test is skipped with the command that starts the stack, or fails when
//     SHARDLINE_REQUIRE_INTEGRATION=1 (as in CI), so a run never passes by skipping.
package localstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/redis/go-redis/v9"

	"github.com/shardline/kinesis/streams"
)

// Environment variables this package reads.
const (
	EnvRequire   = "SHARDLINE_REQUIRE_INTEGRATION" // "1": a missing stack fails the test instead of skipping it
	EnvRedisURL  = "SHARDLINE_REDIS_URL"           // redis://[user:password@]host:port/db, rediss:// for TLS
	EnvCluster   = "SHARDLINE_REDIS_CLUSTER"       // host:port,host:port,...: seed nodes of a Redis Cluster
	EnvUseAWS    = "SHARDLINE_USE_AWS"             // "1": run against real AWS with the default configuration
	EnvEngine    = "SHARDLINE_KINESIS_ENGINE"      // set by localstack/up: kinesis-mock or kinesalite
	startCommand = `eval "$(localstack/up)"`
)

// Stack is a resolved set of endpoints.
type Stack struct {
	AWS      aws.Config
	Kinesis  string // Kinesis endpoint URL; "" for real AWS
	DynamoDB string // DynamoDB endpoint URL; "" for real AWS
	RedisURL string
	// Engine names what serves Kinesis: "kinesis-mock", "kinesalite", "localstack" or "aws".
	Engine string
}

var (
	stackOnce sync.Once
	stack     *Stack
	stackErr  error
)

// Get returns the stack, resolving it once per process. Tests normally call Kinesis, DynamoDB
// or Redis instead, which skip or fail when no stack is reachable.
func Get(ctx context.Context) (*Stack, error) {
	stackOnce.Do(func() { stack, stackErr = resolve(ctx) })
	return stack, stackErr
}

// errNoStack means neither the environment nor Docker offers a stack.
var errNoStack = errors.New("no local stack: neither AWS_ENDPOINT_URL_KINESIS/AWS_ENDPOINT_URL nor a Docker engine")

func resolve(ctx context.Context) (*Stack, error) {
	kin := firstEnv("AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL")
	ddb := firstEnv("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL")
	switch {
	case os.Getenv(EnvUseAWS) == "1":
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("localstack: load AWS config: %w", err)
		}
		return &Stack{AWS: cfg, RedisURL: os.Getenv(EnvRedisURL), Engine: "aws"}, nil
	case kin != "":
		cfg, err := LoadConfig(ctx, kin)
		if err != nil {
			return nil, err
		}
		engine := os.Getenv(EnvEngine)
		if engine == "" {
			engine = "localstack"
		}
		return &Stack{AWS: cfg, Kinesis: kin, DynamoDB: ddb, RedisURL: os.Getenv(EnvRedisURL), Engine: engine}, nil
	}
	return startContainers(ctx)
}

// LoadConfig loads the default AWS configuration (which honours AWS_ENDPOINT_URL_* and every
// other standard variable) for a test or tool that may run against the local stack or against
// AWS (programs call config.LoadDefaultConfig, with the environment localstack/up exports):
// region us-east-1 when none is set and, only when an endpoint is in play (endpoint, the
// explicit endpoint the caller will use, or an AWS_ENDPOINT_URL* variable) and no credentials
// are configured (AWS_ACCESS_KEY_ID, AWS_PROFILE), dummy credentials. Against AWS without an
// endpoint the SDK's own credential chain (roles, SSO) is left alone.
func LoadConfig(ctx context.Context, endpoint string) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if firstEnv("AWS_REGION", "AWS_DEFAULT_REGION") == "" {
		opts = append(opts, config.WithRegion("us-east-1"))
	}
	local := endpoint != "" || firstEnv("AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL") != ""
	if local && firstEnv("AWS_ACCESS_KEY_ID", "AWS_PROFILE") == "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("localstack: load AWS config: %w", err)
	}
	return cfg, nil
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// need returns the stack or ends the test: skipped normally, failed under EnvRequire.
func need(t testing.TB, what string, ok func(*Stack) bool) *Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s, err := Get(ctx)
	if err == nil && !ok(s) {
		err = fmt.Errorf("%s is not configured", what)
	}
	if err == nil {
		return s
	}
	msg := fmt.Sprintf("integration test needs %s: %v; start the stack with %s", what, err, startCommand)
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s (%s=1 forbids skipping)", msg, EnvRequire)
	}
	t.Skip(msg)
	return nil
}

// Require ends the test (skip, or fail under SHARDLINE_REQUIRE_INTEGRATION=1) unless Kinesis,
// DynamoDB and Redis are all reachable, and returns the stack.
func Require(t testing.TB) *Stack {
	t.Helper()
	return need(t, "Kinesis, DynamoDB and Redis", func(s *Stack) bool {
		return s.RedisURL != "" && (s.Engine == "aws" || (s.Kinesis != "" && s.DynamoDB != ""))
	})
}

// Kinesis returns a Kinesis client for the stack. optFns customise it, for example to
// install a fault-injecting HTTP client.
func Kinesis(t testing.TB, optFns ...func(*kinesis.Options)) *kinesis.Client {
	t.Helper()
	s := need(t, "Kinesis", func(s *Stack) bool { return s.Engine == "aws" || s.Kinesis != "" })
	return s.KinesisClient(optFns...)
}

// KinesisClient returns a Kinesis client for the stack.
func (s *Stack) KinesisClient(optFns ...func(*kinesis.Options)) *kinesis.Client {
	return kinesis.NewFromConfig(s.AWS, append([]func(*kinesis.Options){func(o *kinesis.Options) {
		if s.Kinesis != "" {
			o.BaseEndpoint = aws.String(s.Kinesis)
		}
	}}, optFns...)...)
}

// DynamoDB returns a DynamoDB client for the stack.
func DynamoDB(t testing.TB, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	t.Helper()
	s := need(t, "DynamoDB", func(s *Stack) bool { return s.Engine == "aws" || s.DynamoDB != "" })
	return s.DynamoDBClient(optFns...)
}

// DynamoDBClient returns a DynamoDB client for the stack.
func (s *Stack) DynamoDBClient(optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	return dynamodb.NewFromConfig(s.AWS, append([]func(*dynamodb.Options){func(o *dynamodb.Options) {
		if s.DynamoDB != "" {
			o.BaseEndpoint = aws.String(s.DynamoDB)
		}
	}}, optFns...)...)
}

// Redis returns a client for the stack's Redis, closed when the test ends.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	s := need(t, "Redis", func(s *Stack) bool { return s.RedisURL != "" })
	opt, err := redis.ParseURL(s.RedisURL)
	if err != nil {
		t.Fatalf("localstack: %s: %v", EnvRedisURL, err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("localstack: Redis at %s does not answer: %v", s.RedisURL, err)
		}
		t.Skipf("localstack: Redis at %s does not answer: %v; start the stack with %s", s.RedisURL, err, startCommand)
	}
	return c
}

// RedisCluster returns a client of the Redis Cluster named by SHARDLINE_REDIS_CLUSTER (which
// localstack/up starts on 127.0.0.1:7001-7003), closed when the test ends. Without one the
// test is skipped, or failed under SHARDLINE_REQUIRE_INTEGRATION=1.
func RedisCluster(t testing.TB) *redis.ClusterClient {
	t.Helper()
	addrs := os.Getenv(EnvCluster)
	if addrs == "" {
		msg := "integration test needs a Redis Cluster: " + EnvCluster + " is not set; start the stack with " + startCommand
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%s (%s=1 forbids skipping)", msg, EnvRequire)
		}
		t.Skip(msg)
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(addrs, ",")})
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("localstack: Redis Cluster at %s does not answer: %v", addrs, err)
	}
	return c
}

// RedisPrefix returns a key prefix unique to the test; every key under it is deleted when the
// test ends (on every master of a cluster).
func RedisPrefix(t testing.TB, c redis.UniversalClient) string {
	t.Helper()
	prefix := "shardline-test:" + UniqueName(t, "") + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		clean := func(ctx context.Context, node *redis.Client) error {
			iter := node.Scan(ctx, 0, escapeGlob(prefix)+"*", 500).Iterator()
			for iter.Next(ctx) {
				node.Del(ctx, iter.Val())
			}
			return iter.Err()
		}
		switch cc := c.(type) {
		case *redis.ClusterClient:
			_ = cc.ForEachMaster(ctx, clean)
		case *redis.Client:
			_ = clean(ctx, cc)
		}
	})
	return prefix
}

func escapeGlob(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)
	return r.Replace(s)
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// UniqueName returns prefix + the test's name + a random suffix, at most 100 characters of
// [a-zA-Z0-9_.-]: valid as a stream, table or key name.
func UniqueName(t testing.TB, prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := unsafeName.ReplaceAllString(t.Name(), "-")
	if len(name) > 80 {
		name = name[len(name)-80:]
	}
	return prefix + name + "-" + hex.EncodeToString(b[:])
}

// NewStream creates a stream with shards shards and a unique name, waits until it is ACTIVE,
// and deletes it when the test ends.
func NewStream(t testing.TB, client *kinesis.Client, shards int) string {
	t.Helper()
	name := UniqueName(t, "shardline-")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := CreateStream(ctx, client, name, shards); err != nil {
		t.Fatalf("localstack: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = client.DeleteStream(ctx, &kinesis.DeleteStreamInput{
			StreamName: aws.String(name), EnforceConsumerDeletion: aws.Bool(true),
		})
	})
	return name
}

// CreateStream creates stream with shards shards unless it exists, and waits until it is
// ACTIVE: it is streams.Ensure, which programs should call directly (this package imports
// testing and testcontainers-go; package streams imports only the AWS SDK).
func CreateStream(ctx context.Context, client *kinesis.Client, stream string, shards int) error {
	return streams.Ensure(ctx, client, stream, shards)
}

// NewTable calls create with a unique table name and deletes the table when the test ends.
// create is the store's own table-creation helper, so the schema stays in one place.
func NewTable(t testing.TB, client *dynamodb.Client, create func(ctx context.Context, table string) error) string {
	t.Helper()
	name := UniqueName(t, "shardline-")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := create(ctx, name); err != nil {
		t.Fatalf("localstack: create table %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	return name
}
