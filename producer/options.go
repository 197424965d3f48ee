package producer

import (
	"log/slog"
	"slices"
	"time"

	"github.com/shardline/kinesis/events"
	"github.com/shardline/kinesis/internal/backoff"
	"github.com/shardline/kinesis/internal/cfgerr"
	"github.com/shardline/kinesis/metrics"
)

// Kinesis limits the defaults and checks refer to.
const (
	// DefaultMaxRecordSize is the Kinesis record limit (partition key + data) of a stream
	// that was not configured otherwise: 1 MiB.
	DefaultMaxRecordSize = 1 << 20
	// MaxRecordSizeLimit is the largest record size a stream can be configured for: 10 MiB.
	MaxRecordSizeLimit = 10 << 20
	// MaxBatchRecords is the most entries one PutRecords request may carry.
	MaxBatchRecords = 500
	// MaxBatchBytes is the most bytes (partition keys + data) the producer puts in one
	// PutRecords request. An entry larger than this (possible only with records over 5 MiB,
	// see WithMaxRecordSize) travels alone, within the 10 MiB request limit.
	MaxBatchBytes = 5 << 20
	// DefaultAggregationMaxSize is the KPL's AggregationMaxSize: 51,200 bytes.
	DefaultAggregationMaxSize = 51200
	// maxKeyBytes is the most UTF-8 bytes a valid partition key can take: 256 UTF-16 code
	// units of at most 3 bytes each (a 4-byte character takes 2 units).
	maxKeyBytes = 256 * 3
)

// config is what the options set; defaultConfig holds every default and validate checks it.
type config struct {
	logger  *slog.Logger
	metrics metrics.Collector

	linger      time.Duration
	maxInFlight int

	bufferRecords int
	bufferBytes   int

	aggregation        bool
	aggregationMaxSize int

	batchRecords int
	batchBytes   int

	maxRecordSize int

	shardRecordsPerSec int
	shardBytesPerSec   int

	ordering bool

	maxAttempts int
	recordTTL   time.Duration
	backoff     backoff.Policy

	requestTimeout  time.Duration
	wireCodec       bool
	shardMapRefresh time.Duration

	onFailure func(Record, Outcome)
	listeners []events.Listener
	health    HealthThresholds
}

func defaultConfig() config {
	return config{
		logger:             slog.New(slog.DiscardHandler),
		metrics:            metrics.Nop{},
		linger:             100 * time.Millisecond,
		maxInFlight:        8,
		bufferRecords:      100_000,
		bufferBytes:        64 << 20,
		aggregation:        true,
		aggregationMaxSize: DefaultAggregationMaxSize,
		batchRecords:       MaxBatchRecords,
		batchBytes:         MaxBatchBytes,
		maxRecordSize:      DefaultMaxRecordSize,
		shardRecordsPerSec: 1000,
		shardBytesPerSec:   1 << 20,
		ordering:           true,
		maxAttempts:        10,
		recordTTL:          30 * time.Second,
		backoff:            backoff.Policy{Base: 100 * time.Millisecond, Max: 5 * time.Second},
		requestTimeout:     6 * time.Second,
		wireCodec:          true,
		shardMapRefresh:    time.Minute,
	}
}

// Option configures a Producer; pass options to New.
type Option func(*config)

// WithLogger sets the logger for shard-map refreshes, request failures, retries given up and
// shutdown. Record data, partition keys and credentials are never logged. Default: a logger
// that discards everything. KPL: LogLevel.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithMetrics sets the collector that receives the producer_* metrics of the catalog in
// package metrics. Default: metrics.Nop{}. KPL: MetricsLevel (CloudWatch).
func WithMetrics(m metrics.Collector) Option {
	return func(c *config) { c.metrics = m }
}

// WithLinger sets how long a record may wait for others to share its aggregate and its
// PutRecords request before it is sent anyway; full requests leave at once, and so do those
// that can take no more of the records waiting (with ordering, when the next records of their
// keys wait for them). It also paces a shard whose records wait for tokens (see
// WithShardRateLimit): at most one request per linger time, or per 500 ms if that is less. 0
// sends whatever is buffered as soon as possible. Default: 100 ms. KPL: RecordMaxBufferedTime
// (100 ms).
func WithLinger(d time.Duration) Option {
	return func(c *config) { c.linger = d }
}

// WithMaxInFlight sets how many PutRecords requests may be outstanding at once. Default: 8.
// KPL: MaxConnections (24).
func WithMaxInFlight(n int) Option {
	return func(c *config) { c.maxInFlight = n }
}

// WithBufferLimits bounds the records accepted by Put and not yet delivered or failed, by
// count and by bytes (partition key + data). Put blocks, and TryPut returns ErrBufferFull,
// while a new record would exceed either bound. bytes must be at least the record size limit.
// Default: 100,000 records and 64 MiB. KPL: none (the KPL buffers without bound; callers poll
// getOutstandingRecordsCount).
func WithBufferLimits(records, bytes int) Option {
	return func(c *config) { c.bufferRecords, c.bufferBytes = records, bytes }
}

// WithAggregation turns KPL aggregation on or off. With it on, small records bound for the
// same shard share one Kinesis record, so a shard takes far more than 1,000 user records per
// second; consumers must deaggregate (the KCL, the AWS deaggregation libraries and Shardline's
// consumer do). Default: on. KPL: AggregationEnabled (true).
func WithAggregation(on bool) Option {
	return func(c *config) { c.aggregation = on }
}

// WithAggregationMaxSize sets the largest aggregate, in encoded bytes (magic, protobuf and
// digest; the aggregate's partition key comes on top). A record too large to fit an aggregate
// alone is sent as a plain Kinesis record. It must leave room for the largest partition key
// within the record size limit. Default: 51,200 bytes. KPL: AggregationMaxSize (51200).
func WithAggregationMaxSize(n int) Option {
	return func(c *config) { c.aggregationMaxSize = n }
}

// WithBatchLimits bounds one PutRecords request: at most records entries (1 to 500) and bytes
// bytes of partition keys and data (up to 5 MiB). An entry larger than bytes travels alone.
// Default: 500 entries and 5 MiB, the Kinesis limits. KPL: CollectionMaxCount (500) and
// CollectionMaxSize (5242880).
func WithBatchLimits(records, bytes int) Option {
	return func(c *config) { c.batchRecords, c.batchBytes = records, bytes }
}

// WithMaxRecordSize sets the largest record (partition key + data) Put accepts: the stream's
// maximum record size, 1 MiB unless the stream was configured for more, up to 10 MiB.
// Default: 1 MiB. KPL: none (fixed at 1 MiB).
func WithMaxRecordSize(n int) Option {
	return func(c *config) { c.maxRecordSize = n }
}

// WithShardRateLimit sets the per-shard token buckets the producer spends before sending:
// Kinesis records per second (an aggregate counts as one) and bytes (partition key + data) per
// second. 0 disables a bucket. Each bucket holds one second of tokens, the byte bucket at least
// the record size limit so that the largest record can pass. Keeping under the shard limits
// avoids most throttling when this producer is a shard's only writer. A shard whose records
// wait for tokens sends what its buckets allow once per linger time (at most 500 ms, so that
// no token goes to waste), not a few records every time some trickle in. Default: 1,000
// records/s and 1 MiB/s, the Kinesis shard limits. KPL: RateLimit (150, a percentage of those
// limits).
func WithShardRateLimit(recordsPerSec, bytesPerSec int) Option {
	return func(c *config) { c.shardRecordsPerSec, c.shardBytesPerSec = recordsPerSec, bytesPerSec }
}

// WithOrdering turns per-key ordering on or off. With it on, records that share a partition
// key are stored in the order Put accepted them, retried ones included; so are records that
// share an explicit hash key (a record with an explicit hash key is keyed by it, not by its
// partition key). The producer guarantees it by never having two records of one key in flight
// at once: a newer record waits while an older one of its key is in a request, or waits out a
// retry backoff, and a retried entry goes back ahead of every newer entry sharing a key with
// it. Records of different keys are not ordered with respect to each other: they share
// requests and are in flight together, many per shard, within the rate limits, so a shard
// still takes its full throughput when its records spread over enough keys. A key then gets
// one record (or one aggregate holding its records) per round trip; an aggregate waits for
// every key it holds. Keys are compared through a table of 65,536 buckets of their hash keys:
// two keys of one shard that share a bucket are ordered as if they were one, which costs a
// round trip, never order (rare for single records; aggregates holding hundreds of keys each
// then leave one per round trip per shard, as they all did before keys were tracked). Order
// also holds across a reshard: while records of a shard that left the shard map are in flight
// or being checked nothing is sent, and then they go to the new shards ahead of newer
// records. A record that finally fails is not stored, and newer records of its key go on.
// With it off, entries are sent as fast as the limits allow, in parallel requests that race,
// and a retried entry lands after newer ones: records of a key may be stored in any order.
// Default: on. KPL: none (the KPL may reorder retried records).
func WithOrdering(on bool) Option {
	return func(c *config) { c.ordering = on }
}

// WithRetryBudget bounds how long a record is retried: at most maxAttempts PutRecords attempts
// in all, and no new attempt once the record's first attempt is older than ttl. Time spent
// waiting in the producer's own queue before that first attempt (behind the rate limits, a
// busy key or the in-flight limit; the buffer bounds it) is not spent from the budget. A
// record whose budget is spent fails with a RetryBudgetError wrapping its last error.
// Records that cannot be routed because no shard map could be listed fail after ttl from Put.
// Default: 10 attempts, 30 s. KPL: RecordTtl (30000 ms, from Put); the KPL has no attempt
// limit.
func WithRetryBudget(maxAttempts int, ttl time.Duration) Option {
	return func(c *config) { c.maxAttempts, c.recordTTL = maxAttempts, ttl }
}

// WithBackoff sets the delay before a failed entry is retried: attempt n waits a random time in
// [d/2, d] with d = min(max, base·2ⁿ); the entries of one response that failed as often wait
// the same time, so that they go again together. Newer records sharing a key with a waiting
// entry wait too (with ordering on); an entry refused for throttling also holds its whole
// shard back for the delay. Default: base 100 ms, max 5 s. KPL: none (the KPL retries after
// its RecordMaxBufferedTime).
func WithBackoff(base, max time.Duration) Option {
	return func(c *config) { c.backoff = backoff.Policy{Base: base, Max: max} }
}

// WithCallTimeout bounds each call to Kinesis (PutRecords and ListShards), retries inside
// the AWS SDK included. A timed-out PutRecords counts as a retryable failure: Kinesis may
// have stored the records, so a retry can duplicate them, and if they finally fail their
// outcome error matches ErrMaybeWritten. consumer.WithCallTimeout and the DynamoDB store's
// WithCallTimeout bound their calls the same way. Default: 6 s. KPL: RequestTimeout
// (6000 ms).
func WithCallTimeout(d time.Duration) Option {
	return func(c *config) { c.requestTimeout = d }
}

// WithWireCodec turns Shardline's own PutRecords codec on or off. Default on: the request
// body is written straight from the entries (record data base64-encoded into it once) and
// the answer decoded into reused results, at a fraction of the AWS SDK's generic JSON codec's
// cost. Signing, retries, endpoints and middleware stay the SDK's either way, and so do
// errors (every modeled exception is the same value). It applies only to a *kinesis.Client
// on the AWS JSON protocol; turn it off to have the SDK encode and decode every call.
func WithWireCodec(on bool) Option { return func(c *config) { c.wireCodec = on } }

// WithRequestTimeout is the former name of WithCallTimeout.
//
// Deprecated: use WithCallTimeout, the name every Shardline package uses for the bound on
// one call. WithRequestTimeout will be removed before v1.0.0.
func WithRequestTimeout(d time.Duration) Option { return WithCallTimeout(d) }

// WithShardMapRefresh sets how often the shard map is listed again (ListShards), besides the
// refresh that follows any record landing on a shard other than predicted. 0 keeps only the
// latter. Default: 1 minute. KPL: none (the KPL refreshes on misrouted records only).
func WithShardMapRefresh(d time.Duration) Option {
	return func(c *config) { c.shardMapRefresh = d }
}

// WithOnFailure sets a hook called once for every record that finally failed (a
// non-retryable error, a spent retry budget, or Close), with the record as given to Put and
// its outcome. Hooks run on one goroutine owned by the Producer, one call at a time, in the
// order records failed. A hook may block: the failed record keeps its place in the buffer
// until the hook returns, so a slow hook slows Put down rather than growing memory. A hook must
// not call Flush, Close or a Put that may block (TryPut is fine), and must not keep rec.Data
// after it returns unless it copies it. Flush and Close return only after the hooks of the
// records they waited for have returned. Default: none. KPL: the failure callback of
// addUserRecord's future.
func WithOnFailure(fn func(rec Record, o Outcome)) Option {
	return func(c *config) { c.onFailure = fn }
}

// WithListener adds a listener of the producer's lifecycle events: records retried, entries
// throttled, requests and records failed (with whether Kinesis may hold them), shard-map
// refreshes, Flush and Close (see package events for the catalog and the delivery rules: one
// goroutine, serial, never blocking the producer; a panicking listener is recovered and
// counted). Events of a Put, Flush or Close carry the attributes of its context (see
// events.WithAttrs). May be given several times. Default: none.
func WithListener(l events.Listener) Option {
	return func(c *config) { c.listeners = append(c.listeners, l) }
}

// validate checks every option and their combinations.
func (c *config) validate() error {
	bad := func(opt, format string, args ...any) error {
		return cfgerr.New("producer", opt, format, args...)
	}
	switch {
	case c.logger == nil:
		return bad("WithLogger", "nil logger")
	case slices.Contains(c.listeners, nil):
		return bad("WithListener", "nil listener")
	case c.metrics == nil:
		return bad("WithMetrics", "nil collector")
	case c.linger < 0:
		return bad("WithLinger", "negative duration %v", c.linger)
	case c.maxInFlight < 1:
		return bad("WithMaxInFlight", "%d requests: need at least 1", c.maxInFlight)
	case c.maxRecordSize < 1 || c.maxRecordSize > MaxRecordSizeLimit:
		return bad("WithMaxRecordSize", "%d bytes: need 1 to %d", c.maxRecordSize, MaxRecordSizeLimit)
	case c.bufferRecords < 1:
		return bad("WithBufferLimits", "%d records: need at least 1", c.bufferRecords)
	case c.bufferBytes < c.maxRecordSize:
		return bad("WithBufferLimits", "%d bytes is less than the record size limit %d: a record of the largest size could never be buffered",
			c.bufferBytes, c.maxRecordSize)
	case c.batchRecords < 1 || c.batchRecords > MaxBatchRecords:
		return bad("WithBatchLimits", "%d records: need 1 to %d", c.batchRecords, MaxBatchRecords)
	case c.batchBytes < 1 || c.batchBytes > MaxBatchBytes:
		return bad("WithBatchLimits", "%d bytes: need 1 to %d", c.batchBytes, MaxBatchBytes)
	case c.shardRecordsPerSec < 0:
		return bad("WithShardRateLimit", "negative record rate %d", c.shardRecordsPerSec)
	case c.shardBytesPerSec < 0:
		return bad("WithShardRateLimit", "negative byte rate %d", c.shardBytesPerSec)
	case c.maxAttempts < 1:
		return bad("WithRetryBudget", "%d attempts: need at least 1", c.maxAttempts)
	case c.recordTTL <= 0:
		return bad("WithRetryBudget", "record TTL %v: need a positive duration", c.recordTTL)
	case c.backoff.Base <= 0:
		return bad("WithBackoff", "base %v: need a positive duration", c.backoff.Base)
	case c.backoff.Max < c.backoff.Base:
		return bad("WithBackoff", "max %v is less than base %v", c.backoff.Max, c.backoff.Base)
	case c.requestTimeout <= 0:
		return bad("WithCallTimeout", "%v: need a positive duration", c.requestTimeout)
	case c.health.BufferFill < 0 || c.health.BufferFill > 1:
		return bad("WithHealthThresholds", "buffer fill %v: need 0 to 1", c.health.BufferFill)
	case c.health.FailureRate < 0 || c.health.FailureRate > 1:
		return bad("WithHealthThresholds", "failure rate %v: need 0 to 1", c.health.FailureRate)
	case c.health.Window < 0:
		return bad("WithHealthThresholds", "negative window %v", c.health.Window)
	case c.shardMapRefresh < 0:
		return bad("WithShardMapRefresh", "negative interval %v", c.shardMapRefresh)
	}
	if c.aggregation {
		// The smallest useful aggregate holds two one-byte records; the largest must leave room
		// for the aggregate's own partition key within the record limit.
		const minAggregate = 64
		if c.aggregationMaxSize < minAggregate || c.aggregationMaxSize > c.maxRecordSize-maxKeyBytes {
			return bad("WithAggregationMaxSize", "%d bytes: need %d to %d (the record size limit %d minus room for a %d-byte partition key)",
				c.aggregationMaxSize, minAggregate, c.maxRecordSize-maxKeyBytes, c.maxRecordSize, maxKeyBytes)
		}
	}
	return nil
}
