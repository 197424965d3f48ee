package producer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/shardline/kinesis/internal/telemetry"
	"github.com/shardline/kinesis/internal/wire"
	"github.com/shardline/kinesis/metrics"
)

// send hands req to a sender. The in-flight limit guarantees room in the channel.
func (d *dispatcher) send(req *request, now time.Time) {
	for i := range req.entries {
		e := &req.entries[i]
		e.attempts++
		if e.firstSent.IsZero() {
			e.firstSent = now
		}
		// Pointers into req.entries: no allocation, valid until the request is recycled.
		rec := types.PutRecordsRequestEntry{Data: e.data, PartitionKey: &e.pk}
		if e.ehk != "" {
			rec.ExplicitHashKey = &e.ehk
		}
		req.records = append(req.records, rec)
	}
	req.input = kinesis.PutRecordsInput{StreamName: &d.p.stream, Records: req.records}
	if cap(req.status) < len(req.entries) {
		req.status = make([]entryStatus, len(req.entries))
	}
	req.status = req.status[:len(req.entries)]
	d.inFlight++
	d.p.stats.requests.Add(1)
	d.p.reqs <- req
}

// handle takes back a request a sender finished with: it retries what failed retryably,
// parks what landed on an unexpected shard until the shard map is fresh, and frees the rest.
func (d *dispatcher) handle(req *request, now time.Time) {
	d.inFlight--
	d.dirty = true
	refresh := false
	for i := range req.entries {
		e, st := &req.entries[i], &req.status[i]
		e.shard.inFlight--
		e.shard.idle = false
		// Its keys are free again. A retried entry goes back to the front of its queue below,
		// so newer entries of its keys still wait for it; a verified one keeps its shard from
		// sending until settled.
		if d.keys != nil && d.keys.fly(e, -1) {
			d.stir()
		}
		switch st.kind {
		case stSettled:
			if st.shardID != "" && st.shardID != e.shard.id {
				refresh = true // a plain record went elsewhere: stored fine, but the map is stale
			}
			if st.shardID != "" {
				d.recycle(e)
			}
		case stVerify:
			e.shard.verifying++
			d.verify = append(d.verify, verifyItem{e: *e, landed: st.shardID, seq: st.seq, after: d.askRefresh()})
			d.p.log.Info("producer: aggregate landed on an unexpected shard; refreshing the shard map",
				"predicted", e.shard.id, "landed", st.shardID, "records", e.n())
		case stAbort:
			d.p.failEntry(e, d.p.closeError())
		}
	}
	// Retries go back to the front of their shard's queue. Walking backwards keeps entries of
	// one shard in their original order. Entries of one response that failed as often share
	// one backoff, so that they go again together, in one request, as they came.
	clear(d.backoffs)
	for i := len(req.entries) - 1; i >= 0; i-- {
		if st := &req.status[i]; st.kind == stRetry {
			d.retry(&req.entries[i], st.err, now)
		}
	}
	if refresh {
		d.askRefresh()
	}
	d.recycleRequest(req)
	d.rehome(now)
}

// sendLoop is one of the MaxInFlight sender goroutines: it makes the PutRecords calls the
// dispatcher hands it, settles what it can (delivered records, records refused for good) and
// hands the request back with the rest marked. It exits when the dispatcher closes reqs.
func (p *Producer) sendLoop() {
	defer p.pipeline.Done()
	w := newWatchdog(p.run)
	defer w.stop()
	tries := &tryWatch{}
	opts := []func(*kinesis.Options){tries.option()} // made once: a variadic call would allocate
	codec := &wire.Codec{}                           // writes the request, decodes the answer
	if p.cfg.wireCodec {
		opts = append(opts, codec.Option())
	}
	for req := range p.reqs {
		ctx := w.arm(p.cfg.requestTimeout)
		start := time.Now()
		tries.unknown = false
		codec.Reset()
		sdkOut, err := p.api.PutRecords(ctx, &req.input, opts...)
		out := &codec.Put
		if err == nil && !out.Decoded { // the codec is off, or the client is not the SDK's
			wire.PutFromSDK(sdkOut, out)
		}
		took := time.Since(start)
		if w.disarm() && err != nil {
			// Not %w for err: it says context.Canceled, which would read as fatal.
			err = fmt.Errorf("producer: PutRecords cut off after the %v request timeout: %w (%v)", p.cfg.requestTimeout, context.DeadlineExceeded, err)
		}
		p.cfg.metrics.Observe(metrics.ProducerFlushDuration, took.Seconds(), p.labels)
		telemetry.KinesisCall(p.cfg.metrics, p.stream, "", "PutRecords", start, err)
		p.cfg.metrics.Observe(metrics.ProducerBatchSize, float64(len(req.entries)), p.labels)
		p.settle(req, out, err, tries.unknown)
		p.resps <- req
	}
}

// tryWatch sees every try the AWS SDK makes inside one PutRecords call (its retryer may make
// several) and notes whether one ended without a known result: an earlier try may have stored
// records even when the last was refused. It is a finalize middleware added after the SDK's
// retry middleware, so it runs once per try; clients that are not the SDK's ignore it. Each
// sender has its own, used by one call at a time.
type tryWatch struct{ unknown bool }

func (*tryWatch) ID() string { return "ShardlineTryWatch" }

func (t *tryWatch) HandleFinalize(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (
	middleware.FinalizeOutput, middleware.Metadata, error,
) {
	out, md, err := next.HandleFinalize(ctx, in)
	if err != nil && resultUnknown(err) {
		t.unknown = true
	}
	return out, md, err
}

// option returns the per-call option that adds t, made once so that a call costs no more than
// the SDK's own copy of its options.
func (t *tryWatch) option() func(*kinesis.Options) {
	add := func(s *middleware.Stack) error { return s.Finalize.Add(t, middleware.After) }
	return func(o *kinesis.Options) { o.APIOptions = append(o.APIOptions, add) }
}

// errRequestTimeout is the cancellation cause of a request that ran out of time.
var errRequestTimeout = errors.New("producer: request timeout")

// watchdog bounds each call of one sender with a reusable timer and a context that lives
// until a call times out, instead of a context.WithTimeout per call: with ordering on and
// aggregation off a request can carry a single record, and the per-call context, timer and
// parent registration would then cost more allocations than the record itself.
type watchdog struct {
	parent context.Context
	timer  *time.Timer

	mu     sync.Mutex // guards what follows against the timer's goroutine
	ctx    context.Context
	cancel context.CancelCauseFunc
	armed  bool
}

func newWatchdog(parent context.Context) *watchdog {
	w := &watchdog{parent: parent}
	w.ctx, w.cancel = context.WithCancelCause(parent)
	w.timer = time.AfterFunc(time.Hour, w.fire)
	w.timer.Stop()
	return w
}

func (w *watchdog) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.armed {
		w.cancel(errRequestTimeout)
	}
}

// arm returns the context for the next call, cancelled if the call outlasts timeout.
func (w *watchdog) arm(timeout time.Duration) context.Context {
	w.mu.Lock()
	if w.ctx.Err() != nil && w.parent.Err() == nil { // the last call timed out
		w.ctx, w.cancel = context.WithCancelCause(w.parent)
	}
	w.armed = true
	ctx := w.ctx
	w.mu.Unlock()
	w.timer.Reset(timeout)
	return ctx
}

// disarm ends the call and reports whether it was cut off by the timeout.
func (w *watchdog) disarm() bool {
	w.timer.Stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = false
	return errors.Is(context.Cause(w.ctx), errRequestTimeout)
}

func (w *watchdog) stop() {
	w.timer.Stop()
	w.cancel(nil)
}
