package producer

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"golang.org/x/time/rate"
)

// faults is the failure mix a limited fake injects: a share of entries refused with
// InternalFailure, and a share of requests answered with HTTP 503 Service Unavailable.
type faults struct {
	internal    float64
	unavailable float64
}

// limitedFake is a fakeKinesis that enforces the Kinesis per-shard write limits (1,000
// records and 1 MiB of partition keys and data per second, each a token bucket holding one
// second), the way Kinesis does: an entry over either limit comes back with ErrorCode
// ProvisionedThroughputExceededException and is not stored, the rest of the request goes on.
// Every call takes a fixed round trip, and faults are injected at random (seeded), but never
// more than maxFaults times in a row to one entry: at a 25% fault rate, 10 failures in a row
// (the default attempt budget) would hit one record of 4,000 in about 250 runs, and the tests
// must not depend on luck.
type limitedFake struct {
	*fakeKinesis
	throttled int // entries refused for the limits; guarded by fakeKinesis.mu
	internal  int // entries refused with InternalFailure
	refused   int // requests answered 503
}

func newLimitedFake(shards int, rtt time.Duration, fl faults, seed uint64) *limitedFake {
	lf := &limitedFake{fakeKinesis: newFake(shards)}
	f := lf.fakeKinesis
	f.latency = rtt
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	recs, bytes := map[string]*rate.Limiter{}, map[string]*rate.Limiter{}
	inRow := map[string]int{} // faults in a row, by entry data
	const maxFaults = 3
	// inject runs under f.mu when the request arrives: the limits are spent then, as Kinesis
	// spends them on arrival.
	f.inject = func(_ int, in []types.PutRecordsRequestEntry) ([]string, error) {
		worst := 0
		for _, e := range in {
			worst = max(worst, inRow[string(e.Data)])
		}
		if worst < maxFaults && rng.Float64() < fl.unavailable {
			for _, e := range in {
				inRow[string(e.Data)]++
			}
			lf.refused++
			return nil, &smithyhttp.ResponseError{
				Response: &smithyhttp.Response{Response: &http.Response{StatusCode: http.StatusServiceUnavailable}},
				Err:      &smithy.GenericAPIError{Code: "ServiceUnavailable", Message: "injected", Fault: smithy.FaultServer},
			}
		}
		now := time.Now()
		codes := make([]string, len(in))
		for i, e := range in {
			pk := aws.ToString(e.PartitionKey)
			s, err := f.route(pk, aws.ToString(e.ExplicitHashKey))
			if err != nil {
				return nil, &types.InvalidArgumentException{Message: aws.String(err.Error())}
			}
			lr, lb := recs[s.id], bytes[s.id]
			if lr == nil {
				lr, lb = rate.NewLimiter(1000, 1000), rate.NewLimiter(1<<20, 1<<20)
				recs[s.id], bytes[s.id] = lr, lb
			}
			size := len(pk) + len(e.Data)
			if lr.TokensAt(now) < 1 || lb.TokensAt(now) < float64(size) {
				codes[i] = CodeThroughputExceeded
				lf.throttled++
				continue
			}
			lr.AllowN(now, 1)
			lb.AllowN(now, size)
			if inRow[string(e.Data)] < maxFaults && rng.Float64() < fl.internal {
				codes[i] = CodeInternalFailure
				inRow[string(e.Data)]++
				lf.internal++
				continue
			}
			delete(inRow, string(e.Data))
		}
		return codes, nil
	}
	return lf
}

func (lf *limitedFake) counts() (throttled, internal, refused int) {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	return lf.throttled, lf.internal, lf.refused
}

// throughLimits is the measurement of issue 8: n records of 1 KiB (4,000 in the issue),
// ordering on (the default, given explicitly), aggregation off, over 1,000 keys on 4 shards
// with Kinesis' write limits and a 25 ms round trip. It returns the time from the first Put
// until Flush returned, and the PutRecords calls made.
func throughLimits(t testing.TB, n int, fl faults, opts ...Option) (w *workload, lf *limitedFake, took time.Duration, calls int) {
	t.Helper()
	lf = newLimitedFake(4, 25*time.Millisecond, fl, 1)
	var log failureLog
	p := newProducer(t, lf, append([]Option{WithOrdering(true), WithAggregation(false), WithOnFailure(log.hook)}, opts...)...)
	if err := p.Flush(context.Background()); err != nil { // nothing buffered: returns at once
		t.Fatal(err)
	}
	for p.Stats().MapRefreshes == 0 { // wait for the shard map, so that only sending is timed
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond)
	start := time.Now()
	w = putN(t, p, n, 1000, 1024)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ferr := p.Flush(ctx)
	took = time.Since(start)
	calls, _ = lf.calls()
	var failed *FailedError
	if ferr != nil && !errors.As(ferr, &failed) {
		t.Fatalf("Flush: %v", ferr)
	}
	if failed != nil {
		t.Errorf("Flush: %v", ferr)
	}
	closeProducer(t, p)
	if n := log.total(); n != 0 {
		t.Errorf("%d records failed", n)
	}
	return w, lf, took, calls
}

// Guards against ordered, non-aggregated records collapsing to one record per shard per round
// trip (issue 8, item 9: 4,000 records took 6.9 s and 1,065 requests where the limits allow
// about 1 s), and against records failing for time spent in the producer's own queue (item 10:
// with 20% InternalFailure entries and 5% 503s, half of them failed "after 1 attempt in 30 s").
// Ordering holds per key: no two records of one key in flight at once, each key's records
// stored in Put order, every record exactly once.
func TestOrderedPlainThroughShardLimits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n      int
		fl     faults
		within time.Duration
	}{
		// Each shard takes about 1,000 records of 4,000 (1,050 for the busiest), what one
		// second of its limits allows. Shards start with a full second of burst, as idle
		// Kinesis shards do, so the records wait mainly for their keys' round trips (4 of
		// 25 ms); one record per shard per round trip takes over 25 s.
		{"limits only", 4000, faults{}, time.Second},
		// Past the burst the limits bind: about 2.2 s for the busiest shard's bytes.
		{"limits bind", 12000, faults{}, 3 * time.Second},
		// The retries take backoffs of 100 ms and more, in sequence for each key's records:
		// at most 0.7 s per record (3 faults in a row), 2.8 s for a key.
		{"with faults", 4000, faults{internal: 0.2, unavailable: 0.05}, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w, lf, took, calls := throughLimits(t, tc.n, tc.fl)
				throttled, internal, refused := lf.counts()
				t.Logf("%d records in %v (%.0f records/s), %d PutRecords calls (%.1f per 1,000 records); injected: %d throttled, %d InternalFailure, %d requests 503",
					tc.n, took, float64(tc.n)/took.Seconds(), calls, float64(calls)*1000/float64(tc.n), throttled, internal, refused)
				checkDelivered(t, lf.fakeKinesis, w.want)
				checkOutcomes(t, lf.fakeKinesis, w)
				if lf.maxKeyInFlight != 1 {
					t.Errorf("%d records of one key were in flight at once, want 1", lf.maxKeyInFlight)
				}
				if took > tc.within {
					t.Errorf("took %v, want at most %v", took, tc.within)
				}
				if tc.fl.internal > 0 && (internal == 0 || refused == 0) {
					t.Errorf("no fault injected: the test tests nothing")
				}
			})
		})
	}
}

// BenchmarkOrderedPlainThroughLimits is TestOrderedPlainThroughShardLimits in real time: each
// iteration sends n records of 1 KiB through the limited fake (25 ms round trip) and reports
// records/s and PutRecords requests per 1,000 records. Run it with -benchtime=1x.
func BenchmarkOrderedPlainThroughLimits(b *testing.B) {
	for _, tc := range []struct {
		name string
		n    int
		fl   faults
	}{
		{"4000", 4000, faults{}},
		{"12000", 12000, faults{}},
		{"4000-faults", 4000, faults{internal: 0.2, unavailable: 0.05}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var took time.Duration
			calls := 0
			for b.Loop() {
				_, _, d, c := throughLimits(b, tc.n, tc.fl)
				took += d
				calls += c
			}
			b.ReportMetric(float64(tc.n*b.N)/took.Seconds(), "records/s")
			b.ReportMetric(float64(calls)*1000/float64(tc.n*b.N), "requests/1000rec")
			b.ReportMetric(0, "ns/op") // one iteration is one run: ns/op says nothing more
		})
	}
}
