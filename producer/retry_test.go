package producer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/shardline/kinesis/metrics"
)

// recordIndex parses the per-key counter from test data "key-N:000042:…".
func recordIndex(data []byte) int {
	parts := strings.SplitN(string(data), ":", 3)
	if len(parts) < 2 {
		return -1
	}
	i, _ := strconv.Atoi(parts[1])
	return i
}

// failureLog counts OnFailure calls per record.
type failureLog struct {
	mu    sync.Mutex
	calls map[string]int
	errs  map[string]error
}

func (l *failureLog) hook(rec Record, o Outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.calls == nil {
		l.calls, l.errs = map[string]int{}, map[string]error{}
	}
	l.calls[string(rec.Data)]++
	l.errs[string(rec.Data)] = o.Err
}

func (l *failureLog) total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.calls {
		n += c
	}
	return n
}

// Guards against per-entry failures being lost or mishandled: throttled and internal-failure
// entries must be retried and delivered, other codes must fail those records (with the code,
// once, through the hook) without touching the rest of the request; and against the metrics
// miscounting any of it.
func TestPartialFailuresMixedCodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(2)
		seen := map[string]int{}
		f.inject = func(call int, in []types.PutRecordsRequestEntry) ([]string, error) {
			codes := make([]string, len(in))
			for i, e := range in {
				seen[string(e.Data)]++
				if seen[string(e.Data)] > 1 {
					continue
				}
				switch k := recordIndex(e.Data); {
				case k%4 == 0:
					codes[i] = CodeThroughputExceeded
				case k%4 == 1:
					codes[i] = CodeInternalFailure
				case k%8 == 2:
					codes[i] = "SomethingElse"
				}
			}
			return codes, nil
		}
		m := metrics.NewMemory()
		var log failureLog
		p := newProducer(t, f, WithAggregation(false), WithMetrics(m), WithOnFailure(log.hook))
		w := putN(t, p, 120, 1, 30) // one key: per-record counters 0…119
		if n := flushFailing(t, p); n != 15 {
			t.Errorf("Flush reports %d failed records, want 15", n)
		}

		want := map[string][]string{}
		for i, o := range w.outcomes(t) {
			switch {
			case i%8 == 2:
				var ee *EntryError
				if !errors.As(o.Err, &ee) || ee.Code != "SomethingElse" || o.Attempts != 1 || IsRetryable(o.Err) {
					t.Errorf("record %d: outcome %+v, want EntryError SomethingElse after 1 attempt", i, o)
				}
				if n := log.calls[w.datas[i]]; n != 1 {
					t.Errorf("record %d: OnFailure called %d times, want 1", i, n)
				}
				continue
			case i%4 <= 1:
				if o.Err != nil || o.Attempts != 2 {
					t.Errorf("record %d: outcome %+v, want delivered on attempt 2", i, o)
				}
			default:
				if o.Err != nil || o.Attempts != 1 {
					t.Errorf("record %d: outcome %+v, want delivered on attempt 1", i, o)
				}
			}
			want[w.keys[i]] = append(want[w.keys[i]], w.datas[i])
		}
		checkDelivered(t, f, want)
		if n := log.total(); n != 15 {
			t.Errorf("OnFailure called %d times, want 15", n)
		}

		l := metrics.Labels{Stream: testStream}
		withType := func(code string) metrics.Labels { x := l; x.ErrorType = code; return x }
		for _, c := range []struct {
			name   metrics.Name
			labels metrics.Labels
			want   float64
		}{
			{metrics.ProducerErrors, withType(CodeThroughputExceeded), 30},
			{metrics.ProducerErrors, withType(CodeInternalFailure), 30},
			{metrics.ProducerErrors, withType("SomethingElse"), 15},
			{metrics.ProducerThrottles, l, 30},
			{metrics.ProducerRetries, l, 60},
			{metrics.ProducerRecordsFailed, withType("SomethingElse"), 15},
			{metrics.ProducerRecordsSent, l, 105},
			{metrics.ProducerKinesisRecordsSent, l, 105},
		} {
			if got := m.Counter(c.name, c.labels); got != c.want {
				t.Errorf("%s%+v = %v, want %v", c.name, c.labels, got, c.want)
			}
		}
		closeProducer(t, p)
	})
}

// Guards against retries that hammer Kinesis or stall: attempt n must wait a jittered
// [d/2, d] with d = base·2ⁿ capped at max, and the record must not leave meanwhile.
func TestBackoffDelays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		f.inject = func(call int, in []types.PutRecordsRequestEntry) ([]string, error) {
			if call < 5 {
				return []string{CodeThroughputExceeded}, nil
			}
			return nil, nil
		}
		p := newProducer(t, f, WithBackoff(100*time.Millisecond, 500*time.Millisecond), WithLinger(0))
		synctest.Wait()
		r, _ := p.Put(context.Background(), "k", []byte("v"))
		o, err := r.Wait(context.Background())
		if err != nil || o.Attempts != 6 {
			t.Fatalf("outcome %+v, %v; want delivered on attempt 6", o, err)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		caps := []time.Duration{100, 200, 400, 500, 500}
		for i, d := range caps {
			d *= time.Millisecond
			gap := f.requests[i+1].at.Sub(f.requests[i].at)
			if gap < d/2 || gap > d {
				t.Errorf("retry %d after %v, want within [%v, %v]", i+1, gap, d/2, d)
			}
		}
		closeProducer(t, p)
	})
}

// Guards against a throttled shard kept busy: a record refused for throttling holds its
// whole shard back for the backoff, so a newer record of another key waits for it too.
func TestThrottleHoldsShard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		f.inject = func(call int, in []types.PutRecordsRequestEntry) ([]string, error) {
			if call == 0 {
				return []string{CodeThroughputExceeded}, nil
			}
			return nil, nil
		}
		p := newProducer(t, f, WithBackoff(100*time.Millisecond, 100*time.Millisecond), WithLinger(0), WithAggregation(false))
		synctest.Wait()
		ra, _ := p.Put(context.Background(), "a", []byte("first"))
		synctest.Wait() // "a" was sent and throttled: its retry waits 50–100 ms
		start := time.Now()
		rb, _ := p.Put(context.Background(), "b", []byte("second"))
		for _, r := range []*Result{ra, rb} {
			if _, err := r.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		for i, req := range f.requests[1:] {
			if gap := req.at.Sub(start); gap < 50*time.Millisecond {
				t.Errorf("request %d left %v after the throttle, want at least half the 100 ms backoff", i+1, gap)
			}
		}
		closeProducer(t, p)
	})
}

// Guards against retrying forever: with the attempt budget spent the record must fail with a
// RetryBudgetError that still reaches the last Kinesis error code.
func TestRetryBudgetAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		f.inject = func(int, []types.PutRecordsRequestEntry) ([]string, error) {
			return []string{CodeThroughputExceeded}, nil
		}
		var log failureLog
		p := newProducer(t, f, WithRetryBudget(3, time.Hour), WithOnFailure(log.hook))
		r, _ := p.Put(context.Background(), "k", []byte("v"))
		o, err := r.Wait(context.Background())
		var budget *RetryBudgetError
		var ee *EntryError
		if !errors.As(err, &budget) || budget.Attempts != 3 || o.Attempts != 3 ||
			!errors.As(err, &ee) || ee.Code != CodeThroughputExceeded || IsRetryable(err) {
			t.Fatalf("outcome %+v, %v; want a RetryBudgetError after 3 attempts wrapping the throttle", o, err)
		}
		if put, _ := f.calls(); put != 3 {
			t.Errorf("%d PutRecords calls, want 3", put)
		}
		closeProducer(t, p)
		if log.total() != 1 {
			t.Errorf("OnFailure called %d times, want 1", log.total())
		}
	})
}

// Guards against retrying past the record's TTL: a record must give up once its first
// attempt is older than the TTL, not long after.
func TestRetryBudgetAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		f.inject = func(int, []types.PutRecordsRequestEntry) ([]string, error) {
			return []string{CodeInternalFailure}, nil
		}
		p := newProducer(t, f, WithRetryBudget(1000, 2*time.Second), WithBackoff(100*time.Millisecond, 400*time.Millisecond))
		r, _ := p.Put(context.Background(), "k", []byte("v"))
		_, err := r.Wait(context.Background())
		f.mu.Lock()
		start := f.requests[0].at // the first attempt, after the linger time
		f.mu.Unlock()
		took := time.Since(start)
		var budget *RetryBudgetError
		if !errors.As(err, &budget) || budget.Age < 2*time.Second {
			t.Fatalf("err %v, want a RetryBudgetError of age ≥ 2s", err)
		}
		if took < 2*time.Second || took > 2*time.Second+400*time.Millisecond {
			t.Errorf("gave up after %v, want within one backoff of the 2s TTL", took)
		}
		closeProducer(t, p)
	})
}

// Guards against misclassified request errors: retryable ones (5xx, throttling, network) must
// be retried and delivered; fatal ones (missing stream) must fail every record of the request
// at once, with an error errors.As can take apart.
func TestRequestErrors(t *testing.T) {
	respErr := func(status int) error {
		return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: errors.New("boom")}
	}
	for _, tc := range []struct {
		name  string
		err   error
		fatal bool
	}{
		{"503", respErr(503), false},
		{"throttled", &types.LimitExceededException{Message: aws.String("slow down")}, false},
		{"network", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, false},
		{"service unavailable", &smithy.GenericAPIError{Code: "ServiceUnavailable", Fault: smithy.FaultServer}, false},
		{"timeout", context.DeadlineExceeded, false},
		{"stream gone", &types.ResourceNotFoundException{Message: aws.String("no stream")}, true},
		{"access denied", &types.AccessDeniedException{Message: aws.String("no")}, true},
		{"kms disabled", &types.KMSDisabledException{Message: aws.String("off")}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFake(2)
				f.inject = func(call int, in []types.PutRecordsRequestEntry) ([]string, error) {
					if call == 0 {
						return nil, tc.err
					}
					return nil, nil
				}
				p := newProducer(t, f)
				w := putN(t, p, 20, 5, 20)
				if n := flushFailing(t, p); (n == 20) != tc.fatal || (n != 0 && n != 20) {
					t.Errorf("Flush reports %d failed records", n)
				}
				for i, o := range w.outcomes(t) {
					switch {
					case tc.fatal:
						if o.Err == nil || !errors.As(o.Err, new(smithy.APIError)) || IsRetryable(o.Err) || o.Attempts != 1 {
							t.Errorf("record %d: outcome %+v, want a fatal API error after 1 attempt", i, o)
						}
					case o.Err != nil || o.Attempts != 2:
						t.Errorf("record %d: outcome %+v, want delivered on attempt 2", i, o)
					}
				}
				if !tc.fatal {
					checkDelivered(t, f, w.want)
				}
				closeProducer(t, p)
			})
		})
	}
}

// Guards against reordering under failure with ordering on: whatever fails and is retried,
// a consumer must read each key's records in Put order, and no two records of one key may be
// in flight at once.
func TestOrderingUnderFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		opt  Option
	}{
		{"aggregated", 3000, WithAggregationMaxSize(300)},
		{"plain", 400, WithAggregation(false)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFake(4)
				f.latency = 5 * time.Millisecond
				rng := rand.New(rand.NewPCG(1, 2))
				f.inject = func(call int, in []types.PutRecordsRequestEntry) ([]string, error) {
					if rng.IntN(20) == 0 {
						return nil, &smithy.GenericAPIError{Code: "ServiceUnavailable", Fault: smithy.FaultServer}
					}
					codes := make([]string, len(in))
					for i := range codes {
						switch x := rng.IntN(100); {
						case x < 35:
							codes[i] = CodeThroughputExceeded
						case x < 45:
							codes[i] = CodeInternalFailure
						}
					}
					return codes, nil
				}
				p := newProducer(t, f, tc.opt, WithRetryBudget(1000, time.Hour), WithBackoff(10*time.Millisecond, 100*time.Millisecond))
				w := putN(t, p, tc.n, 60, 40)
				flush(t, p)
				checkDelivered(t, f, w.want)
				checkOutcomes(t, f, w)
				if f.maxKeyInFlight != 1 {
					t.Errorf("%d records of one key in flight at once, want 1", f.maxKeyInFlight)
				}
				if st := p.Stats(); st.Retries == 0 || st.Throttles == 0 {
					t.Errorf("stats %+v: the test injected no failure", st)
				}
				closeProducer(t, p)
			})
		})
	}
}

// Guards against WithOrdering(false) being ignored: it must let a shard's entries share a
// request and run in parallel requests (the throughput it exists for).
func TestOrderingOffBatchesPerShard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		f.latency = 50 * time.Millisecond
		p := newProducer(t, f, WithAggregation(false), WithOrdering(false), WithShardRateLimit(0, 0), WithBatchLimits(100, MaxBatchBytes))
		w := putN(t, p, 1000, 100, 20)
		flush(t, p)
		checkDeliveredAnyOrder(t, f, w.want)
		if f.maxEntriesPerShard < 100 || f.maxInFlightPerShard < 2 {
			t.Errorf("per shard: %d entries in one request, %d requests in flight; want 100 and ≥ 2", f.maxEntriesPerShard, f.maxInFlightPerShard)
		}
		closeProducer(t, p)
	})
}

// Guards against the retry classifier: what it calls retryable the producer retries, so a
// wrong answer either loses records early or retries hopeless ones until the budget ends.
func TestIsRetryable(t *testing.T) {
	respErr := func(status int) error {
		return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: errors.New("x")}
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&EntryError{Code: CodeThroughputExceeded}, true},
		{&EntryError{Code: CodeInternalFailure}, true},
		{&EntryError{Code: "Other"}, false},
		{&RetryBudgetError{Err: &EntryError{Code: CodeThroughputExceeded}}, false},
		{ErrClosed, false},
		{ErrMaybeWritten, false},
		{maybeWritten(&EntryError{Code: "Other"}), false},
		{fmt.Errorf("%w: %w", ErrClosed, context.DeadlineExceeded), false},
		{ErrRecordTooLarge, false},
		{ErrBufferFull, true},
		{context.Canceled, false},
		{context.DeadlineExceeded, true},
		{&types.ProvisionedThroughputExceededException{}, true},
		{&types.LimitExceededException{}, true},
		{&types.KMSThrottlingException{}, true},
		{&types.ResourceNotFoundException{}, false},
		{&types.InvalidArgumentException{}, false},
		{&types.AccessDeniedException{}, false},
		{&types.KMSAccessDeniedException{}, false},
		{&types.KMSNotFoundException{}, false},
		{&types.KMSInvalidStateException{}, false},
		{&types.KMSOptInRequired{}, false},
		{&smithy.GenericAPIError{Code: "ExpiredTokenException"}, false},
		{&smithy.GenericAPIError{Code: "ValidationException"}, false},
		{&smithy.GenericAPIError{Code: "InternalFailure", Fault: smithy.FaultServer}, true},
		{&smithy.InvalidParamsError{Context: "PutRecordsInput"}, false},
		{respErr(500), true},
		{respErr(503), true},
		{respErr(429), true},
		{respErr(400), false},
		{&net.OpError{Op: "dial", Err: errors.New("refused")}, true},
		{errors.New("unexpected EOF"), true},
	} {
		if got := IsRetryable(tc.err); got != tc.want {
			t.Errorf("IsRetryable(%T %v) = %v, want %v", tc.err, tc.err, got, tc.want)
		}
		if tc.err != nil && IsRetryable(fmt.Errorf("wrapped: %w", tc.err)) != tc.want {
			t.Errorf("IsRetryable of wrapped %T differs", tc.err)
		}
	}
}

// Guards against any path that loses a record, completes it twice or reports an outcome that
// is not true, with everything going wrong at once: random per-entry codes (retryable or
// not), retryable and fatal request errors, latency, a small retry budget, and a reshard
// halfway. Every record must have exactly one outcome; delivered ones must be readable exactly
// once where their outcome says (in Put order per key with ordering on), failed ones nowhere.
func TestChaosExactlyOneOutcome(t *testing.T) {
	for _, ordering := range []bool{true, false} {
		for _, aggregate := range []bool{true, false} {
			t.Run(fmt.Sprintf("ordering=%v/aggregation=%v", ordering, aggregate), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					f := newFake(3)
					f.latency = 20 * time.Millisecond
					rng := rand.New(rand.NewPCG(3, 4))
					f.inject = func(call int, in []types.PutRecordsRequestEntry) ([]string, error) {
						switch x := rng.IntN(100); {
						case x < 5:
							return nil, &smithy.GenericAPIError{Code: "InternalFailure", Fault: smithy.FaultServer}
						case x < 7:
							return nil, &types.KMSThrottlingException{Message: aws.String("kms")}
						case x < 8:
							return nil, &types.AccessDeniedException{Message: aws.String("no")}
						}
						codes := make([]string, len(in))
						for i := range codes {
							switch x := rng.IntN(100); {
							case x < 25:
								codes[i] = CodeThroughputExceeded
							case x < 30:
								codes[i] = CodeInternalFailure
							case x < 32:
								codes[i] = "Unknown"
							}
						}
						return codes, nil
					}
					var log failureLog
					p := newProducer(t, f, WithOrdering(ordering), WithAggregation(aggregate), WithAggregationMaxSize(400),
						WithRetryBudget(4, time.Hour), WithBackoff(5*time.Millisecond, 50*time.Millisecond),
						WithOnFailure(log.hook), WithShardMapRefresh(0))
					w := putN(t, p, 600, 40, 30)
					time.Sleep(200 * time.Millisecond)
					f.reshard(5)
					w.add(t, p, 600, 40, 30)
					flushFailing(t, p)
					if err := p.Close(context.Background()); err != nil && !errors.As(err, new(*FailedError)) {
						t.Fatalf("Close: %v", err)
					}

					st := p.Stats()
					if st.Accepted != 1200 || st.Delivered+st.Failed != 1200 || st.Buffered != 0 {
						t.Fatalf("stats %+v: outcomes do not add up", st)
					}
					if log.total() != int(st.Failed) || st.Failed == 0 || st.Delivered == 0 {
						t.Fatalf("%d hook calls for %d failed records (%d delivered)", log.total(), st.Failed, st.Delivered)
					}
					recs, _ := f.read(t)
					byData := map[string]userRecord{}
					for _, r := range recs {
						if _, dup := byData[r.data]; dup {
							t.Errorf("record %.16s read twice", r.data)
						}
						byData[r.data] = r
					}
					got := map[string][]string{}
					for _, r := range recs {
						got[r.pk] = append(got[r.pk], r.data)
					}
					want := map[string][]string{}
					for i, o := range w.outcomes(t) {
						r, read := byData[w.datas[i]]
						switch {
						case o.Err != nil && read:
							t.Errorf("record %.16s failed (%v) but is readable", w.datas[i], o.Err)
						case o.Err != nil && log.calls[w.datas[i]] != 1:
							t.Errorf("record %.16s failed, hook called %d times", w.datas[i], log.calls[w.datas[i]])
						case o.Err == nil && (!read || r.seq != o.SequenceNumber || r.sub != o.SubSequence || r.shard != o.ShardID):
							t.Errorf("record %.16s: outcome %+v, read %+v (%v)", w.datas[i], o, r, read)
						case o.Err == nil:
							want[w.keys[i]] = append(want[w.keys[i]], w.datas[i])
						}
					}
					if ordering {
						for k, ds := range want {
							if !slices.Equal(got[k], ds) {
								t.Errorf("key %s out of order", k)
							}
						}
					}
				})
			})
		}
	}
}

// Guards against reordering across a reshard that the periodic refresh finds while records of
// the closed shard are in flight: they must go to the new shards ahead of newer records.
func TestOrderingAcrossReshardInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(2)
		f.latency = 300 * time.Millisecond
		p := newProducer(t, f, WithShardMapRefresh(time.Second), WithLinger(50*time.Millisecond))
		w := &workload{want: map[string][]string{}}
		for i := range 60 {
			if i == 20 {
				f.reshard(3)
			}
			w.add(t, p, 30, 30, 20)
			time.Sleep(100 * time.Millisecond)
		}
		flush(t, p)
		checkDelivered(t, f, w.want)
		checkOutcomes(t, f, w)
		if st := p.Stats(); st.MapRefreshes < 3 || st.Resent == 0 {
			t.Errorf("stats %+v: the periodic refresh did not run, or no aggregate landed off its shard", st)
		}
		closeProducer(t, p)
	})
}

// Guards against a hung PutRecords call holding its records forever, and against the request
// timeout being treated as fatal: the call must be cut off at the timeout and retried.
func TestRequestTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		f.block = make(chan struct{})
		p := newProducer(t, f, WithCallTimeout(time.Second), WithRetryBudget(1, time.Hour), WithLinger(0))
		synctest.Wait()
		start := time.Now()
		r, _ := p.Put(context.Background(), "k", []byte("v"))
		_, err := r.Wait(context.Background())
		var budget *RetryBudgetError
		if !errors.As(err, &budget) || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Second {
			t.Fatalf("err %v after %v, want a retryable timeout after 1s (budget of 1 attempt spent)", err, time.Since(start))
		}
		closeProducer(t, p)

		// With a budget left, the next attempt gets a fresh deadline and succeeds.
		f.block = make(chan struct{})
		p = newProducer(t, f, WithCallTimeout(time.Second), WithLinger(0))
		synctest.Wait()
		r, _ = p.Put(context.Background(), "k", []byte("w"))
		time.Sleep(1500 * time.Millisecond)
		close(f.block)
		o, err := r.Wait(context.Background())
		if err != nil || o.Attempts != 2 {
			t.Fatalf("outcome %+v, %v; want delivered on attempt 2", o, err)
		}
		closeProducer(t, p)
	})
}

// Guards against spending a record's retry budget while it waits in the producer's own queue
// (issue 8, item 10): records held back by the rate limit for far longer than the TTL must
// still get their retries, the TTL counting from their first attempt.
func TestRetryBudgetAgeCountsFromFirstAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		tried := map[string]bool{}
		f.inject = func(_ int, in []types.PutRecordsRequestEntry) ([]string, error) {
			codes := make([]string, len(in))
			for i, e := range in {
				if !tried[string(e.Data)] {
					tried[string(e.Data)] = true
					codes[i] = CodeInternalFailure
				}
			}
			return codes, nil
		}
		// 100 records at 20 records/s: the last ones wait about 5 s (10 s with the retries)
		// before their first attempt, well over the TTL. A retry waits at most a second for
		// its token (20 retries of one burst go first).
		p := newProducer(t, f, WithAggregation(false), WithShardRateLimit(20, 0), WithRetryBudget(3, 3*time.Second),
			WithBackoff(50*time.Millisecond, 50*time.Millisecond))
		w := putN(t, p, 100, 100, 20)
		flush(t, p)
		for i, o := range w.outcomes(t) {
			if o.Err != nil || o.Attempts != 2 {
				t.Errorf("record %d: %+v, want delivered on attempt 2", i, o)
			}
		}
		checkDelivered(t, f, w.want)
		closeProducer(t, p)
	})
}
