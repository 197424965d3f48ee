package consumer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/events"
	"github.com/shardline/kinesis/internal/cfgerr"
	"github.com/shardline/kinesis/metrics"
)

// API is the set of Kinesis calls the consumer makes; *kinesis.Client satisfies it, and tests
// plug fakes in.
type API interface {
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

var _ API = (*kinesis.Client)(nil)

// Consumer reads a stream as one worker of a consumer group: it holds leases on some of the
// stream's shards, reads each held shard in its own goroutine, hands the records to a
// Handler and checkpoints them in the store. Workers of a group share the shards evenly.
type Consumer struct {
	client API
	stream string
	store  checkpoint.Store
	cfg    config
	labels metrics.Labels // stream only

	started atomic.Bool
	stopped atomic.Bool  // Run returned
	queued  atomic.Int64 // user records handed to handlers and not yet returned

	leaseLive  *checkpoint.Liveness // lease counters of other workers
	workerLive *checkpoint.Liveness // worker heartbeat counters

	events chan readerEvent // shard ends and fatal errors from readers, to the coordinator
	fatal  chan error       // first fatal error; buffered 1

	// log carries stream, group and worker on every line; a reader's adds its shard.
	log        *slog.Logger
	instance   string         // this run's value in the heartbeat row (see heartbeat)
	beats      int            // heartbeats written; only the coordinator touches it
	duplicates map[string]int // other live instances seen with this worker's ID; coordinator only
	// workerExpiry is how long until the first live worker would expire if its heartbeat
	// counter does not move; 0 for none. Coordinator only.
	workerExpiry time.Duration
	health       storeHealth
	bus          *events.Bus // listeners' events during Run; nil without listeners

	mu        sync.Mutex
	readers   map[string]*shardReader // leases this worker holds, by shard ID
	handedOff map[string]handedOff    // shards released on another worker's request
	topo      *topology
	workers   int              // live workers at the last balancing run
	share     int              // the leases this worker aimed at, at the last balancing run
	balanced  time.Time        // when the last balancing run completed
	lastErr   error            // last coordinator error
	unsavedBy map[string]error // final checkpoints that failed at shutdown, by shard
}

// New returns a Consumer of stream that keeps its leases and checkpoints in store.
// The stream is not contacted until Run. A bad option or argument, a nil Option included, is a
// *ConfigError naming it, which matches ErrInvalidConfig.
func New(client API, stream string, store checkpoint.Store, opts ...Option) (*Consumer, error) {
	switch {
	case client == nil:
		return nil, cfgerr.New("consumer", "client", "nil Kinesis client")
	case stream == "":
		return nil, cfgerr.New("consumer", "stream", "empty stream name")
	case store == nil:
		return nil, cfgerr.New("consumer", "store", "nil checkpoint store")
	}
	cfg := defaultConfig()
	if err := cfgerr.Apply("consumer", &cfg, opts); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Consumer{
		client:     client,
		stream:     stream,
		cfg:        cfg,
		labels:     metrics.Labels{Stream: stream},
		log:        cfg.logger.With("stream", stream, "group", cfg.group, "worker", cfg.workerID),
		leaseLive:  checkpoint.NewLiveness(cfg.leaseDuration, nil),
		workerLive: checkpoint.NewLiveness(cfg.leaseDuration, nil),
		events:     make(chan readerEvent, 64),
		fatal:      make(chan error, 1),
		readers:    make(map[string]*shardReader),
		handedOff:  make(map[string]handedOff),
		topo:       newTopology(),
		instance:   newInstance(),
		duplicates: make(map[string]int),
		unsavedBy:  make(map[string]error),
	}
	c.store = &timedStore{Store: store, c: c}
	return c, nil
}

// newInstance returns a fresh worker instance value: 16 hex digits of the current time in
// unix nanoseconds, "-", 8 random bytes in hex. Two processes with one worker ID compare
// each other's instance strings and agree on which one started later.
func newInstance() string {
	var b [8]byte
	rand.Read(b[:]) // never fails since Go 1.24
	return fmt.Sprintf("%016x-%s", uint64(time.Now().UnixNano()), hex.EncodeToString(b[:]))
}

// WorkerID returns the ID this worker uses in the lease table.
func (c *Consumer) WorkerID() string { return c.cfg.workerID }

// Group returns the consumer group.
func (c *Consumer) Group() string { return c.cfg.group }

// Run consumes the stream until ctx ends or a fatal error, calling h for every batch.
//
// When ctx ends, Run stops taking leases, lets every running handler call finish (up to the
// shutdown timeout), checkpoints what was handled, releases its leases so other workers take
// over at once, removes itself from the worker registry and returns nil, or a
// *FinalCheckpointError naming the shards whose final checkpoint could not be written.
//
// Misconfiguration fails fast: a stream that does not exist, a missing DynamoDB table, a
// denied permission, or a store or stream that cannot be reached when Run starts, stops Run
// within seconds with a *FatalError (errors.As reaches the AWS or store error). A store outage
// that begins later is retried (see WithMaxStoreOutage). Other fatal errors (a handler failing
// under StopOnFailure, DecodeStop, another live process with this worker ID) trigger the same
// graceful shutdown and are returned. Run may be called once.
func (c *Consumer) Run(ctx context.Context, h Handler) error {
	if h == nil {
		return cfgerr.New("consumer", "handler", "nil Handler")
	}
	if !c.started.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	log := c.log
	log.Info("consumer starting")
	c.startEvents()
	c.emit(events.Event{Type: events.WorkerStarted})

	// Renewals run in their own goroutine so a slow handler or a slow balancing run never
	// delays them. They go on until every reader has released its lease.
	renewCtx, stopRenew := context.WithCancel(context.Background())
	var renewWG sync.WaitGroup
	renewWG.Go(func() { c.renewLoop(renewCtx) })

	err := c.coordinate(ctx, h)
	if err != nil {
		c.emit(events.Event{Type: events.Fatal, Err: err})
	}

	c.stopReaders()
	stopRenew()
	renewWG.Wait()
	c.leaveGroup(err)
	if unsaved := c.unsavedError(); unsaved != nil {
		err = errors.Join(err, unsaved)
	}
	c.cfg.metrics.Set(metrics.ConsumerLeasesHeld, 0, c.labels)
	c.cfg.metrics.Set(metrics.ConsumerQueueSize, 0, c.labels)
	c.emit(events.Event{Type: events.WorkerStopped, Err: err})
	c.stopped.Store(true)
	closeCtx, cancel := context.WithTimeout(context.Background(), c.cfg.shutdownTimeout)
	_ = c.bus.Close(closeCtx) // the listeners get every event of the run
	cancel()
	if err != nil {
		log.Error("consumer stopped", "err", err)
		return err
	}
	log.Info("consumer stopped")
	return nil
}

// reportFatal records the first fatal error; the coordinator then shuts down.
func (c *Consumer) reportFatal(err error) {
	select {
	case c.fatal <- err:
	default:
	}
}

// stopReaders asks every reader to finish its current batch, checkpoint and release, waits up
// to the shutdown timeout, then cancels the handlers still running and waits for them.
func (c *Consumer) stopReaders() {
	c.mu.Lock()
	readers := make([]*shardReader, 0, len(c.readers))
	for _, r := range c.readers {
		readers = append(readers, r)
	}
	c.mu.Unlock()
	for _, r := range readers {
		r.stop(stopShutdown)
	}
	timer := time.NewTimer(c.cfg.shutdownTimeout)
	defer timer.Stop()
	for _, r := range readers {
		select {
		case <-r.done:
		case <-timer.C:
			for _, r := range readers {
				r.cancel(errShutdownTimeout)
			}
			for _, r := range readers {
				<-r.done
			}
			return
		}
	}
}

var errShutdownTimeout = errors.New("consumer: shutdown timeout: handler cancelled")

// unsaved records that the final checkpoint of shard failed at shutdown.
func (c *Consumer) unsaved(shard string, err error) {
	c.mu.Lock()
	c.unsavedBy[shard] = err
	c.mu.Unlock()
}

// unsavedError returns a *FinalCheckpointError for the final checkpoints that failed, or nil.
func (c *Consumer) unsavedError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.unsavedBy) == 0 {
		return nil
	}
	e := &FinalCheckpointError{Shards: sortedKeys(c.unsavedBy), Errs: maps.Clone(c.unsavedBy)}
	return e
}
