package producer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/goleak"
)

// Guards against an unbounded buffer and against Put ignoring its context: with the buffer
// full (by records, then by bytes) TryPut must refuse, Put must wait until room frees up or
// ctx ends, and a waiting Put must go through once records are delivered.
func TestBackpressure(t *testing.T) {
	for _, tc := range []struct {
		name          string
		records, size int
		fit           int // records that fit
	}{
		{"records", 10, 10, 10},
		{"bytes", 1000, 1000, 4}, // 4 records of 1000 bytes + key fit in 4100 bytes
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFake(1)
				f.block = make(chan struct{})
				p := newProducer(t, f, WithBufferLimits(tc.records, 4100), WithMaxRecordSize(4100),
					WithAggregation(false), WithOrdering(false))
				w := putN(t, p, tc.fit, 1, tc.size)
				if st := p.Stats(); st.Buffered != tc.fit {
					t.Fatalf("buffered %d, want %d", st.Buffered, tc.fit)
				}
				if _, err := p.TryPut("k", make([]byte, tc.size)); !errors.Is(err, ErrBufferFull) {
					t.Fatalf("TryPut on a full buffer: %v, want ErrBufferFull", err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				start := time.Now()
				_, err := p.Put(ctx, "k", make([]byte, tc.size))
				cancel()
				// Overload must be told apart from the caller's own deadline (issue 15): the
				// error says both.
				if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrBufferFull) || time.Since(start) != time.Second {
					t.Fatalf("Put on a full buffer: %v after %v, want ErrBufferFull and DeadlineExceeded after 1s", err, time.Since(start))
				}
				cctx, ccancel := context.WithCancel(context.Background())
				go func() { time.Sleep(time.Millisecond); ccancel() }()
				if _, err := p.Put(cctx, "k", make([]byte, tc.size)); !errors.Is(err, context.Canceled) || !errors.Is(err, ErrBufferFull) {
					t.Fatalf("Put on a full buffer, cancelled: %v, want ErrBufferFull and Canceled", err)
				}
				var late *Result
				done := make(chan struct{})
				go func() {
					defer close(done)
					late, err = p.Put(context.Background(), "late", []byte(recordData("late", 0, tc.size)))
				}()
				synctest.Wait()
				select {
				case <-done:
					t.Fatal("Put returned while the buffer was full")
				default:
				}
				close(f.block) // Kinesis answers: records are delivered, room frees up
				<-done
				if err != nil {
					t.Fatalf("waiting Put: %v", err)
				}
				if _, err := late.Wait(context.Background()); err != nil {
					t.Fatal(err)
				}
				flush(t, p)
				for i, o := range w.outcomes(t) {
					if o.Err != nil {
						t.Errorf("record %d: %v", i, o.Err)
					}
				}
				closeProducer(t, p)
			})
		})
	}
}

// Guards against a blocked Put outliving Close: it must return ErrClosed, and nothing it
// offered may be accepted.
func TestCloseWakesBlockedPut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		p := newProducer(t, f, WithBufferLimits(1, 1<<20))
		if _, err := p.Put(context.Background(), "a", []byte("1")); err != nil {
			t.Fatal(err)
		}
		errc := make(chan error)
		go func() {
			_, err := p.Put(context.Background(), "b", []byte("2"))
			errc <- err
		}()
		synctest.Wait()
		closeDone := make(chan error)
		go func() { closeDone <- p.Close(context.Background()) }()
		if err := <-errc; !errors.Is(err, ErrClosed) {
			t.Errorf("blocked Put: %v, want ErrClosed", err)
		}
		if err := <-closeDone; err != nil {
			t.Errorf("Close: %v", err)
		}
		if st := p.Stats(); st.Accepted != 1 || st.Delivered != 1 {
			t.Errorf("stats %+v, want the first record only", st)
		}
	})
}

// Guards against records accepted after Close, and against Close not being idempotent.
func TestPutAfterCloseAndCloseTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(2)
		p := newProducer(t, f)
		w := putN(t, p, 50, 5, 10)
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i := range errs {
			wg.Go(func() { errs[i] = p.Close(context.Background()) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Close %d: %v", i, err)
			}
		}
		checkDelivered(t, f, w.want) // Close flushed everything
		if err := p.Close(context.Background()); err != nil {
			t.Errorf("Close after Close: %v", err)
		}
		if _, err := p.Put(context.Background(), "k", nil); !errors.Is(err, ErrClosed) {
			t.Errorf("Put after Close: %v", err)
		}
		if _, err := p.TryPut("k", nil); !errors.Is(err, ErrClosed) {
			t.Errorf("TryPut after Close: %v", err)
		}
		if _, err := p.PutRecord(context.Background(), Record{PartitionKey: "k"}); !errors.Is(err, ErrClosed) {
			t.Errorf("PutRecord after Close: %v", err)
		}
		if o, err := p.PutSync(context.Background(), "k", nil); !errors.Is(err, ErrClosed) || !errors.Is(o.Err, ErrClosed) {
			t.Errorf("PutSync after Close: %v", err)
		}
		if err := p.Flush(context.Background()); err != nil {
			t.Errorf("Flush after Close: %v", err)
		}
	})
}

// Guards against records silently dropped when Close gives up: every record without an
// outcome when Close's ctx ends must fail with ErrClosed and the ctx error, reach the
// OnFailure hook exactly once, and Close must still stop every goroutine (synctest checks).
func TestCloseDeadlineFailsEverythingLeft(t *testing.T) {
	for _, inFlight := range []bool{true, false} {
		t.Run(fmt.Sprintf("in flight %v", inFlight), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFake(2)
				f.block = make(chan struct{}) // Kinesis never answers
				if !inFlight {
					// Nothing ever gets sent: the shard map never comes.
					f.listErr = func(int) error { return &types.LimitExceededException{Message: aws.String("slow")} }
				}
				var log failureLog
				p := newProducer(t, f, WithOnFailure(log.hook))
				w := putN(t, p, 300, 30, 20)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				start := time.Now()
				err := p.Close(ctx)
				if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 2*time.Second {
					t.Fatalf("Close: %v after %v, want DeadlineExceeded after 2s", err, time.Since(start))
				}
				for i, o := range w.outcomes(t) {
					if !errors.Is(o.Err, ErrClosed) || !errors.Is(o.Err, context.DeadlineExceeded) {
						t.Errorf("record %d: %v, want ErrClosed and DeadlineExceeded", i, o.Err)
					}
					// What tells this failure from a wait that timed out (issue 15).
					if errors.Is(o.Err, ErrWaitAbandoned) {
						t.Errorf("record %d: a failed record's error %v matches ErrWaitAbandoned", i, o.Err)
					}
				}
				for _, d := range w.datas {
					if n := log.calls[d]; n != 1 {
						t.Errorf("OnFailure called %d times for %s", n, d[:10])
					}
				}
				if st := p.Stats(); st.Failed != 300 || st.Buffered != 0 {
					t.Errorf("stats %+v", st)
				}
				if err2 := p.Close(context.Background()); err2 == nil || err2.Error() != err.Error() {
					t.Errorf("second Close: %v, want the first one's %v", err2, err)
				}
			})
		})
	}
}

// Guards against Flush returning early (before earlier records have outcomes), late (waiting
// for records put after it), or past its context.
func TestFlush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		f.latency = time.Second
		p := newProducer(t, f, WithLinger(time.Hour))
		synctest.Wait()
		a, _ := p.Put(context.Background(), "k", []byte("a"))
		flushed := make(chan time.Time)
		start := time.Now()
		go func() {
			flush(t, p)
			flushed <- time.Now()
		}()
		time.Sleep(500 * time.Millisecond)
		b, _ := p.Put(context.Background(), "k", []byte("b"))
		at := <-flushed
		if at.Sub(start) != time.Second {
			t.Errorf("Flush returned after %v, want 1s (one round trip, no linger)", at.Sub(start))
		}
		if _, ok := a.Outcome(); !ok {
			t.Error("Flush returned before the earlier record's outcome")
		}
		if _, ok := b.Outcome(); ok {
			t.Error("the later record is already delivered: the test does not test Flush's cut")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := p.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Flush past its deadline: %v", err)
		}
		if err := p.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, ok := b.Outcome(); !ok {
			t.Error("second Flush returned before the record's outcome")
		}
		closeProducer(t, p)
	})
}

// Guards against PutSync returning before the outcome, or without its error.
func TestPutSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		p := newProducer(t, f)
		o, err := p.PutSync(context.Background(), "k", []byte("v"))
		if err != nil || o.ShardID == "" || o.SequenceNumber == "" {
			t.Fatalf("PutSync: %+v, %v", o, err)
		}
		if _, err := p.PutSync(context.Background(), "", []byte("v")); !errors.Is(err, ErrEmptyPartitionKey) {
			t.Errorf("PutSync with an empty key: %v", err)
		}
		closeProducer(t, p)
	})
}

// Guards against a Result's Done channel and Wait disagreeing, or Wait ignoring its context.
func TestResultFuture(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		f.block = make(chan struct{})
		p := newProducer(t, f)
		r, _ := p.Put(context.Background(), "k", []byte("v"))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if o, err := r.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrWaitAbandoned) ||
			errors.Is(err, ErrClosed) || o != (Outcome{}) {
			t.Errorf("Wait: %+v, %v; want a zero Outcome and ErrWaitAbandoned with DeadlineExceeded", o, err)
		}
		// PutSync waits the same way.
		if o, err := p.PutSync(ctx, "k2", []byte("v")); !errors.Is(err, ErrWaitAbandoned) || !errors.Is(err, context.DeadlineExceeded) || o != (Outcome{}) {
			t.Errorf("PutSync with an ended context: %+v, %v; want ErrWaitAbandoned", o, err)
		}
		done := r.Done()
		select {
		case <-done:
			t.Fatal("Done closed before the outcome")
		default:
		}
		close(f.block)
		<-done
		o, err := r.Wait(context.Background())
		if err != nil || o.SequenceNumber == "" {
			t.Errorf("Wait: %+v, %v", o, err)
		}
		if r.Done() != done {
			t.Error("Done returned another channel")
		}
		closeProducer(t, p)
	})
}

// Guards against a panicking OnFailure hook killing the hook goroutine (every later failure
// would then be lost, and Close would hang).
func TestHookPanicIsContained(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		f.inject = func(_ int, in []types.PutRecordsRequestEntry) ([]string, error) {
			codes := make([]string, len(in))
			for i := range codes {
				codes[i] = "Refused"
			}
			return codes, nil
		}
		calls := 0
		p := newProducer(t, f, WithAggregation(false), WithOnFailure(func(Record, Outcome) {
			calls++
			panic("hook bug")
		}))
		putN(t, p, 5, 5, 10)
		if n := flushFailing(t, p); n != 5 {
			t.Errorf("Flush reports %d failed records, want 5", n)
		}
		if calls != 5 {
			t.Errorf("hook called %d times, want 5", calls)
		}
		closeProducer(t, p)
	})
}

// Guards against goroutine leaks with real time and a real clock (the synctest tests check
// the same inside their bubbles).
func TestNoGoroutineLeak(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := newFake(2)
	f.latency = time.Millisecond
	p := newProducer(t, f, WithLinger(time.Millisecond), WithOnFailure(func(Record, Outcome) {}))
	w := putN(t, p, 500, 50, 50)
	closeProducer(t, p)
	checkDelivered(t, f, w.want)
	// A producer closed without ever being used.
	closeProducer(t, newProducer(t, f))
}

// refuseBad fails, with a non-retryable entry error, every entry whose data contains "bad".
func refuseBad(_ int, in []types.PutRecordsRequestEntry) ([]string, error) {
	codes := make([]string, len(in))
	for i, e := range in {
		if strings.Contains(string(e.Data), "bad") {
			codes[i] = "Refused"
		}
	}
	return codes, nil
}

// Guards against Flush returning nil when records it waited for failed (issue 8, item 4): it
// must return a *FailedError counting exactly them (not records that had failed before the
// call, not records put after it), with the first one's error.
func TestFlushReportsFailedRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		f.inject = refuseBad
		p := newProducer(t, f, WithAggregation(false))
		early, _ := p.Put(context.Background(), "k", []byte("bad early"))
		if _, err := early.Wait(context.Background()); err == nil {
			t.Fatal("the early bad record was delivered")
		}
		for i := range 10 {
			data := fmt.Sprintf("good %d", i)
			if i%3 == 0 {
				data = fmt.Sprintf("bad %d", i)
			}
			if _, err := p.Put(context.Background(), fmt.Sprintf("k%d", i), []byte(data)); err != nil {
				t.Fatal(err)
			}
		}
		err := p.Flush(context.Background())
		var failed *FailedError
		var entry *EntryError
		if !errors.As(err, &failed) || failed.Count != 4 || !errors.As(failed.First, &entry) || entry.Code != "Refused" {
			t.Fatalf("Flush: %v (%+v), want a FailedError counting the 4 bad records, first one Refused", err, failed)
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrClosed) {
			t.Errorf("Flush error %v matches a context or close error", err)
		}
		putN(t, p, 5, 5, 10)
		if err := p.Flush(context.Background()); err != nil {
			t.Errorf("Flush of good records after a failed one: %v", err)
		}
		closeProducer(t, p)
	})
}

// Guards against Close returning nil when records it waited for failed, and against its
// count or its ErrClosed compatibility being wrong when its context ends, or when it is
// called twice.
func TestCloseReportsFailedRecords(t *testing.T) {
	t.Run("refused records", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFake(2)
			f.inject = refuseBad
			p := newProducer(t, f, WithAggregation(false))
			before, _ := p.Put(context.Background(), "k", []byte("bad before Close"))
			before.Wait(context.Background())
			putN(t, p, 20, 20, 10)
			p.Put(context.Background(), "x", []byte("bad 1"))
			p.Put(context.Background(), "y", []byte("bad 2"))
			err := p.Close(context.Background())
			var failed *FailedError
			if !errors.As(err, &failed) || failed.Count != 2 || errors.Is(err, ErrClosed) {
				t.Fatalf("Close: %v, want a FailedError counting the 2 records that failed during Close", err)
			}
			if again := p.Close(context.Background()); again != err {
				t.Errorf("second Close: %v, want the first one's %v", again, err)
			}
		})
	})
	t.Run("context ends", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFake(2)
			f.inject = refuseBad
			f.latency = time.Second
			p := newProducer(t, f, WithAggregation(false), WithLinger(0))
			p.Put(context.Background(), "x", []byte("bad 1"))
			synctest.Wait()
			time.Sleep(1500 * time.Millisecond) // bad 1 failed; it is not Close's
			f.mu.Lock()
			f.block = make(chan struct{}) // from now on Kinesis never answers
			f.mu.Unlock()
			putN(t, p, 30, 30, 10)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			err := p.Close(ctx)
			var failed *FailedError
			if !errors.As(err, &failed) || failed.Count != 30 || !errors.Is(err, ErrClosed) ||
				!errors.Is(err, context.DeadlineExceeded) || !errors.Is(failed.First, ErrClosed) {
				t.Fatalf("Close: %v, want a FailedError of 30 records matching ErrClosed and DeadlineExceeded", err)
			}
			if again := p.Close(context.Background()); again != err {
				t.Errorf("second Close: %v, want the first one's %v", again, err)
			}
		})
	})
}
