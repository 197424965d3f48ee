package producer

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Guards against losing records in the stale-map window of a reshard: aggregates built for a
// shard that has just split land on one child, and the records whose hash keys belong to the
// other child would be dropped by every KCL-compatible consumer. The producer must notice the
// unexpected shard, list shards again and send exactly those records again, in order.
func TestStaleMapAfterSplitIsLossless(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to int
	}{
		{"split 1 to 2", 1, 2},
		{"split 2 to 5", 2, 5},
		{"merge 4 to 1", 4, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFake(tc.from)
				p := newProducer(t, f, WithShardMapRefresh(0))
				w := putN(t, p, 10, 10, 20)
				flush(t, p) // the producer knows the old layout
				f.reshard(tc.to)
				w.add(t, p, 2000, 300, 20)
				flush(t, p)
				checkDelivered(t, f, w.want)
				checkOutcomes(t, f, w)
				recs, dropped := f.read(t)
				st := p.Stats()
				if tc.to > tc.from && (dropped == 0 || st.Resent != int64(dropped)) {
					t.Errorf("consumer dropped %d records, producer resent %d: want the same, above 0", dropped, st.Resent)
				}
				if st.MapRefreshes < 2 {
					t.Errorf("%d shard listings, want a refresh after the unexpected shard", st.MapRefreshes)
				}
				for _, r := range recs {
					if want := f.shardOf(r.pk); r.shard != want && r.seq > "" && !f.isClosed(r.shard) {
						t.Errorf("record %s on %s, want %s", r.data, r.shard, want)
					}
				}
				closeProducer(t, p)
			})
		})
	}
}

func (f *fakeKinesis) isClosed(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.shards {
		if s.id == id {
			return s.closed
		}
	}
	return false
}

// Guards against the periodic refresh not running, or running when disabled.
func TestShardMapRefreshInterval(t *testing.T) {
	for _, tc := range []struct {
		every time.Duration
		want  int
	}{{10 * time.Second, 4}, {0, 1}} {
		synctest.Test(t, func(t *testing.T) {
			f := newFake(1)
			p := newProducer(t, f, WithShardMapRefresh(tc.every))
			time.Sleep(35 * time.Second)
			synctest.Wait()
			if _, list := f.calls(); list != tc.want {
				t.Errorf("refresh every %v: %d listings in 35s, want %d", tc.every, list, tc.want)
			}
			closeProducer(t, p)
		})
	}
}

// Guards against reading only the first page of ListShards: with one shard per page, a
// producer that stopped early would predict wrong shards and resend records.
func TestListShardsPaginated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(4)
		f.listPage = 1
		p := newProducer(t, f)
		w := putN(t, p, 1000, 100, 20)
		flush(t, p)
		checkDelivered(t, f, w.want)
		if _, list := f.calls(); list != 4 {
			t.Errorf("%d ListShards calls, want 4 pages", list)
		}
		if st := p.Stats(); st.Resent != 0 || st.MapRefreshes != 1 {
			t.Errorf("stats %+v: predictions were wrong", st)
		}
		closeProducer(t, p)
	})
}

// Guards against records waiting forever for a shard map: a listing that fails for good (no
// such stream) fails them at once; one that keeps failing retryably fails them after the
// record TTL; one that recovers delivers them.
func TestShardListingFailures(t *testing.T) {
	t.Run("fatal", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFake(1)
			f.listErr = func(int) error { return &types.ResourceNotFoundException{Message: aws.String("no stream")} }
			p := newProducer(t, f)
			r, err := p.Put(context.Background(), "k", []byte("v"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.Wait(context.Background())
			if !errors.As(err, new(*types.ResourceNotFoundException)) {
				t.Errorf("err %v, want the ResourceNotFoundException", err)
			}
			// Later records fail at once too.
			r, _ = p.Put(context.Background(), "k", []byte("w"))
			if _, err := r.Wait(context.Background()); err == nil {
				t.Error("record after a fatal listing error delivered")
			}
			closeProducer(t, p)
		})
	})
	t.Run("retryable until TTL", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFake(1)
			f.listErr = func(int) error { return &types.LimitExceededException{Message: aws.String("slow")} }
			p := newProducer(t, f, WithRetryBudget(10, 5*time.Second))
			start := time.Now()
			r, _ := p.Put(context.Background(), "k", []byte("v"))
			_, err := r.Wait(context.Background())
			var budget *RetryBudgetError
			if !errors.As(err, &budget) || !errors.As(err, new(*types.LimitExceededException)) {
				t.Errorf("err %v, want a RetryBudgetError wrapping the listing error", err)
			}
			if took := time.Since(start); took < 5*time.Second || took > 6*time.Second {
				t.Errorf("failed after %v, want the 5s TTL", took)
			}
			closeProducer(t, p)
		})
	})
	t.Run("recovers", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFake(2)
			f.listErr = func(call int) error {
				if call < 3 {
					return &types.LimitExceededException{Message: aws.String("slow")}
				}
				return nil
			}
			p := newProducer(t, f)
			w := putN(t, p, 100, 10, 20)
			flush(t, p)
			checkDelivered(t, f, w.want)
			closeProducer(t, p)
		})
	})
}
