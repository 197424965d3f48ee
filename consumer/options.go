package consumer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/shardline/kinesis/events"
	"github.com/shardline/kinesis/internal/cfgerr"
	"github.com/shardline/kinesis/metrics"
)

// StartPosition is where a shard without a checkpoint is read from. A checkpoint always wins.
type StartPosition int

const (
	// TrimHorizon reads from the oldest record in retention (the KCL's TRIM_HORIZON).
	TrimHorizon StartPosition = iota
	// Latest reads only records put after the shard is first read (the KCL's LATEST).
	Latest
	// AtTimestamp reads from the first record that arrived at or after the time given to
	// WithStartTimestamp (the KCL's AT_TIMESTAMP).
	AtTimestamp
)

// String returns the Kinesis name of p.
func (p StartPosition) String() string {
	switch p {
	case TrimHorizon:
		return "TRIM_HORIZON"
	case Latest:
		return "LATEST"
	case AtTimestamp:
		return "AT_TIMESTAMP"
	}
	return fmt.Sprintf("StartPosition(%d)", int(p))
}

// CheckpointMode says when the consumer writes checkpoints.
type CheckpointMode int

const (
	// CheckpointEveryBatch checkpoints after every batch the handler accepted (returned nil),
	// and reads the next batch only once that checkpoint is stored (retrying a store that
	// cannot be reached). A crash re-delivers at most the batch being handled.
	CheckpointEveryBatch CheckpointMode = iota
	// CheckpointInterval checkpoints the last accepted batch at most once per interval (see
	// WithCheckpointInterval), on a timer that fires whether or not batches arrive, and always
	// at shard end, handoff and shutdown. Fewer store writes; a crash re-delivers up to one
	// interval of records (more while the store cannot be written: reading goes on meanwhile,
	// and the timer retries).
	CheckpointInterval
	// CheckpointManual leaves checkpoints to the handler (Batch.Checkpoint). At shard end the
	// consumer waits until the handler has checkpointed the last delivered record before it
	// marks the shard finished; at shutdown and handoff it releases the lease keeping whatever
	// the handler checkpointed.
	CheckpointManual
)

// DecodePolicy says what happens to a Kinesis record that carries the KPL magic and a valid
// checksum but does not parse as an aggregate (a corrupt or foreign producer).
type DecodePolicy int

const (
	// DecodeSkip drops the record, counts it in consumer_records_skipped_total
	// (error_type=decode) and logs its shard and sequence number. The shard goes on.
	DecodeSkip DecodePolicy = iota
	// DecodeDeliverRaw delivers the record's data unchanged as one plain record.
	DecodeDeliverRaw
	// DecodeStop stops the consumer: Run shuts every shard down gracefully (checkpointing what
	// was handled) and returns a *DecodeError naming the record.
	DecodeStop
)

// FailurePolicy says what happens to a batch the handler kept failing on after
// WithHandlerRetries retries.
type FailurePolicy int

const (
	// RetryShard keeps handing the batch to the handler, with capped backoff, until it
	// succeeds or the lease moves; only that shard waits, the others go on. Nothing is skipped
	// and nothing is checkpointed past the failing batch. This is the default: a production
	// consumer should neither lose records nor stop every shard for one bad record, and a stuck
	// shard is visible (consumer_errors_total{error_type="handler"}, growing iterator age and
	// lag, Status().Shards[i].LastError) so an operator can act.
	RetryShard FailurePolicy = iota
	// StopOnFailure stops Run with a *HandlerError: every shard shuts down gracefully,
	// checkpointing what was handled. Whichever worker takes the shard next meets the same
	// batch. The policy of earlier versions.
	StopOnFailure
	// DeadLetterOnFailure hands the batch to the function given to WithDeadLetter and, once it
	// returns nil, goes on as if the handler had accepted the batch (it is checkpointed in the
	// automatic modes; in CheckpointManual mode the function checkpoints it if it wants it
	// acknowledged). If the function fails, the batch is retried as under RetryShard.
	DeadLetterOnFailure
)

// DeadLetterFunc receives a batch the handler kept failing on and the handler's last error,
// from the shard's goroutine (serially per shard). It should store the records somewhere
// durable (a dead-letter stream or queue) and return nil only once they are safe. ctx is the
// shard's context, cancelled when the lease is lost.
type DeadLetterFunc func(ctx context.Context, b *Batch, err error) error

// Option configures a Consumer.
type Option func(*config)

type config struct {
	group          string
	workerID       string
	start          StartPosition
	startTimestamp time.Time

	checkpointMode     CheckpointMode
	checkpointInterval time.Duration

	leaseDuration   time.Duration
	renewInterval   time.Duration
	syncInterval    time.Duration
	shardSync       time.Duration
	maxStealsPerRun int
	maxLeases       int

	maxRecords     int32
	pollInterval   time.Duration
	idleInterval   time.Duration
	errorBackoff   time.Duration
	maxBackoff     time.Duration
	handlerRetries int
	failurePolicy  FailurePolicy
	deadLetter     DeadLetterFunc
	decodePolicy   DecodePolicy
	maxStoreOutage time.Duration

	shutdownTimeout time.Duration
	callTimeout     time.Duration
	wireCodec       bool

	metrics   metrics.Collector
	logger    *slog.Logger
	listeners []events.Listener
	health    HealthThresholds
}

func defaultConfig() config {
	return config{
		start:              TrimHorizon,
		checkpointMode:     CheckpointEveryBatch,
		checkpointInterval: 5 * time.Second,
		leaseDuration:      10 * time.Second,
		maxStealsPerRun:    64,
		maxRecords:         10000,
		pollInterval:       200 * time.Millisecond,
		idleInterval:       time.Second,
		errorBackoff:       200 * time.Millisecond,
		maxBackoff:         5 * time.Second,
		handlerRetries:     5,
		decodePolicy:       DecodeSkip,
		shutdownTimeout:    30 * time.Second,
		callTimeout:        10 * time.Second,
		wireCodec:          true,
		metrics:            metrics.Nop{},
		logger:             slog.New(slog.DiscardHandler),
	}
}

// validate checks every option and fills the values derived from others. Every error is a
// *ConfigError naming the option at fault.
func (c *config) validate() error {
	bad := func(opt, format string, args ...any) error { return cfgerr.New("consumer", opt, format, args...) }
	switch {
	case c.group == "":
		return bad("WithGroup", "a consumer group is required: name it (workers of one group share the shards; two applications must not share a group)")
	case c.start < TrimHorizon || c.start > AtTimestamp:
		return bad("WithStartPosition", "unknown start position %d", c.start)
	case c.start == AtTimestamp && c.startTimestamp.IsZero():
		return bad("WithStartTimestamp", "AtTimestamp needs a time: use WithStartTimestamp(t) with a non-zero t")
	case c.checkpointMode < CheckpointEveryBatch || c.checkpointMode > CheckpointManual:
		return bad("WithCheckpointMode", "unknown checkpoint mode %d", c.checkpointMode)
	case c.checkpointMode == CheckpointInterval && c.checkpointInterval <= 0:
		return bad("WithCheckpointInterval", "%v: need a positive interval", c.checkpointInterval)
	case c.leaseDuration < 100*time.Millisecond:
		return bad("WithLeaseDuration", "%v is below 100ms", c.leaseDuration)
	case c.maxStealsPerRun < 0:
		return bad("WithMaxStealsPerRun", "negative count %d", c.maxStealsPerRun)
	case c.maxLeases < 0:
		return bad("WithMaxLeases", "negative count %d", c.maxLeases)
	case c.maxRecords < 1 || c.maxRecords > 10000:
		return bad("WithMaxRecords", "%d: need 1 to 10000 (the GetRecords limit)", c.maxRecords)
	case c.pollInterval < 200*time.Millisecond:
		// Kinesis allows 5 GetRecords calls per second per shard, shared by every consumer.
		return bad("WithPollInterval", "%v is below 200ms (5 GetRecords calls/s per shard)", c.pollInterval)
	case c.idleInterval < c.pollInterval:
		return bad("WithIdleInterval", "%v is below the poll interval %v", c.idleInterval, c.pollInterval)
	case c.errorBackoff <= 0:
		return bad("WithBackoff", "base %v: need a positive duration", c.errorBackoff)
	case c.maxBackoff < c.errorBackoff:
		return bad("WithBackoff", "cap %v is below the base %v", c.maxBackoff, c.errorBackoff)
	case c.handlerRetries < 0:
		return bad("WithHandlerRetries", "negative count %d", c.handlerRetries)
	case c.failurePolicy < RetryShard || c.failurePolicy > DeadLetterOnFailure:
		return bad("WithFailurePolicy", "unknown failure policy %d", c.failurePolicy)
	case c.failurePolicy == DeadLetterOnFailure && c.deadLetter == nil:
		return bad("WithDeadLetter", "DeadLetterOnFailure needs a dead-letter function: use WithDeadLetter(fn) with a non-nil fn")
	case c.maxStoreOutage < 0:
		return bad("WithMaxStoreOutage", "negative duration %v", c.maxStoreOutage)
	case c.decodePolicy < DecodeSkip || c.decodePolicy > DecodeStop:
		return bad("WithDecodePolicy", "unknown decode policy %d", c.decodePolicy)
	case c.shutdownTimeout <= 0:
		return bad("WithShutdownTimeout", "%v: need a positive duration", c.shutdownTimeout)
	case c.callTimeout <= 0:
		return bad("WithCallTimeout", "%v: need a positive duration", c.callTimeout)
	case c.metrics == nil:
		return bad("WithMetrics", "nil collector")
	case c.logger == nil:
		return bad("WithLogger", "nil logger")
	case c.health.ReadGap < 0 || c.health.ReadGapFailing < 0 || c.health.IteratorAge < 0 ||
		c.health.IteratorAgeFailing < 0 || c.health.StoreOutage < 0 || c.health.CheckpointFailing < 0:
		return bad("WithHealthThresholds", "negative threshold in %+v", c.health)
	case slices.Contains(c.listeners, nil):
		return bad("WithListener", "nil listener")
	case c.renewInterval < 0:
		return bad("WithRenewInterval", "negative interval %v", c.renewInterval)
	case c.syncInterval < 0:
		return bad("WithBalanceInterval", "negative interval %v", c.syncInterval)
	case c.shardSync < 0:
		return bad("WithShardSyncInterval", "negative interval %v", c.shardSync)
	}
	if c.renewInterval == 0 {
		c.renewInterval = c.leaseDuration / 3
	}
	if c.syncInterval == 0 {
		c.syncInterval = c.leaseDuration / 2
	}
	if c.shardSync == 0 {
		c.shardSync = time.Minute
	}
	if c.renewInterval >= c.leaseDuration {
		return bad("WithRenewInterval", "%v must be below the lease duration %v", c.renewInterval, c.leaseDuration)
	}
	if c.workerID == "" {
		c.workerID = defaultWorkerID()
	}
	return nil
}

func defaultWorkerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// WithGroup names the consumer group: workers of one group share the shards of the stream and
// one position per shard. Required: a default name would let two applications on one store
// silently share shards and positions. KCL: applicationName (required there too).
func WithGroup(name string) Option { return func(c *config) { c.group = name } }

// WithWorkerID sets this worker's ID in the lease table. It must be unique within the group.
// Default: hostname, PID and a random suffix. KCL: workerIdentifier.
func WithWorkerID(id string) Option { return func(c *config) { c.workerID = id } }

// WithStartPosition sets where shards without a checkpoint are read from. Default
// TrimHorizon. Child shards of a reshard whose parents this group read are always read from
// their start, whatever this says. KCL: initialPositionInStream.
func WithStartPosition(p StartPosition) Option { return func(c *config) { c.start = p } }

// WithStartTimestamp sets the start position to AtTimestamp at t.
func WithStartTimestamp(t time.Time) Option {
	return func(c *config) { c.start, c.startTimestamp = AtTimestamp, t }
}

// WithCheckpointMode sets when checkpoints are written. Default CheckpointEveryBatch.
func WithCheckpointMode(m CheckpointMode) Option { return func(c *config) { c.checkpointMode = m } }

// WithCheckpointInterval selects CheckpointInterval with the given interval (default 5s).
func WithCheckpointInterval(d time.Duration) Option {
	return func(c *config) { c.checkpointMode, c.checkpointInterval = CheckpointInterval, d }
}

// WithLeaseDuration sets how long a lease's counter may stay unchanged before other workers
// judge its owner dead and take the lease. It bounds how long a crashed worker's shards stay
// unread. Default 10s. Renewals run every third of it and balancing every half unless set.
// KCL: failoverTimeMillis.
func WithLeaseDuration(d time.Duration) Option { return func(c *config) { c.leaseDuration = d } }

// WithRenewInterval sets how often held leases are renewed. Default a third of the lease
// duration; it must be below the lease duration.
func WithRenewInterval(d time.Duration) Option { return func(c *config) { c.renewInterval = d } }

// WithBalanceInterval sets how often the worker heartbeats, lists workers and leases, and
// takes or steals leases. Default half the lease duration.
func WithBalanceInterval(d time.Duration) Option { return func(c *config) { c.syncInterval = d } }

// WithShardSyncInterval sets how often the shard list is read again to find reshards that no
// owned shard reported. Default 1 minute. KCL: shardSyncIntervalMillis.
func WithShardSyncInterval(d time.Duration) Option { return func(c *config) { c.shardSync = d } }

// WithMaxStealsPerRun sets how many handoffs a worker may ask live workers for in one
// balancing run. Several handoffs run at once, so a joining worker reaches its share within
// about one lease duration however many shards it needs. Default 64; 0 disables stealing.
// KCL: maxLeasesToStealAtOneTime (default 1 there).
func WithMaxStealsPerRun(n int) Option { return func(c *config) { c.maxStealsPerRun = n } }

// WithMaxLeases caps the leases this worker holds. Default 0, no cap. KCL: maxLeasesForWorker.
func WithMaxLeases(n int) Option { return func(c *config) { c.maxLeases = n } }

// WithMaxRecords sets the GetRecords limit per call, 1 to 10000. Default 10000. KCL:
// maxRecords.
func WithMaxRecords(n int) Option { return func(c *config) { c.maxRecords = int32(n) } }

// WithPollInterval sets the least time between two GetRecords calls on a shard. Default and
// minimum 200ms: Kinesis allows 5 calls per second per shard. KCL: idleTimeBetweenReadsInMillis.
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.pollInterval = d } }

// WithIdleInterval caps the wait between GetRecords calls on a shard that is caught up (no
// records and MillisBehindLatest 0); the wait grows from the poll interval to this. Default 1s.
func WithIdleInterval(d time.Duration) Option { return func(c *config) { c.idleInterval = d } }

// WithBackoff sets the capped exponential backoff (with jitter) after throttling and errors
// reading a shard, and between handler retries. Defaults 200ms and 5s.
func WithBackoff(base, max time.Duration) Option {
	return func(c *config) { c.errorBackoff, c.maxBackoff = base, max }
}

// WithHandlerRetries sets how many times a batch is handed again to a handler that returned an
// error, with backoff, before the failure policy applies (see WithFailurePolicy). Default 5.
// KCL: none (the KCL skips a batch whose processRecords throws).
func WithHandlerRetries(n int) Option { return func(c *config) { c.handlerRetries = n } }

// WithFailurePolicy sets what happens to a batch the handler kept failing on. Default
// RetryShard (see there why).
func WithFailurePolicy(p FailurePolicy) Option { return func(c *config) { c.failurePolicy = p } }

// WithDeadLetter selects DeadLetterOnFailure with fn as the dead-letter function.
func WithDeadLetter(fn DeadLetterFunc) Option {
	return func(c *config) { c.failurePolicy, c.deadLetter = DeadLetterOnFailure, fn }
}

// WithMaxStoreOutage bounds how long the checkpoint store may stay unreachable while Run is
// running: past it, Run stops with a *FatalError. Meanwhile the worker keeps reading the shards
// it holds, retries, logs the outage at WARN, counts it in consumer_store_errors_total and
// shows it in Status; leases it cannot renew for a lease duration are given up, so other
// workers take over safely when the store comes back. Default 0: retry for as long as it takes.
// A store that cannot be reached when Run starts fails Run within seconds whatever this says.
// KCL: none.
func WithMaxStoreOutage(d time.Duration) Option { return func(c *config) { c.maxStoreOutage = d } }

// WithDecodePolicy sets what happens to records that fail to deaggregate. Default DecodeSkip.
func WithDecodePolicy(p DecodePolicy) Option { return func(c *config) { c.decodePolicy = p } }

// WithShutdownTimeout bounds the graceful part of shutdown and handoff: how long a running
// handler may take to finish its batch before its context is cancelled. Default 30s.
func WithShutdownTimeout(d time.Duration) Option { return func(c *config) { c.shutdownTimeout = d } }

// WithCallTimeout bounds each call to Kinesis and to the checkpoint store, retries inside the
// AWS SDK or the store's client included. producer.WithCallTimeout and the DynamoDB store's
// WithCallTimeout bound their calls the same way. Default 10s. KCL: none (the KCL bounds
// Kinesis calls with the SDK client's timeouts).
func WithCallTimeout(d time.Duration) Option { return func(c *config) { c.callTimeout = d } }

// WithWireCodec turns Shardline's own GetRecords codec on or off. Default on: responses are
// decoded straight into records that share one allocation per response, several times
// faster than the AWS SDK's generic JSON codec. Signing, retries, endpoints and middleware
// stay the SDK's either way, and so do errors (every modeled exception is the same value).
// It applies only to a *kinesis.Client on the AWS JSON protocol; turn it off to have the
// SDK decode every response (for instance to compare the two).
func WithWireCodec(on bool) Option { return func(c *config) { c.wireCodec = on } }

// WithMetrics sets the metrics collector. Default metrics.Nop.
func WithMetrics(m metrics.Collector) Option { return func(c *config) { c.metrics = m } }

// WithListener adds a listener of the consumer's lifecycle events (see package events for the
// catalog and the delivery rules: one goroutine, serial, never blocking the consumer; a
// panicking listener is recovered and counted). May be given several times. Default: none.
func WithListener(l events.Listener) Option {
	return func(c *config) { c.listeners = append(c.listeners, l) }
}

// WithLogger sets the logger. Default: logs are discarded.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }
