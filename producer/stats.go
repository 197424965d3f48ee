package producer

import (
	"sync/atomic"

	"github.com/shardline/kinesis/metrics"
)

// Stats is a snapshot of a Producer's counters since New. Counters only grow; reading them
// resets nothing.
type Stats struct {
	Accepted       int64 // user records Put accepted
	Delivered      int64 // user records delivered
	Failed         int64 // user records that finally failed
	DeliveredBytes int64 // data bytes (partition keys excluded) of delivered user records
	KinesisRecords int64 // Kinesis records delivered: an aggregate counts once
	Requests       int64 // PutRecords requests sent
	Retries        int64 // user records sent again after a retryable failure or a wrong shard
	Throttles      int64 // entries and requests refused with a throttling error
	Resent         int64 // user records sent again because their aggregate landed on a shard outside their hash key's range (stale shard map)
	MapRefreshes   int64 // shard listings made
	Buffered       int   // user records accepted and not yet settled
	BufferedBytes  int   // their bytes (partition key + data)
}

type counters struct {
	delivered, failed, deliveredBytes, kinesisRecords  atomic.Int64
	requests, retries, throttles, resent, mapRefreshes atomic.Int64
}

// Stats returns the producer's counters. Delivered + Failed + Buffered may briefly exceed
// Accepted by the records whose OnFailure hook is running.
func (p *Producer) Stats() Stats {
	p.buf.mu.Lock()
	accepted, records, bytes := p.buf.accepted, p.buf.records, p.buf.bytes
	p.buf.mu.Unlock()
	return Stats{
		Accepted:       accepted,
		Delivered:      p.stats.delivered.Load(),
		Failed:         p.stats.failed.Load(),
		DeliveredBytes: p.stats.deliveredBytes.Load(),
		KinesisRecords: p.stats.kinesisRecords.Load(),
		Requests:       p.stats.requests.Load(),
		Retries:        p.stats.retries.Load(),
		Throttles:      p.stats.throttles.Load(),
		Resent:         p.stats.resent.Load(),
		MapRefreshes:   p.stats.mapRefreshes.Load(),
		Buffered:       records,
		BufferedBytes:  bytes,
	}
}

// setGauges reports the buffer's occupancy.
func (p *Producer) setGauges() {
	records, bytes := p.buf.usage()
	p.cfg.metrics.Set(metrics.ProducerQueueSize, float64(records), p.labels)
	p.cfg.metrics.Set(metrics.ProducerQueueBytes, float64(bytes), p.labels)
}
