package producer

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// scripted is a fakeKinesis whose PutRecords calls can be replaced one by one: step returns
// what call number call does instead of reaching the fake (nil: the fake answers).
type scripted struct {
	*fakeKinesis
	mu   sync.Mutex
	n    int
	step func(ctx context.Context, call int) error
}

func (s *scripted) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	s.mu.Lock()
	call := s.n
	s.n++
	s.mu.Unlock()
	if err := s.step(ctx, call); err != nil {
		return nil, err
	}
	return s.fakeKinesis.PutRecords(ctx, in, optFns...)
}

func httpError(status int, code string) error {
	fault := smithy.FaultClient
	if status >= 500 {
		fault = smithy.FaultServer
	}
	return &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
		Err:      &smithy.GenericAPIError{Code: code, Message: "injected", Fault: fault},
	}
}

// Guards against a failed record whose request may have reached Kinesis being reported as
// surely not written, or the other way round (issue 8, item 3): ErrMaybeWritten must match
// every failed record that any attempt with an unknown result carried (a timeout, a connection
// broken after sending, a 5xx answer), sticky over later attempts, and no record that Kinesis
// surely did not store (entry error codes, 4xx refusals, connections never made). The
// outcome error must still reach its cause with errors.As.
func TestMaybeWritten(t *testing.T) {
	timeout := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		name      string
		step      func(ctx context.Context, call int) error // calls past the script are throttled
		maybe     bool
		delivered bool
		cause     any // a pointer to the error type errors.As must find
	}{
		{"timed out, then throttled", func(ctx context.Context, call int) error {
			if call == 0 {
				return timeout(ctx)
			}
			return nil
		}, true, false, new(*RetryBudgetError)},
		{"throttled only", func(context.Context, int) error { return nil }, false, false, new(*EntryError)},
		{"refused with 400", func(context.Context, int) error {
			return httpError(400, "InvalidArgumentException")
		}, false, false, new(smithy.APIError)},
		{"connection reset, then refused with 400", func(_ context.Context, call int) error {
			if call == 0 {
				return reset
			}
			return httpError(400, "InvalidArgumentException")
		}, true, false, new(smithy.APIError)},
		{"connection refused", func(context.Context, int) error { return dial }, false, false, new(*RetryBudgetError)},
		{"500, then throttled", func(_ context.Context, call int) error {
			if call == 0 {
				return httpError(500, "InternalFailure")
			}
			return nil
		}, true, false, new(*EntryError)},
		{"503 every time", func(context.Context, int) error { return httpError(503, "ServiceUnavailable") }, true, false, new(*RetryBudgetError)},
		{"timed out, then delivered", func(ctx context.Context, call int) error {
			if call == 0 {
				return timeout(ctx)
			}
			return nil
		}, false, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFake(1)
				if !tc.delivered {
					f.inject = func(int, []types.PutRecordsRequestEntry) ([]string, error) {
						return []string{CodeThroughputExceeded}, nil
					}
				}
				api := &scripted{fakeKinesis: f, step: tc.step}
				p := newProducer(t, api, WithCallTimeout(time.Second), WithRetryBudget(3, time.Hour), WithLinger(0))
				defer p.Close(context.Background())
				r, _ := p.Put(context.Background(), "k", []byte("v"))
				o, err := r.Wait(context.Background())
				switch {
				case tc.delivered:
					if err != nil {
						t.Fatalf("outcome %+v, %v; want delivered", o, err)
					}
					return
				case err == nil:
					t.Fatalf("delivered: %+v", o)
				}
				if got := errors.Is(err, ErrMaybeWritten); got != tc.maybe {
					t.Errorf("errors.Is(%v, ErrMaybeWritten) = %v, want %v", err, got, tc.maybe)
				}
				if !errors.As(err, tc.cause) {
					t.Errorf("errors.As(%v, %T) = false", err, tc.cause)
				}
				if IsRetryable(err) {
					t.Errorf("IsRetryable(%v) = true for a final outcome", err)
				}
			})
		})
	}
}

// Guards against Close calling records it gave up on surely unwritten when their request was
// in flight (its answer is unknown), or "maybe written" when they were never sent.
func TestMaybeWrittenAtClose(t *testing.T) {
	for _, inFlight := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			f := newFake(1)
			f.block = make(chan struct{})
			if !inFlight {
				f.listErr = func(int) error { return &types.LimitExceededException{Message: aws.String("slow")} }
			}
			p := newProducer(t, f, WithLinger(0))
			w := putN(t, p, 10, 10, 10)
			synctest.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if err := p.Close(ctx); !errors.Is(err, ErrClosed) {
				t.Fatalf("Close: %v, want ErrClosed", err)
			}
			for i, o := range w.outcomes(t) {
				if !errors.Is(o.Err, ErrClosed) || errors.Is(o.Err, ErrMaybeWritten) != inFlight {
					t.Errorf("in flight %v: record %d: %v; want ErrClosed, ErrMaybeWritten %v", inFlight, i, o.Err, inFlight)
				}
			}
		})
	}
}

// roundTripper answers Kinesis JSON calls from a script, without a network.
type roundTripper struct {
	mu    sync.Mutex
	puts  int
	reply func(put int) (*http.Response, error)
}

func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	target := req.Header.Get("X-Amz-Target")
	if strings.HasSuffix(target, ".ListShards") {
		return jsonResponse(req, 200, `{"Shards":[{"ShardId":"shardId-000000000000","HashKeyRange":{"StartingHashKey":"0","EndingHashKey":"340282366920938463463374607431768211455"},"SequenceNumberRange":{"StartingSequenceNumber":"0"}}]}`), nil
	}
	rt.mu.Lock()
	n := rt.puts
	rt.puts++
	rt.mu.Unlock()
	resp, err := rt.reply(n)
	if resp != nil {
		resp.Request = req
	}
	return resp, err
}

func jsonResponse(req *http.Request, status int, body string) *http.Response {
	return &http.Response{
		StatusCode: status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Request: req,
		Header:        http.Header{"Content-Type": {"application/x-amz-json-1.1"}, "X-Amzn-Requestid": {"test"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
	}
}

// Guards against the AWS SDK's own retries hiding an unknown outcome: the SDK client may try a
// PutRecords call several times, and an earlier try that broke after sending may have stored
// the records even when the last try was refused with a 4xx. The producer must see every try
// (ErrMaybeWritten then), and still call a record unwritten when no try reached Kinesis.
func TestMaybeWrittenSeesSDKRetries(t *testing.T) {
	refused := func(put int) (*http.Response, error) {
		return jsonResponse(nil, 400, `{"__type":"InvalidArgumentException","message":"refused by the test"}`), nil
	}
	for _, tc := range []struct {
		name  string
		first error
		maybe bool
	}{
		{"reset after sending, then refused", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, true},
		{"connection refused, then refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &roundTripper{reply: func(put int) (*http.Response, error) {
				if put == 0 {
					return nil, tc.first
				}
				return refused(put)
			}}
			client := kinesis.New(kinesis.Options{
				Region:       "us-east-1",
				BaseEndpoint: aws.String("http://kinesis.test"),
				Credentials:  aws.AnonymousCredentials{},
				HTTPClient:   &http.Client{Transport: rt},
				Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
					o.MaxAttempts = 3
					o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
				}),
			})
			p := newProducer(t, client, WithLinger(0))
			o, err := p.PutSync(context.Background(), "k", []byte("v"))
			if err == nil {
				t.Fatalf("delivered: %+v", o)
			}
			if !errors.As(err, new(*types.InvalidArgumentException)) {
				t.Errorf("err %v, want the InvalidArgumentException", err)
			}
			if got := errors.Is(err, ErrMaybeWritten); got != tc.maybe {
				t.Errorf("errors.Is(%v, ErrMaybeWritten) = %v, want %v", err, got, tc.maybe)
			}
			if rt.puts != 2 {
				t.Errorf("%d tries, want 2 (the SDK retried once)", rt.puts)
			}
			p.Close(context.Background())
		})
	}
}
