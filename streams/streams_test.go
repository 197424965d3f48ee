package streams

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// fakeKinesis is a stream table: a stream is created CREATING and becomes ACTIVE after
// activateAfter DescribeStream calls.
type fakeKinesis struct {
	mu            sync.Mutex
	status        map[string]types.StreamStatus
	shards        map[string]int32
	describes     int // DescribeStream calls
	creates       int
	activateAfter int
	summaryErr    error
	createErr     error
	describeErr   error
	raceCreate    bool // another caller creates the stream between our summary and our create
}

func newFake() *fakeKinesis {
	return &fakeKinesis{status: map[string]types.StreamStatus{}, shards: map[string]int32{}}
}

func notFound(name string) error {
	return &types.ResourceNotFoundException{Message: aws.String("Stream " + name + " not found")}
}

func (f *fakeKinesis) DescribeStreamSummary(_ context.Context, in *kinesis.DescribeStreamSummaryInput, _ ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.summaryErr != nil {
		return nil, f.summaryErr
	}
	st, ok := f.status[*in.StreamName]
	if !ok {
		if f.raceCreate {
			f.status[*in.StreamName] = types.StreamStatusCreating
		}
		return nil, notFound(*in.StreamName)
	}
	return &kinesis.DescribeStreamSummaryOutput{StreamDescriptionSummary: &types.StreamDescriptionSummary{StreamName: in.StreamName, StreamStatus: st}}, nil
}

func (f *fakeKinesis) CreateStream(_ context.Context, in *kinesis.CreateStreamInput, _ ...func(*kinesis.Options)) (*kinesis.CreateStreamOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates++
	if f.createErr != nil {
		return nil, f.createErr
	}
	if _, ok := f.status[*in.StreamName]; ok {
		return nil, &types.ResourceInUseException{Message: aws.String("exists")}
	}
	f.status[*in.StreamName], f.shards[*in.StreamName] = types.StreamStatusCreating, *in.ShardCount
	return &kinesis.CreateStreamOutput{}, nil
}

func (f *fakeKinesis) DescribeStream(_ context.Context, in *kinesis.DescribeStreamInput, _ ...func(*kinesis.Options)) (*kinesis.DescribeStreamOutput, error) {
	// A round trip takes time. Without it the SDK's waiter, which subtracts the time each poll
	// took from what is left, can spin at zero delay on synctest's clock, where a poll that
	// does not block takes no time at all.
	time.Sleep(time.Millisecond)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.describes++
	if f.describeErr != nil {
		return nil, f.describeErr
	}
	st, ok := f.status[*in.StreamName]
	if !ok {
		return nil, notFound(*in.StreamName)
	}
	if st == types.StreamStatusCreating && f.describes > f.activateAfter {
		st = types.StreamStatusActive
		f.status[*in.StreamName] = st
	}
	return &kinesis.DescribeStreamOutput{StreamDescription: &types.StreamDescription{StreamName: in.StreamName, StreamStatus: st}}, nil
}

// Guards against Ensure calling CreateStream for a stream that exists (5 calls/s per
// account: a fleet starting at once would be throttled), against it returning before a new
// stream is ACTIVE, and against a stream created by another caller meanwhile being an error.
func TestEnsure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := newFake()
		f.activateAfter = 3
		start := time.Now()
		if err := Ensure(ctx, f, "orders", 4); err != nil {
			t.Fatal(err)
		}
		if f.status["orders"] != types.StreamStatusActive || f.shards["orders"] != 4 || f.creates != 1 || f.describes != 4 {
			t.Errorf("after Ensure: status %s, %d shards, %d creates, %d describes; want ACTIVE, 4, 1, 4",
				f.status["orders"], f.shards["orders"], f.creates, f.describes)
		}
		if waited := time.Since(start); waited < 3*minDelay || waited > time.Second {
			t.Errorf("waited %v for three polls, want the waiter's short delays", waited)
		}

		// It exists and is ACTIVE: no CreateStream, no waiting.
		f.creates, f.describes = 0, 0
		if err := Ensure(ctx, f, "orders", 8); err != nil || f.creates != 0 || f.describes != 0 || f.shards["orders"] != 4 {
			t.Errorf("Ensure of an ACTIVE stream: %v, %d creates, %d describes, %d shards", err, f.creates, f.describes, f.shards["orders"])
		}

		// It exists but is not ACTIVE yet (another process just created it): wait, no create.
		f.status["payments"] = types.StreamStatusCreating
		f.describes, f.activateAfter = 0, 1
		if err := Ensure(ctx, f, "payments", 2); err != nil || f.creates != 0 || f.status["payments"] != types.StreamStatusActive {
			t.Errorf("Ensure of a CREATING stream: %v, %d creates, status %s", err, f.creates, f.status["payments"])
		}

		// Created by another caller between our look-up and our CreateStream.
		f.raceCreate, f.describes, f.activateAfter = true, 0, 0
		if err := Ensure(ctx, f, "raced", 1); err != nil || f.creates != 1 || f.status["raced"] != types.StreamStatusActive {
			t.Errorf("Ensure racing another creator: %v, %d creates, status %s", err, f.creates, f.status["raced"])
		}
	})
}

// Guards against Ensure hiding the SDK's errors or hanging: every failing call is returned
// wrapped, so errors.As still reaches the AWS exception, and the wait ends with ctx.
func TestEnsureErrors(t *testing.T) {
	denied := &types.AccessDeniedException{Message: aws.String("no")}
	limit := &types.LimitExceededException{Message: aws.String("too many")}
	for _, tc := range []struct {
		name   string
		setup  func(f *fakeKinesis)
		stream string
		shards int
		want   any // a target for errors.As, or an error for errors.Is
		calls  bool
	}{
		{"describe denied", func(f *fakeKinesis) { f.summaryErr = denied }, "s", 1, new(*types.AccessDeniedException), true},
		{"create refused", func(f *fakeKinesis) { f.createErr = limit }, "s", 1, new(*types.LimitExceededException), true},
		{"waiter fails", func(f *fakeKinesis) { f.describeErr = denied }, "s", 1, new(*types.AccessDeniedException), true},
		{"never ACTIVE", func(f *fakeKinesis) { f.activateAfter = 1 << 30 }, "s", 1, context.DeadlineExceeded, true},
		{"no stream name", nil, "", 1, nil, false},
		{"no shards", nil, "s", 0, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFake()
				if tc.setup != nil {
					tc.setup(f)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				err := Ensure(ctx, f, tc.stream, tc.shards)
				switch want := tc.want.(type) {
				case error:
					if !errors.Is(err, want) {
						t.Errorf("Ensure = %v, want %v", err, want)
					}
				case nil:
					if err == nil {
						t.Error("Ensure accepted a bad argument")
					}
				default:
					if !errors.As(err, want) {
						t.Errorf("Ensure = %v, want %T", err, want)
					}
				}
				if err != nil && !strings.HasPrefix(err.Error(), "streams: ") {
					t.Errorf("error %q does not name the package", err)
				}
				if called := f.creates+f.describes > 0 || tc.calls; called != tc.calls {
					t.Errorf("bad arguments reached Kinesis")
				}
			})
		})
	}
	if err := Ensure(context.Background(), nil, "s", 1); err == nil {
		t.Error("nil client accepted")
	}
}
