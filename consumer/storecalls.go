package consumer

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/internal/telemetry"
)

// timedStore times every call of the checkpoint store it wraps (store_call_duration_seconds);
// errors are counted where the consumer judges them (storeResult).
type timedStore struct {
	checkpoint.Store
	c *Consumer
}

func (s *timedStore) done(shard, op string, start time.Time) {
	telemetry.StoreCall(s.c.cfg.metrics, s.c.stream, shard, op, start)
}

// timedLister times the ListShards calls of a shard listing (one per page).
type timedLister struct{ c *Consumer }

func (l timedLister) ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	start := time.Now()
	out, err := l.c.client.ListShards(ctx, in, optFns...)
	telemetry.KinesisCall(l.c.cfg.metrics, l.c.stream, "", "ListShards", start, err)
	return out, err
}

func (s *timedStore) GetLease(ctx context.Context, k checkpoint.ShardKey) (checkpoint.Lease, error) {
	defer s.done(k.Shard, "GetLease", time.Now())
	return s.Store.GetLease(ctx, k)
}

func (s *timedStore) ListLeases(ctx context.Context, group, stream string) ([]checkpoint.Lease, error) {
	defer s.done("", "ListLeases", time.Now())
	return s.Store.ListLeases(ctx, group, stream)
}

func (s *timedStore) TakeLease(ctx context.Context, k checkpoint.ShardKey, worker string, counter int64) (checkpoint.Lease, error) {
	defer s.done(k.Shard, "TakeLease", time.Now())
	return s.Store.TakeLease(ctx, k, worker, counter)
}

func (s *timedStore) RenewLease(ctx context.Context, l checkpoint.Lease) (checkpoint.Lease, error) {
	defer s.done(l.Shard, "RenewLease", time.Now())
	return s.Store.RenewLease(ctx, l)
}

func (s *timedStore) Checkpoint(ctx context.Context, l checkpoint.Lease, p checkpoint.Position) error {
	defer s.done(l.Shard, "Checkpoint", time.Now())
	return s.Store.Checkpoint(ctx, l, p)
}

func (s *timedStore) ReleaseLease(ctx context.Context, l checkpoint.Lease, p checkpoint.Position) error {
	defer s.done(l.Shard, "ReleaseLease", time.Now())
	return s.Store.ReleaseLease(ctx, l, p)
}

func (s *timedStore) RequestHandoff(ctx context.Context, k checkpoint.ShardKey, owner, claimant string, counter int64) error {
	defer s.done(k.Shard, "RequestHandoff", time.Now())
	return s.Store.RequestHandoff(ctx, k, owner, claimant, counter)
}

func (s *timedStore) DeleteLease(ctx context.Context, k checkpoint.ShardKey, counter int64) error {
	defer s.done(k.Shard, "DeleteLease", time.Now())
	return s.Store.DeleteLease(ctx, k, counter)
}

func (s *timedStore) Heartbeat(ctx context.Context, w checkpoint.Worker) (checkpoint.Worker, error) {
	defer s.done("", "Heartbeat", time.Now())
	return s.Store.Heartbeat(ctx, w)
}

func (s *timedStore) ListWorkers(ctx context.Context, group, stream string) ([]checkpoint.Worker, error) {
	defer s.done("", "ListWorkers", time.Now())
	return s.Store.ListWorkers(ctx, group, stream)
}

func (s *timedStore) RemoveWorker(ctx context.Context, w checkpoint.Worker) error {
	defer s.done("", "RemoveWorker", time.Now())
	return s.Store.RemoveWorker(ctx, w)
}
