package kinesisproxy_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/goleak"

	"github.com/shardline/kinesis/localstack"
	"github.com/shardline/kinesis/localstack/kinesisproxy"
)

// Every goroutine the proxy starts must be gone once Close returns (and every client
// transport the tests open is closed in a cleanup, so this checks the proxy).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ownedHTTP returns an HTTP client whose idle connections are closed when the test ends.
func ownedHTTP(t testing.TB) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 32}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// direct returns a client that talks to the engine itself, for set-up and for checking
// what the upstream really holds.
func direct(t testing.TB) *kinesis.Client {
	return localstack.Kinesis(t, func(o *kinesis.Options) { o.HTTPClient = ownedHTTP(t) })
}

// startProxy starts a proxy in front of the test stack's Kinesis, closed when the test
// ends. Against real AWS (SHARDLINE_USE_AWS=1) it re-signs with the stack's credentials.
func startProxy(t testing.TB, cfg kinesisproxy.Config) *kinesisproxy.Proxy {
	t.Helper()
	localstack.Kinesis(t) // skips (or fails under SHARDLINE_REQUIRE_INTEGRATION) without a stack
	s, err := localstack.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Upstream == "" {
		cfg.Upstream = s.Kinesis
		if s.Kinesis == "" {
			cfg.Upstream = "https://kinesis." + s.AWS.Region + ".amazonaws.com"
			cfg.Resign = &kinesisproxy.ResignConfig{Credentials: s.AWS.Credentials, Region: s.AWS.Region}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := kinesisproxy.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// via returns a client that talks through p, without SDK retries unless retries is set, so
// that each call shows what the proxy answered. Retries are the SDK's standard ones (three
// attempts, its own choice of what to retry) with short back-offs to keep tests fast.
func via(t testing.TB, p *kinesisproxy.Proxy, retries bool) *kinesis.Client {
	return localstack.Kinesis(t, func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(p.URL())
		o.HTTPClient = ownedHTTP(t)
		o.Retryer = aws.NopRetryer{}
		if retries {
			o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) { so.MaxBackoff = 20 * time.Millisecond })
		}
	})
}

// limits returns Kinesis's limits with the given changes, to keep tests small and fast.
func limits(change func(*kinesisproxy.Limits)) kinesisproxy.Limits {
	l := kinesisproxy.DefaultLimits()
	if change != nil {
		change(&l)
	}
	return l
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// entries returns n PutRecords entries of size bytes of data under keys prefix-0...
func entries(prefix string, n, size int) []types.PutRecordsRequestEntry {
	out := make([]types.PutRecordsRequestEntry, n)
	for i := range out {
		out[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("%s-%d", prefix, i)), Data: make([]byte, size)}
	}
	return out
}

// readShard returns every record in shard, read straight from the engine.
func readShard(t testing.TB, c *kinesis.Client, stream, shard string) []types.Record {
	t.Helper()
	ctx := ctxFor(t, 30*time.Second)
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(stream), ShardId: aws.String(shard), ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		t.Fatalf("GetShardIterator: %v", err)
	}
	var out []types.Record
	iter := it.ShardIterator
	for range 100 {
		r, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			t.Fatalf("GetRecords: %v", err)
		}
		out = append(out, r.Records...)
		if len(r.Records) == 0 || r.NextShardIterator == nil {
			return out
		}
		iter = r.NextShardIterator
	}
	t.Fatal("readShard: more than 100 pages")
	return nil
}

const shard0 = "shardId-000000000000"
