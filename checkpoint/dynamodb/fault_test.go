package dynamodb_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/shardline/kinesis/checkpoint"
	ddbstore "github.com/shardline/kinesis/checkpoint/dynamodb"
	"github.com/shardline/kinesis/localstack"
)

// offlineClient returns a DynamoDB client for endpoint that needs no environment, with the
// SDK's retries off so failures come back at once.
func offlineClient(endpoint string, httpClient ddb.HTTPClient) *ddb.Client {
	return ddb.New(ddb.Options{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint:     aws.String(endpoint),
		RetryMaxAttempts: 1,
		HTTPClient:       httpClient,
	})
}

// closedPort returns the URL of a loopback port that nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// call is one Store method with fixed arguments, named for messages.
type call struct {
	name string
	run  func(ctx context.Context, s *ddbstore.Store) error
}

// everyMethod calls each method of the Store once with valid arguments.
func everyMethod() []call {
	key := checkpoint.ShardKey{Group: "g", Stream: "s", Shard: "shardId-1"}
	lease := checkpoint.Lease{ShardKey: key, Owner: "w1", Token: "t1", Counter: 1}
	p := checkpoint.Position{SequenceNumber: "42"}
	return []call{
		{"GetLease", func(ctx context.Context, s *ddbstore.Store) error { _, err := s.GetLease(ctx, key); return err }},
		{"ListLeases", func(ctx context.Context, s *ddbstore.Store) error { _, err := s.ListLeases(ctx, "g", "s"); return err }},
		{"TakeLease", func(ctx context.Context, s *ddbstore.Store) error {
			_, err := s.TakeLease(ctx, key, "w1", 0)
			return err
		}},
		{"RenewLease", func(ctx context.Context, s *ddbstore.Store) error { _, err := s.RenewLease(ctx, lease); return err }},
		{"Checkpoint", func(ctx context.Context, s *ddbstore.Store) error { return s.Checkpoint(ctx, lease, p) }},
		{"ReleaseLease", func(ctx context.Context, s *ddbstore.Store) error { return s.ReleaseLease(ctx, lease, p) }},
		{"RequestHandoff", func(ctx context.Context, s *ddbstore.Store) error { return s.RequestHandoff(ctx, key, "w1", "w2", 1) }},
		{"DeleteLease", func(ctx context.Context, s *ddbstore.Store) error { return s.DeleteLease(ctx, key, 1) }},
		{"Heartbeat", func(ctx context.Context, s *ddbstore.Store) error {
			_, err := s.Heartbeat(ctx, checkpoint.Worker{Group: "g", Stream: "s", ID: "w1", Instance: "i1"})
			return err
		}},
		{"ListWorkers", func(ctx context.Context, s *ddbstore.Store) error { _, err := s.ListWorkers(ctx, "g", "s"); return err }},
		{"RemoveWorker", func(ctx context.Context, s *ddbstore.Store) error {
			return s.RemoveWorker(ctx, checkpoint.Worker{Group: "g", Stream: "s", ID: "w1", Counter: 1})
		}},
	}
}

// TestUnreachableIsUnavailable guards against the most damaging misreading a store can make:
// a read that failed reported as "no row" (ErrNotFound), which makes a consumer restart the
// shard from its start position, or any failure reported as a verdict (ErrLeaseLost,
// ErrConflict) the store cannot know. It also checks that errors.As still reaches the SDK's
// error, which STYLE requires for users who branch on it.
func TestUnreachableIsUnavailable(t *testing.T) {
	failing := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, errors.New("injected: network is down")
	})}
	for _, tc := range []struct {
		name   string
		client *ddb.Client
	}{
		{"closed loopback port", offlineClient(closedPort(t), nil)},
		{"failing transport", offlineClient("http://127.0.0.1:1", failing)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ddbstore.New(tc.client, "table")
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range everyMethod() {
				err := c.run(t.Context(), s)
				wantUnavailable(t, c.name, err)
				var opErr *smithy.OperationError
				if !errors.As(err, &opErr) || opErr.Service() != "DynamoDB" {
					t.Errorf("%s: errors.As does not reach the SDK's *smithy.OperationError: %v", c.name, err)
				}
			}
		})
	}
}

func wantUnavailable(t *testing.T, call string, err error) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s succeeded against an unreachable store", call)
	case errors.Is(err, checkpoint.ErrNotFound):
		t.Errorf("%s = %v: a failed call must never read as ErrNotFound", call, err)
	case !errors.Is(err, checkpoint.ErrUnavailable):
		t.Errorf("%s = %v, want an error matching ErrUnavailable", call, err)
	}
	for _, verdict := range []error{checkpoint.ErrLeaseLost, checkpoint.ErrConflict, checkpoint.ErrPositionBehind} {
		if errors.Is(err, verdict) {
			t.Errorf("%s = %v: a failed call must not claim %v", call, err, verdict)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestServerErrorsClassified guards against misclassifying DynamoDB's answers: throttling
// (which DynamoDB reports as a 400 client error) or a 5xx must say "retry later"
// (ErrUnavailable) and keep the typed exception reachable; a missing table is a
// configuration error, never ErrNotFound (every shard would restart from scratch against
// a mistyped table name); an authorisation or validation error is not something retrying
// fixes, so it must not hide behind ErrUnavailable either.
func TestServerErrorsClassified(t *testing.T) {
	type verdict int
	const (
		unavailable verdict = iota
		tableMissing
		configError
	)
	for _, tc := range []struct {
		status int
		code   string // "" sends no error type
		body   string
		want   verdict
		as     any // pointer to the typed exception errors.As must reach, or nil
	}{
		{400, "ProvisionedThroughputExceededException", "", unavailable, new(*types.ProvisionedThroughputExceededException)},
		{400, "ThrottlingException", "", unavailable, new(*types.ThrottlingException)},
		{400, "RequestLimitExceeded", "", unavailable, new(*types.RequestLimitExceeded)},
		{500, "InternalServerError", "", unavailable, new(*types.InternalServerError)},
		{503, "", "Service Unavailable", unavailable, nil},
		{429, "", "Too Many Requests", unavailable, nil},
		{200, "", "{not json", unavailable, nil},
		{400, "ResourceNotFoundException", "", tableMissing, new(*types.ResourceNotFoundException)},
		{400, "AccessDeniedException", "", configError, nil},
		{400, "ValidationException", "", configError, nil},
	} {
		name := fmt.Sprintf("%d %s", tc.status, tc.code)
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/x-amz-json-1.0")
				body := tc.body
				if tc.code != "" {
					w.Header().Set("X-Amzn-Errortype", tc.code)
					body = fmt.Sprintf(`{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":"injected"}`, tc.code)
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, body)
			}))
			defer srv.Close()
			s, err := ddbstore.New(offlineClient(srv.URL, nil), "table")
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range everyMethod() {
				err := c.run(t.Context(), s)
				if err == nil || errors.Is(err, checkpoint.ErrNotFound) {
					t.Errorf("%s = %v, want a failure that is not ErrNotFound", c.name, err)
					continue
				}
				switch tc.want {
				case unavailable:
					wantUnavailable(t, c.name, err)
				case tableMissing:
					if !errors.Is(err, ddbstore.ErrTableNotFound) || errors.Is(err, checkpoint.ErrUnavailable) {
						t.Errorf("%s = %v, want ErrTableNotFound and not ErrUnavailable", c.name, err)
					}
				case configError:
					var apiErr smithy.APIError
					if errors.Is(err, checkpoint.ErrUnavailable) || !errors.As(err, &apiErr) || apiErr.ErrorCode() != tc.code {
						t.Errorf("%s = %v, want the %s, not ErrUnavailable", c.name, err, tc.code)
					}
				}
				if tc.as != nil && !errors.As(err, tc.as) {
					t.Errorf("%s = %v: errors.As does not reach %T", c.name, err, tc.as)
				}
			}
		})
	}
}

// TestTimeoutIsUnavailable guards against a store that hangs on a server that accepted the
// connection but never answers (a renewal loop stuck there would let the lease expire while
// the worker keeps processing), and against reporting the timeout as anything but
// ErrUnavailable. It covers both bounds: the caller's context and WithCallTimeout.
func TestTimeoutIsUnavailable(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer srv.Close()
	defer close(stop) // runs before srv.Close, which waits for the handlers

	for _, tc := range []struct {
		name string
		opts []ddbstore.Option
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"caller deadline", nil, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 200*time.Millisecond)
		}},
		{"WithCallTimeout", []ddbstore.Option{ddbstore.WithCallTimeout(200 * time.Millisecond)},
			func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ddbstore.New(offlineClient(srv.URL, nil), "table", tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []call{everyMethod()[0], everyMethod()[4]} { // a read and a fenced write
				ctx, cancel := tc.ctx()
				start := time.Now()
				err := c.run(ctx, s)
				cancel()
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("%s took %v against a silent server, want about 200ms", c.name, d)
				}
				wantUnavailable(t, c.name, err)
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("%s = %v, want context.DeadlineExceeded reachable", c.name, err)
				}
			}
		})
	}
}

// faultyTransport fails a share of requests: half before they reach the server (nothing
// happened) and half after the server answered (the write happened, the answer is lost,
// the hardest case for a conditional protocol). down fails every request.
type faultyTransport struct {
	base *http.Transport
	down atomic.Bool

	mu   sync.Mutex
	rand func() float64
	rate float64

	before, after, passed atomic.Int64
}

var (
	errInjectedBefore = errors.New("injected: connection refused before the request was sent")
	errInjectedAfter  = errors.New("injected: connection reset after the server answered")
)

func (f *faultyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	x, rate := f.rand(), f.rate
	f.mu.Unlock()
	if f.down.Load() || x < rate/2 {
		f.before.Add(1)
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, errInjectedBefore
	}
	resp, err := f.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if x < rate {
		f.after.Add(1)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, errInjectedAfter
	}
	f.passed.Add(1)
	return resp, nil
}

// setRate changes the share of failed requests.
func (f *faultyTransport) setRate(rate float64) {
	f.mu.Lock()
	f.rate = rate
	f.mu.Unlock()
}

// newFaultyStore returns a store on table whose requests go through a faultyTransport
// failing rate of them, with the SDK retrying each call once at once (MaxAttempts 2, no
// backoff, no retry quota): the retry of an attempt whose answer was lost is exactly the
// case the conditional writes must survive.
func newFaultyStore(t *testing.T, table string, rate float64, seed uint64) (*ddbstore.Store, *faultyTransport) {
	t.Helper()
	ft := &faultyTransport{
		base: http.DefaultTransport.(*http.Transport).Clone(),
		rand: rand.New(rand.NewPCG(seed, 1)).Float64,
		rate: rate,
	}
	t.Cleanup(ft.base.CloseIdleConnections)
	client := localstack.DynamoDB(t, func(o *ddb.Options) {
		o.HTTPClient = &http.Client{Transport: ft}
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 2
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			so.RateLimiter = ratelimit.None
		})
	})
	s, err := ddbstore.New(client, table)
	if err != nil {
		t.Fatal(err)
	}
	return s, ft
}
