package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/kinesis/producer"
)

// fakeKinesis is one shard over the whole hash range. PutRecords stores every entry, or
// answers every entry with code, or blocks until release is closed.
type fakeKinesis struct {
	mu      sync.Mutex
	seq     int
	code    string        // an entry error code for every entry; "" stores them
	release chan struct{} // when not nil, PutRecords waits for it (or its ctx)
}

func (f *fakeKinesis) ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	return &kinesis.ListShardsOutput{Shards: []types.Shard{{
		ShardId: aws.String("shardId-000000000000"),
		HashKeyRange: &types.HashKeyRange{
			StartingHashKey: aws.String("0"),
			EndingHashKey:   aws.String("340282366920938463463374607431768211455"),
		},
		SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")},
	}}}, nil
}

func (f *fakeKinesis) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &kinesis.PutRecordsOutput{}
	for range in.Records {
		if f.code != "" {
			out.FailedRecordCount = aws.Int32(aws.ToInt32(out.FailedRecordCount) + 1)
			out.Records = append(out.Records, types.PutRecordsResultEntry{ErrorCode: aws.String(f.code), ErrorMessage: aws.String("refused")})
			continue
		}
		f.seq++
		out.Records = append(out.Records, types.PutRecordsResultEntry{
			ShardId: aws.String("shardId-000000000000"), SequenceNumber: aws.String(fmt.Sprintf("%056d", f.seq)),
		})
	}
	return out, nil
}

// newService returns the service's handler over a producer on f.
func newService(t *testing.T, f *fakeKinesis, wait time.Duration, opts ...producer.Option) (http.Handler, *producer.Producer) {
	t.Helper()
	opts = append([]producer.Option{producer.WithLinger(0)}, opts...)
	p, err := producer.New(f, "orders", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	return (&service{p: p, wait: wait, log: slog.New(slog.DiscardHandler)}).routes(), p
}

func post(t *testing.T, h http.Handler, body string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(body)))
	return w
}

const anOrder = `{"order_id":"o-1","customer_id":"c-1","amount_cents":100}`

// Guards against an order acknowledged before Kinesis stored it, or without what says where
// it is: 202 carries the shard and sequence number Kinesis returned.
func TestPostOrderStored(t *testing.T) {
	h, _ := newService(t, &fakeKinesis{}, 5*time.Second)
	w := post(t, h, anOrder)
	var got stored
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != http.StatusAccepted ||
		got.OrderID != "o-1" || got.ShardID != "shardId-000000000000" || got.SequenceNumber == "" {
		t.Fatalf("POST /orders: %d %s, want 202 with the shard and sequence number", w.Code, w.Body)
	}
}

// Guards against each failure reaching the client as the wrong status: overload and
// shutdown say "retry later" (503 with Retry-After), an outcome that is not known says 504,
// a refusal by Kinesis 502, a malformed order 400 and one too large 413.
func TestPostOrderErrors(t *testing.T) {
	t.Run("bad JSON", func(t *testing.T) {
		h, _ := newService(t, &fakeKinesis{}, time.Second)
		for _, body := range []string{"{", `{"order_id":"o-1"}`, `{"customer_id":"c-1"}`} {
			if w := post(t, h, body); w.Code != http.StatusBadRequest {
				t.Errorf("%s: %d, want 400", body, w.Code)
			}
		}
	})
	t.Run("too large", func(t *testing.T) {
		h, _ := newService(t, &fakeKinesis{}, time.Second)
		big := `{"order_id":"o-1","customer_id":"c-1","note":"` + strings.Repeat("x", producer.DefaultMaxRecordSize) + `"}`
		if w := post(t, h, big); w.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("%d, want 413", w.Code)
		}
	})
	t.Run("overloaded", func(t *testing.T) {
		f := &fakeKinesis{release: make(chan struct{})}
		h, p := newService(t, f, 5*time.Second, producer.WithBufferLimits(1, 64<<20))
		if _, err := p.TryPut("c-0", []byte("holds the only slot")); err != nil {
			t.Fatal(err)
		}
		w := post(t, h, anOrder)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
			t.Errorf("full buffer: %d (Retry-After %q), want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
		}
		close(f.release)
	})
	t.Run("not stored in time", func(t *testing.T) {
		f := &fakeKinesis{release: make(chan struct{})}
		h, _ := newService(t, f, 50*time.Millisecond)
		if w := post(t, h, anOrder); w.Code != http.StatusGatewayTimeout {
			t.Errorf("Kinesis slower than -wait: %d %s, want 504", w.Code, w.Body)
		}
		close(f.release)
	})
	t.Run("refused by Kinesis", func(t *testing.T) {
		h, _ := newService(t, &fakeKinesis{code: "KMSAccessDeniedException"}, 5*time.Second)
		if w := post(t, h, anOrder); w.Code != http.StatusBadGateway {
			t.Errorf("entry refused for good: %d %s, want 502", w.Code, w.Body)
		}
	})
	t.Run("retries spent", func(t *testing.T) {
		h, _ := newService(t, &fakeKinesis{code: producer.CodeThroughputExceeded}, 5*time.Second,
			producer.WithRetryBudget(2, time.Minute), producer.WithBackoff(time.Millisecond, time.Millisecond))
		if w := post(t, h, anOrder); w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
			t.Errorf("throttled until the budget ran out: %d %s, want 503 with Retry-After", w.Code, w.Body)
		}
	})
	t.Run("closed", func(t *testing.T) {
		h, p := newService(t, &fakeKinesis{}, time.Second)
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if w := post(t, h, anOrder); w.Code != http.StatusServiceUnavailable {
			t.Errorf("after Close: %d, want 503", w.Code)
		}
	})
}

// Guards against the mapping's order: each error below matches several cases, and only the
// first one that applies says what happened. A wait that timed out and a record that Close
// gave up on both match context.DeadlineExceeded; the record Close gave up on while its
// request was in flight matches ErrMaybeWritten too.
func TestStatusFor(t *testing.T) {
	closedDeadline := fmt.Errorf("%w: %w", producer.ErrClosed, context.DeadlineExceeded)
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"wait abandoned at the deadline", fmt.Errorf("%w: %w", producer.ErrWaitAbandoned, context.DeadlineExceeded), http.StatusGatewayTimeout},
		{"client left", fmt.Errorf("%w: %w", producer.ErrWaitAbandoned, context.Canceled), http.StatusGatewayTimeout},
		{"buffer full", producer.ErrBufferFull, http.StatusServiceUnavailable},
		{"Put timed out on a full buffer", fmt.Errorf("%w: %w", producer.ErrBufferFull, context.DeadlineExceeded), http.StatusServiceUnavailable},
		{"closed", producer.ErrClosed, http.StatusServiceUnavailable},
		{"Close gave up on it", closedDeadline, http.StatusServiceUnavailable},
		{"too large", producer.ErrRecordTooLarge, http.StatusRequestEntityTooLarge},
		{"empty key", producer.ErrEmptyPartitionKey, http.StatusBadRequest},
		{"key too long", producer.ErrPartitionKeyTooLong, http.StatusBadRequest},
		{"maybe written", errors.Join(&producer.RetryBudgetError{Err: errors.New("timeout")}, producer.ErrMaybeWritten), http.StatusGatewayTimeout},
		{"retry budget spent", &producer.RetryBudgetError{Err: &producer.EntryError{Code: producer.CodeThroughputExceeded}}, http.StatusServiceUnavailable},
		{"entry refused", &producer.EntryError{Code: "KMSAccessDeniedException"}, http.StatusBadGateway},
		{"stream missing", &types.ResourceNotFoundException{}, http.StatusBadGateway},
	} {
		if got := statusFor(tc.err); got != tc.want {
			t.Errorf("%s: statusFor(%v) = %d, want %d", tc.name, tc.err, got, tc.want)
		}
	}
}

// Guards against the health endpoints being documented and not served.
func TestHealthEndpoints(t *testing.T) {
	h, p := newService(t, &fakeKinesis{}, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		body, _ := io.ReadAll(w.Body)
		if w.Code != http.StatusOK || !json.Valid(body) {
			t.Errorf("GET %s: %d %s", path, w.Code, body)
		}
	}
}
