package metrics

// Name is the name of a metric in the catalog, without any namespace prefix.
type Name string

// Kind is the type of a metric.
type Kind int

// The kinds of metric a Collector receives.
const (
	Counter Kind = iota + 1
	Gauge
	Histogram
)

// String returns "counter", "gauge" or "histogram".
func (k Kind) String() string {
	switch k {
	case Counter:
		return "counter"
	case Gauge:
		return "gauge"
	case Histogram:
		return "histogram"
	}
	return "unknown"
}

// Desc describes one metric of the catalog.
type Desc struct {
	Name   Name
	Kind   Kind
	Labels []string // label names, from the Label* constants
	Help   string   // one sentence: what is counted and when
	Unit   string   // "seconds", "bytes", "records", "milliseconds" or "" for plain counts
}

// Producer metrics.
const (
	ProducerRecordsSent        Name = "producer_records_sent_total"
	ProducerBytesSent          Name = "producer_bytes_sent_total"
	ProducerErrors             Name = "producer_errors_total"
	ProducerThrottles          Name = "producer_throttles_total"
	ProducerBatchSize          Name = "producer_batch_size"
	ProducerQueueSize          Name = "producer_queue_size"
	ProducerFlushDuration      Name = "producer_flush_duration_seconds"
	ProducerKinesisRecordsSent Name = "producer_kinesis_records_sent_total"
	ProducerRetries            Name = "producer_retries_total"
	ProducerRecordsFailed      Name = "producer_records_failed_total"
	ProducerPutLatency         Name = "producer_put_latency_seconds"
	ProducerQueueBytes         Name = "producer_queue_bytes"
)

// Consumer metrics.
const (
	ConsumerRecordsReceived   Name = "consumer_records_received_total"
	ConsumerBytesReceived     Name = "consumer_bytes_received_total"
	ConsumerErrors            Name = "consumer_errors_total"
	ConsumerCheckpointSuccess Name = "consumer_checkpoint_success_total"
	ConsumerCheckpointFailure Name = "consumer_checkpoint_failure_total"
	ConsumerIteratorAge       Name = "consumer_iterator_age_milliseconds"
	ConsumerQueueSize         Name = "consumer_queue_size"
	ConsumerLagRecords        Name = "consumer_lag_records"
	ConsumerProcessingTime    Name = "consumer_processing_time_seconds"
	ConsumerUserRecords       Name = "consumer_user_records_total"
	ConsumerRecordsSkipped    Name = "consumer_records_skipped_total"
	ConsumerLeasesHeld        Name = "consumer_leases_held"
	ConsumerLeaseAcquired     Name = "consumer_lease_acquired_total"
	ConsumerLeaseRenewed      Name = "consumer_lease_renewed_total"
	ConsumerLeaseLost         Name = "consumer_lease_lost_total"
	ConsumerLeaseStolen       Name = "consumer_lease_stolen_total"
	ConsumerLeaseReleased     Name = "consumer_lease_released_total"
	ConsumerWorkersLive       Name = "consumer_workers_live"
	ConsumerStoreErrors       Name = "consumer_store_errors_total"
	ConsumerDeadLettered      Name = "consumer_records_dead_lettered_total"
)

// Per-call telemetry: every Kinesis and checkpoint store call of producers and consumers.
const (
	KinesisCallDuration Name = "kinesis_call_duration_seconds"
	KinesisCallErrors   Name = "kinesis_call_errors_total"
	StoreCallDuration   Name = "store_call_duration_seconds"
)

// Event delivery metrics (package events).
const (
	EventsDropped        Name = "events_dropped_total"
	EventsListenerPanics Name = "events_listener_panics_total"
)

// Stream metrics.
const (
	StreamShardsActive     Name = "stream_shards_active"
	StreamShardsClosed     Name = "stream_shards_closed"
	StreamReshardingEvents Name = "stream_resharding_events_total"
)

var (
	lStream    = []string{LabelStream}
	lStreamErr = []string{LabelStream, LabelErrorType}
	lShard     = []string{LabelStream, LabelShard}
	lShardErr  = []string{LabelStream, LabelShard, LabelErrorType}
	lStreamOp  = []string{LabelStream, LabelOperation, LabelErrorType}
	lCall      = []string{LabelStream, LabelShard, LabelOperation}
	lCallErr   = []string{LabelStream, LabelShard, LabelOperation, LabelErrorType}
)

// Catalog lists every metric Shardline emits. Collectors may rely on it: a name outside it is
// never emitted by Shardline itself.
var Catalog = []Desc{
	{ProducerRecordsSent, Counter, lStream, "User records the producer delivered (acknowledged by Kinesis with a sequence number).", "records"},
	{ProducerBytesSent, Counter, lStream, "Bytes of user data (partition key excluded) in delivered user records.", "bytes"},
	{ProducerErrors, Counter, lStreamErr, "Failed PutRecords entries and failed PutRecords requests, by AWS error code or error class; retried ones included.", ""},
	{ProducerThrottles, Counter, lStream, "PutRecords entries or requests rejected with ProvisionedThroughputExceededException.", ""},
	{ProducerBatchSize, Histogram, lStream, "Entries (Kinesis records) per PutRecords request.", "records"},
	{ProducerQueueSize, Gauge, lStream, "User records accepted by Put and not yet delivered or failed.", "records"},
	{ProducerFlushDuration, Histogram, lStream, "Duration of one PutRecords request, from send to response.", "seconds"},
	{ProducerKinesisRecordsSent, Counter, lStream, "Kinesis records delivered; an aggregated record counts once however many user records it carries.", "records"},
	{ProducerRetries, Counter, lStream, "User records sent again after a retryable failure.", "records"},
	{ProducerRecordsFailed, Counter, lStreamErr, "User records that finally failed (retry budget spent, non-retryable error, or Close) and were reported to the caller.", "records"},
	{ProducerPutLatency, Histogram, lStream, "Time from Put accepting a user record to its delivery.", "seconds"},
	{ProducerQueueBytes, Gauge, lStream, "Bytes (key + data) of user records accepted by Put and not yet delivered or failed.", "bytes"},

	{ConsumerRecordsReceived, Counter, lShard, "Kinesis records returned by GetRecords, before deaggregation.", "records"},
	{ConsumerBytesReceived, Counter, lShard, "Bytes of data in the Kinesis records counted by consumer_records_received_total.", "bytes"},
	{ConsumerErrors, Counter, lShardErr, "Errors reading a shard, by AWS error code (ProvisionedThroughputExceededException and ExpiredIteratorException are recovered) or error class.", ""},
	{ConsumerCheckpointSuccess, Counter, lShard, "Checkpoint writes the store accepted; one per backend write.", ""},
	{ConsumerCheckpointFailure, Counter, lShard, "Checkpoint writes that failed, the lease-lost ones included.", ""},
	{ConsumerIteratorAge, Gauge, lShard, "MillisBehindLatest of the last GetRecords response: how far the reader is behind the tip of the shard.", "milliseconds"},
	{ConsumerQueueSize, Gauge, lStream, "User records fetched and waiting for the handler, over all owned shards.", "records"},
	{ConsumerLagRecords, Gauge, lShard, "User records received from the shard and not yet checkpointed: what a crash now would make the group read again.", "records"},
	{ConsumerProcessingTime, Histogram, lShard, "Time the handler took for one batch.", "seconds"},
	{ConsumerUserRecords, Counter, lShard, "User records delivered to the handler, after deaggregation.", "records"},
	{ConsumerRecordsSkipped, Counter, lShardErr, "User records not delivered on purpose: undecodable (error_type=decode) or with a hash key outside the shard's range (error_type=hash_key_out_of_range), as the KCL does.", "records"},
	{ConsumerLeasesHeld, Gauge, lStream, "Shard leases this worker holds.", ""},
	{ConsumerLeaseAcquired, Counter, lShard, "Leases this worker took: free, expired or stolen.", ""},
	{ConsumerLeaseRenewed, Counter, lShard, "Lease renewals that succeeded.", ""},
	{ConsumerLeaseLost, Counter, lShard, "Leases this worker lost to another worker or to a failed renewal; the shard's handler was cancelled.", ""},
	{ConsumerLeaseStolen, Counter, lShard, "Leases this worker took from a live worker to balance the group.", ""},
	{ConsumerLeaseReleased, Counter, lShard, "Leases this worker gave back: at shutdown, at shard end or on a handoff request.", ""},
	{ConsumerWorkersLive, Gauge, lStream, "Live workers of the consumer group as this worker sees them.", ""},
	{ConsumerStoreErrors, Counter, lStreamOp, "Checkpoint store calls that failed other than by a refused condition (lease lost, conflict), by store operation (operation) and error class; an unreachable store shows here first.", ""},
	{ConsumerDeadLettered, Counter, lShard, "User records handed to the dead-letter function after the handler kept failing on their batch, and checkpointed past.", "records"},

	{KinesisCallDuration, Histogram, lCall, "Duration of one Kinesis API call (PutRecords, ListShards, GetShardIterator, GetRecords), the SDK's own retries included, by operation; shard_id is set for calls about one shard.", "seconds"},
	{KinesisCallErrors, Counter, lCallErr, "Kinesis API calls that failed, by operation and AWS error code or error class.", ""},
	{StoreCallDuration, Histogram, lCall, "Duration of one checkpoint store call (TakeLease, RenewLease, Checkpoint, Heartbeat, ...), by operation; shard_id is set for calls about one shard's lease.", "seconds"},

	{EventsDropped, Counter, lStream, "Lifecycle events not delivered to listeners because they had fallen 1,024 events behind.", ""},
	{EventsListenerPanics, Counter, lStream, "Panics recovered from event listeners.", ""},

	{StreamShardsActive, Gauge, lStream, "Open shards of the stream at the last shard listing.", ""},
	{StreamShardsClosed, Gauge, lStream, "Closed shards (parents of a reshard still within retention) at the last shard listing.", ""},
	{StreamReshardingEvents, Counter, lStream, "Reshards detected: a shard ended or the shard list changed.", ""},
}

var byName = func() map[Name]*Desc {
	m := make(map[Name]*Desc, len(Catalog))
	for i := range Catalog {
		m[Catalog[i].Name] = &Catalog[i]
	}
	return m
}()

// Lookup returns the catalog entry of name.
func Lookup(name Name) (Desc, bool) {
	d, ok := byName[name]
	if !ok {
		return Desc{}, false
	}
	return *d, true
}
