package consumer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	goredis "github.com/redis/go-redis/v9"

	"github.com/shardline/kinesis/checkpoint"
	ddbstore "github.com/shardline/kinesis/checkpoint/dynamodb"
	redisstore "github.com/shardline/kinesis/checkpoint/redis"
	"github.com/shardline/kinesis/localstack"
)

// deniedTransport answers every Kinesis call as IAM does for a principal without permission.
type deniedTransport struct{}

func (deniedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	body := `{"__type":"AccessDeniedException","message":"User: arn:aws:iam::000000000000:user/test is not authorized to perform: kinesis:ListShards"}`
	return &http.Response{StatusCode: 400, Status: "400 Bad Request", Request: req, ContentLength: int64(len(body)),
		Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}}, Body: io.NopCloser(bytes.NewReader([]byte(body)))}, nil
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// Guards against issue 8, item 7 on the real engines: a missing stream, a missing DynamoDB
// table, a wrong Redis address or denied access made the consumer retry silently until its
// context ended, then return nil. Each now fails Run within seconds with a *FatalError that
// reaches the AWS or Redis cause.
func TestIntegrationMisconfigurationFailsFast(t *testing.T) {
	kc := localstack.Kinesis(t)
	stream := localstack.NewStream(t, kc, 1)
	redisOK := func(t *testing.T) checkpoint.Store {
		return redisStore(t, localstack.RedisPrefix(t, localstack.Redis(t)))
	}
	for _, tc := range []struct {
		name   string
		client func(t *testing.T) API
		stream string
		store  func(t *testing.T) checkpoint.Store
		check  func(error) bool
	}{
		{
			name:   "missing stream",
			client: func(t *testing.T) API { return kc },
			stream: stream + "-missing",
			store:  redisOK,
			check: func(err error) bool {
				var nf *types.ResourceNotFoundException
				return errors.As(err, &nf)
			},
		},
		{
			name:   "missing DynamoDB table",
			client: func(t *testing.T) API { return kc },
			stream: stream,
			store: func(t *testing.T) checkpoint.Store {
				s, err := ddbstore.New(localstack.DynamoDB(t), localstack.UniqueName(t, "missing"))
				if err != nil {
					t.Fatal(err)
				}
				return s
			},
			check: func(err error) bool { return errors.Is(err, ddbstore.ErrTableNotFound) },
		},
		{
			name:   "wrong Redis address",
			client: func(t *testing.T) API { return kc },
			stream: stream,
			store: func(t *testing.T) checkpoint.Store {
				rc := goredis.NewClient(&goredis.Options{Addr: closedAddr(t), MaxRetries: 1, DialTimeout: time.Second})
				t.Cleanup(func() { _ = rc.Close() })
				s, err := redisstore.New(rc)
				if err != nil {
					t.Fatal(err)
				}
				return s
			},
			check: func(err error) bool {
				var op *net.OpError
				return errors.Is(err, checkpoint.ErrUnavailable) && errors.As(err, &op)
			},
		},
		{
			name: "access denied",
			client: func(t *testing.T) API {
				return localstack.Kinesis(t, func(o *kinesis.Options) { o.HTTPClient = &http.Client{Transport: deniedTransport{}} })
			},
			stream: stream,
			store:  redisOK,
			check: func(err error) bool {
				var api smithy.APIError
				return errors.As(err, &api) && api.ErrorCode() == "AccessDeniedException"
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.client(t), tc.stream, tc.store(t), itOptions("w")...)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			start := time.Now()
			err = c.Run(ctx, func(context.Context, *Batch) error { return nil })
			took := time.Since(start)
			var fe *FatalError
			if !errors.As(err, &fe) || !tc.check(err) {
				t.Fatalf("Run = %v, want a *FatalError reaching the cause", err)
			}
			if took > 10*time.Second {
				t.Errorf("Run failed after %v, want within seconds", took)
			}
			t.Logf("%v: %v", took.Round(time.Millisecond), err)
		})
	}
}
