// Package telemetry records per-call telemetry for producers and consumers: the duration of
// every Kinesis and checkpoint store call and the errors of Kinesis calls, through the catalog
// metrics kinesis_call_duration_seconds, kinesis_call_errors_total and
// store_call_duration_seconds.
package telemetry

import (
	"context"
	"errors"
	"time"

	"github.com/shardline/kinesis/internal/awserr"
	"github.com/shardline/kinesis/metrics"
)

// KinesisCall records one Kinesis call of op (shard "" when the call is not about one shard)
// that started at start and ended with err. A call cancelled because its caller is stopping
// is timed but not counted as failed.
func KinesisCall(m metrics.Collector, stream, shard, op string, start time.Time, err error) {
	l := metrics.Labels{Stream: stream, Shard: shard, Operation: op}
	m.Observe(metrics.KinesisCallDuration, time.Since(start).Seconds(), l)
	if err != nil && !errors.Is(err, context.Canceled) {
		l.ErrorType = awserr.Label(err)
		m.Add(metrics.KinesisCallErrors, 1, l)
	}
}

// StoreCall records the duration of one checkpoint store call of op.
func StoreCall(m metrics.Collector, stream, shard, op string, start time.Time) {
	m.Observe(metrics.StoreCallDuration, time.Since(start).Seconds(), metrics.Labels{Stream: stream, Shard: shard, Operation: op})
}
