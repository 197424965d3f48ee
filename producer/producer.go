package producer

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/kinesis/events"
	"github.com/shardline/kinesis/internal/cfgerr"
	"github.com/shardline/kinesis/metrics"
)

// API is the part of the Kinesis client the Producer uses; *kinesis.Client satisfies it.
// An implementation must not keep the PutRecords input (or its Data slices) after returning:
// the producer reuses them.
type API interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

var _ API = (*kinesis.Client)(nil)

// Producer batches, aggregates and sends user records to one Kinesis stream. It is safe for
// concurrent use. Create it with New and stop it with Close, which every Producer needs: its
// goroutines run until then.
type Producer struct {
	api    API
	stream string
	cfg    config
	labels metrics.Labels

	buf   *buffer
	hooks *hookQueue  // nil without an OnFailure hook
	bus   *events.Bus // the listeners' events; nil without listeners
	log   *slog.Logger

	run    context.Context // ends when the producer stops; its cause is what Close gave up with
	cancel context.CancelCauseFunc

	closing      chan struct{} // closed by the first Close
	flushSig     chan struct{} // capacity 1: Flush wants everything out now
	refreshSig   chan struct{} // capacity 1: the dispatcher wants a new shard map
	refreshAsked atomic.Uint64
	maps         chan mapUpdate
	reqs         chan *request // dispatcher → senders
	resps        chan *request // senders → dispatcher

	pipeline   sync.WaitGroup // dispatcher, senders, refresher
	hookWG     sync.WaitGroup
	closeOnce  sync.Once
	abortOnce  sync.Once
	stopOnce   sync.Once
	closeWatch *failWatch // counts the records that fail once Close began
	closeMu    sync.Mutex
	closeCause error // why Close gave up: ErrClosed and its context's error
	closeErr   error // what every Close returns, set once the producer stopped
	closeStart time.Time
	closeAttrs []slog.Attr // of the first Close's context

	stats       counters
	listing     atomic.Pointer[listing] // the last shard listing's outcome
	healthState healthState
}

// New returns a Producer for stream, sending through client. It checks the options and starts
// the producer's goroutines; it makes no call to Kinesis (the shard map is listed in the
// background, and records Put meanwhile wait for it; see Ready for a start-up check). A bad
// option or argument, a nil Option included, is a *ConfigError naming it, which matches
// ErrInvalidConfig.
func New(client API, stream string, opts ...Option) (*Producer, error) {
	if client == nil {
		return nil, cfgerr.New("producer", "client", "nil Kinesis client")
	}
	if stream == "" {
		return nil, cfgerr.New("producer", "stream", "empty stream name")
	}
	cfg := defaultConfig()
	if err := cfgerr.Apply("producer", &cfg, opts); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := &Producer{
		api:        client,
		stream:     stream,
		cfg:        cfg,
		labels:     metrics.Labels{Stream: stream},
		log:        cfg.logger.With("stream", stream),
		buf:        newBuffer(cfg.bufferRecords, cfg.bufferBytes),
		closing:    make(chan struct{}),
		flushSig:   make(chan struct{}, 1),
		refreshSig: make(chan struct{}, 1),
		maps:       make(chan mapUpdate),
		reqs:       make(chan *request, cfg.maxInFlight),
		resps:      make(chan *request, cfg.maxInFlight),
	}
	p.run, p.cancel = context.WithCancelCause(context.Background())
	p.bus = events.NewBus(cfg.listeners,
		func() { p.cfg.metrics.Add(metrics.EventsDropped, 1, p.labels) },
		func(r any) {
			p.cfg.metrics.Add(metrics.EventsListenerPanics, 1, p.labels)
			p.log.Error("producer: event listener panicked", "panic", r)
		})
	if cfg.onFailure != nil {
		p.hooks = newHookQueue()
		p.hookWG.Add(1)
		go p.runHooks()
	}
	p.refreshSig <- struct{}{} // the first listing
	d := newDispatcher(p)
	p.pipeline.Add(2 + cfg.maxInFlight)
	go d.run()
	go p.refreshLoop()
	for range cfg.maxInFlight {
		go p.sendLoop()
	}
	return p, nil
}

// Put accepts a record for partitionKey and returns its Result at once, or after waiting for
// room in the buffer (see WithBufferLimits) for as long as ctx allows. It returns an error and
// accepts nothing if the record is invalid (ErrEmptyPartitionKey, ErrPartitionKeyTooLong,
// ErrInvalidPartitionKey, ErrRecordTooLarge), if the producer is closed (ErrClosed) or if ctx
// ends while the buffer is full (an error matching both ErrBufferFull and ctx's error). Put
// does not copy data: leave it unmodified until the record's outcome is known.
func (p *Producer) Put(ctx context.Context, partitionKey string, data []byte) (*Result, error) {
	return p.put(ctx, Record{PartitionKey: partitionKey, Data: data}, true)
}

// PutRecord is Put for a Record, which may carry an explicit hash key (checked:
// ErrInvalidExplicitHashKey).
func (p *Producer) PutRecord(ctx context.Context, rec Record) (*Result, error) {
	return p.put(ctx, rec, true)
}

// TryPut is Put without waiting: it returns ErrBufferFull when the buffer has no room now, or
// when blocked Puts are waiting for room (they go first).
func (p *Producer) TryPut(partitionKey string, data []byte) (*Result, error) {
	return p.put(context.Background(), Record{PartitionKey: partitionKey, Data: data}, false)
}

// TryPutRecord is PutRecord without waiting: it returns ErrBufferFull when the buffer has no
// room now.
func (p *Producer) TryPutRecord(rec Record) (*Result, error) {
	return p.put(context.Background(), rec, false)
}

// PutSync puts a record and waits for its outcome: it returns the Outcome and its Err, or the
// error Put returned, or, if ctx ends while it waits for the outcome, an error matching
// ErrWaitAbandoned and ctx's error (the record then goes on without a waiter; an OnFailure
// hook still sees it if it fails). The wait includes the linger time, which Flush or a full
// batch cuts short.
func (p *Producer) PutSync(ctx context.Context, partitionKey string, data []byte) (Outcome, error) {
	r, err := p.Put(ctx, partitionKey, data)
	if err != nil {
		return Outcome{Err: err}, err
	}
	return r.Wait(ctx)
}

func (p *Producer) put(ctx context.Context, rec Record, block bool) (*Result, error) {
	h, err := p.cfg.check(&rec)
	if err != nil {
		return nil, err
	}
	var attrs *[]slog.Attr
	if p.bus.Active() {
		if a := events.AttrsFrom(ctx); a != nil {
			attrs = new([]slog.Attr) // not &a: a would then move to the heap on every call
			*attrs = a
		}
	}
	return p.buf.admit(ctx, &rec, h, attrs, block)
}

// Flush sends every buffered record without waiting for its linger time, and waits until every
// record accepted before the call has its outcome (and OnFailure hook call), or until ctx ends.
// Records accepted during the call are sent too but not waited for.
//
// Flush returns nil when none of the records it waited for failed after it was called, a
// *FailedError counting those that did (with the first one's error), or an error wrapping
// ctx's error if ctx ended first.
func (p *Producer) Flush(ctx context.Context) error {
	start := time.Now()
	failed, err := p.flush(ctx)
	if p.bus.Active() {
		p.emit(events.Event{Type: events.FlushDone, Duration: time.Since(start), Records: failed, Err: err, Attrs: events.AttrsFrom(ctx)})
	}
	return err
}

// flush is Flush; it also returns how many of the records it waited for failed.
func (p *Producer) flush(ctx context.Context) (int, error) {
	done, watch := p.buf.mark()
	if done == nil {
		return 0, nil
	}
	select {
	case p.flushSig <- struct{}{}:
	default:
	}
	select {
	case <-done:
		if w := p.buf.unwatch(watch); w.count > 0 {
			return w.count, &FailedError{Op: "flush", Count: w.count, First: w.first}
		}
		return 0, nil
	case <-ctx.Done():
		w := p.buf.unwatch(watch)
		return w.count, fmt.Errorf("producer: flush: %w", ctx.Err())
	}
}

// Close stops the producer: Put returns ErrClosed from now on, everything buffered is sent at
// once, and Close waits until every record has its outcome or ctx ends. If ctx ends first,
// requests in flight are cancelled and every record without an outcome fails with an error
// that matches both ErrClosed and ctx's error (errors.Is), and also ErrMaybeWritten if its
// request was in flight. Close then stops every goroutine of the producer, after the OnFailure
// hook calls, and returns.
//
// Close returns nil when no record failed after Close was first called. Otherwise it returns
// a *FailedError counting those records, the ones it gave up on included; if it gave up
// because ctx ended, the error also matches ErrClosed and ctx's error. Records that failed
// before Close are not counted (their Results and Stats tell). It is safe to call
// concurrently and more than once: each call waits for the shutdown, any call's ctx ending
// cuts it short, and every call returns the same error.
func (p *Producer) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		p.closeStart, p.closeAttrs = time.Now(), events.AttrsFrom(ctx)
		p.closeWatch = p.buf.watchAll()
		p.buf.close()
		close(p.closing)
	})
	select {
	case <-p.buf.drained:
	case <-ctx.Done():
		p.abort(ctx.Err())
	}
	p.stopOnce.Do(p.stop)
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	return p.closeErr
}

// abort makes the producer give up on every record still without an outcome.
func (p *Producer) abort(cause error) {
	p.abortOnce.Do(func() {
		if records, _ := p.buf.usage(); records == 0 {
			return // drained after all
		}
		p.closeMu.Lock()
		p.closeCause = fmt.Errorf("%w: %w", ErrClosed, cause)
		p.closeMu.Unlock()
		p.log.Warn("producer: close gave up on undelivered records", "err", cause)
		p.cancel(fmt.Errorf("%w: %w", ErrClosed, cause))
	})
}

// stop ends every goroutine: the pipeline first (the dispatcher fails what it still holds),
// then the hook goroutine once nothing can fail any more. Then it settles what Close returns.
func (p *Producer) stop() {
	p.cancel(nil)
	p.pipeline.Wait()
	if p.hooks != nil {
		close(p.hooks.stop)
		p.hookWG.Wait()
	}
	w := p.buf.unwatch(p.closeWatch)
	p.closeMu.Lock()
	if w.count > 0 {
		p.closeErr = &FailedError{Op: "close", Count: w.count, First: w.first, Err: p.closeCause}
	}
	closeErr := p.closeErr
	p.closeMu.Unlock()
	p.emit(events.Event{Type: events.ProducerClosed, Duration: time.Since(p.closeStart), Records: w.count, Err: closeErr, Attrs: p.closeAttrs})
	// The listeners get every event; a listener stuck for long cannot hold Close past a second.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = p.bus.Close(ctx)
	cancel()
}

// emit fills the fields every producer event has and hands e to the listeners. Without
// listeners it costs a nil check.
func (p *Producer) emit(e events.Event) {
	if !p.bus.Active() {
		return
	}
	e.Time, e.Stream = time.Now(), p.stream
	p.bus.Emit(e)
}
