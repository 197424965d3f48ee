package producer

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Guards against a request that cannot grow any more waiting out its linger time, and
// against ordering limiting a request to one entry per shard: 500 records of distinct keys
// on one shard fill a request, which must leave at once, whole, with ordering on.
func TestOrderedFullRequestLeavesBeforeLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		p := newProducer(t, f, WithAggregation(false), WithShardRateLimit(0, 0), WithLinger(time.Hour))
		synctest.Wait() // the shard map
		w := putN(t, p, 500, 500, 10)
		synctest.Wait()
		for i, o := range w.outcomes(t) {
			if o.Err != nil {
				t.Fatalf("record %d: %v", i, o.Err)
			}
		}
		f.mu.Lock()
		reqs, entries := len(f.requests), f.requests[0].entries
		f.mu.Unlock()
		if reqs != 1 || entries != 500 {
			t.Errorf("%d requests, the first of %d entries; want 1 full one", reqs, entries)
		}
		closeProducer(t, p)
	})
}

// Guards against ordering costing more than it must: records of one shard with different
// keys may share a request and be in flight together; only records of one key may not.
// 100 keys on 2 shards, 10 records each, a 50 ms round trip: one round trip per record of a
// key (10 in all), not one per record of a shard (500).
func TestOrderingIsPerKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(2)
		f.latency = 50 * time.Millisecond
		p := newProducer(t, f, WithAggregation(false), WithShardRateLimit(0, 0), WithMaxInFlight(2))
		synctest.Wait()
		start := time.Now()
		w := putN(t, p, 1000, 100, 20)
		flush(t, p)
		took := time.Since(start)
		checkDelivered(t, f, w.want)
		checkOutcomes(t, f, w)
		if f.maxKeyInFlight != 1 {
			t.Errorf("%d records of one key in flight at once, want 1", f.maxKeyInFlight)
		}
		if f.maxEntriesPerShard < 40 {
			t.Errorf("at most %d entries of a shard in one request: ordering still limits shards, not keys", f.maxEntriesPerShard)
		}
		// 10 rounds of 50 ms, plus the first record's 100 ms linger.
		if took > 10*50*time.Millisecond+100*time.Millisecond {
			t.Errorf("took %v for 10 records per key at 50 ms a round trip", took)
		}
		closeProducer(t, p)
	})
}

// Guards against a retry breaking its key's order or holding back other keys: an entry
// waiting out its backoff goes again before every newer record of its key, and records of
// other keys go on meanwhile (only a throttled shard is held back as a whole).
func TestRetryHoldsOnlyItsKey(t *testing.T) {
	for _, aggregate := range []bool{false, true} {
		t.Run(fmt.Sprintf("aggregation=%v", aggregate), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFake(1)
				first := true
				f.inject = func(_ int, in []types.PutRecordsRequestEntry) ([]string, error) {
					codes := make([]string, len(in))
					for i, e := range in {
						if first && strings.Contains(string(e.Data), "hot:000000") {
							first = false
							codes[i] = CodeInternalFailure
						}
					}
					return codes, nil
				}
				f.latency = 10 * time.Millisecond
				p := newProducer(t, f, WithAggregation(aggregate), WithLinger(0), WithBackoff(time.Second, time.Second))
				synctest.Wait()
				hot := &workload{want: map[string][]string{}}
				put := func(key string) *Result {
					data := recordData(key, len(hot.want[key]), 20)
					r, err := p.Put(context.Background(), key, []byte(data))
					if err != nil {
						t.Fatal(err)
					}
					hot.want[key] = append(hot.want[key], data)
					return r
				}
				h0 := put("hot")
				time.Sleep(20 * time.Millisecond) // h0 failed and waits out its backoff: [500 ms, 1 s]
				var cold []*Result
				for i := range 10 {
					cold = append(cold, put(fmt.Sprintf("cold-%d", i)))
				}
				// Put apart, so that the cold records do not share an aggregate with h1 (an
				// aggregate waits for every key it holds).
				synctest.Wait()
				h1 := put("hot")
				time.Sleep(100 * time.Millisecond)
				for i, r := range cold {
					if _, ok := r.Outcome(); !ok {
						t.Errorf("cold record %d still waits: the retry holds back other keys", i)
					}
				}
				if _, ok := h1.Outcome(); ok {
					t.Error("the newer hot record is delivered while the older one waits for its retry")
				}
				flush(t, p)
				if o, _ := h0.Outcome(); o.Err != nil || o.Attempts != 2 {
					t.Errorf("hot record 0: %+v, want delivered on attempt 2", o)
				}
				checkDelivered(t, f, hot.want)
				if f.maxKeyInFlight != 1 {
					t.Errorf("%d records of one key in flight at once", f.maxKeyInFlight)
				}
				closeProducer(t, p)
			})
		})
	}
}

// Guards against ordering serializing shards: keys are compared within a shard only, so an
// aggregate of one shard goes out while another shard's aggregate is in flight, although
// with 500 keys each, some of their keys surely share a bucket of the key table.
func TestOrderedAggregatesOfShardsGoTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(2)
		f.latency = time.Second
		p := newProducer(t, f, WithShardRateLimit(0, 0))
		synctest.Wait()
		byShard := map[string][]string{}
		for i := 0; len(byShard[f.shards[0].id]) < 500 || len(byShard[f.shards[1].id]) < 500; i++ {
			key := fmt.Sprintf("key-%d", i)
			byShard[f.shardOf(key)] = append(byShard[f.shardOf(key)], key)
		}
		put := func(keys []string) (rs []*Result) {
			for _, k := range keys[:500] {
				r, err := p.Put(context.Background(), k, []byte(recordData(k, 0, 60)))
				if err != nil {
					t.Fatal(err)
				}
				rs = append(rs, r)
			}
			return rs
		}
		start := time.Now()
		put(byShard[f.shards[0].id])
		time.Sleep(200 * time.Millisecond) // its aggregate leaves after the linger time
		second := put(byShard[f.shards[1].id])
		for _, r := range second {
			if _, err := r.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		// The second aggregate leaves after its linger time, not after the first one's answer.
		if took := time.Since(start); took > 1400*time.Millisecond {
			t.Errorf("the second shard's records took %v: they waited for the first shard's", took)
		}
		if f.maxKeyInFlight != 1 {
			t.Errorf("%d records of one key in flight at once", f.maxKeyInFlight)
		}
		closeProducer(t, p)
	})
}

// Guards against a busy key holding back the other keys of its shard: records of one key go
// one per round trip, but the records of other keys queued behind its backlog pass it.
func TestOtherKeysPassABusyKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		f.latency = 50 * time.Millisecond
		p := newProducer(t, f, WithAggregation(false), WithShardRateLimit(0, 0), WithLinger(0))
		synctest.Wait()
		w := putN(t, p, 1000, 1, 20) // key-0's backlog: 50 s at one record per round trip
		start := time.Now()
		var cold []*Result
		for i := range 100 {
			key := fmt.Sprintf("cold-%d", i)
			r, err := p.Put(context.Background(), key, []byte(key))
			if err != nil {
				t.Fatal(err)
			}
			cold = append(cold, r)
			w.want[key] = []string{key}
		}
		for _, r := range cold {
			if _, err := r.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if took := time.Since(start); took > 150*time.Millisecond {
			t.Errorf("records of other keys took %v behind a busy key", took)
		}
		flush(t, p)
		checkDelivered(t, f, w.want)
		closeProducer(t, p)
	})
}
