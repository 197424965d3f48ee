package compare

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	harlow "github.com/harlow/kinesis-consumer"
	harlowmem "github.com/harlow/kinesis-consumer/store/memory"

	"github.com/shardline/kinesis/aggregation"
	"github.com/shardline/kinesis/bench/measure"
	"github.com/shardline/kinesis/bench/workload"
	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/consumer"
)

// ConsumerSettings are the settings every consumer in a comparison runs with.
type ConsumerSettings struct {
	// PollInterval is the least time between two GetRecords calls on a shard: Shardline's
	// WithPollInterval, harlow's WithScanInterval. Default 200ms (5 calls/s/shard, the
	// Kinesis limit and Shardline's default; harlow's default is 250ms).
	PollInterval time.Duration
	// MaxRecords is the GetRecords limit: WithMaxRecords on both sides. Default 10000.
	MaxRecords int
	// Timeout bounds a run; a run that has not counted every record by then is reported
	// with what it counted.
	Timeout time.Duration
}

func (s *ConsumerSettings) defaults() {
	if s.PollInterval == 0 {
		s.PollInterval = 200 * time.Millisecond
	}
	if s.MaxRecords == 0 {
		s.MaxRecords = 10000
	}
	if s.Timeout == 0 {
		s.Timeout = 2 * time.Minute
	}
}

// ConsumerRun is a stream holding a workload, ready to be read from its start.
type ConsumerRun struct {
	Endpoint   string
	Stream     string
	Records    int  // user records in the stream, numbered 0..Records-1 by the workload
	Aggregated bool // whether the stream holds KPL aggregates
	Workload   string
	Settings   ConsumerSettings
	// EndpointCPU, when set, returns the endpoint process's CPU time so far.
	EndpointCPU func() time.Duration
}

// ConsumerLib is one consumer library as the comparison drives it.
type ConsumerLib struct {
	Name string
	// Start starts reading run.Stream with client, hands every user record's data to
	// tally.Add, and returns a channel that yields the library's exit error once ctx ends.
	Start func(ctx context.Context, client *kinesis.Client, run ConsumerRun, tally *workload.Tally) (<-chan error, error)
}

// ConsumerLibs returns the consumers compared: Shardline with its memory checkpoint store,
// harlow with its memory store (the equivalent guarantee: a checkpoint after every record,
// kept in process), harlow with its default no-op store (no checkpoint at all), and the
// floor: a bare GetRecords loop on the same SDK client, which shows what the SDK alone costs.
func ConsumerLibs() []ConsumerLib {
	return []ConsumerLib{
		{Name: FloorName, Start: startFloor},
		{Name: "shardline", Start: func(ctx context.Context, c *kinesis.Client, run ConsumerRun, t *workload.Tally) (<-chan error, error) {
			return startShardline(ctx, c, run, t)
		}},
		{Name: "shardline (SDK codec)", Start: func(ctx context.Context, c *kinesis.Client, run ConsumerRun, t *workload.Tally) (<-chan error, error) {
			return startShardline(ctx, c, run, t, consumer.WithWireCodec(false))
		}},
		{Name: "harlow (memory store)", Start: func(ctx context.Context, c *kinesis.Client, run ConsumerRun, t *workload.Tally) (<-chan error, error) {
			return startHarlow(ctx, c, run, t, harlow.WithStore(harlowmem.New()))
		}},
		{Name: "harlow (no-op store)", Start: func(ctx context.Context, c *kinesis.Client, run ConsumerRun, t *workload.Tally) (<-chan error, error) {
			return startHarlow(ctx, c, run, t)
		}},
	}
}

// FloorName names the bare SDK loop in tables.
const FloorName = "floor: bare SDK GetRecords loop"

// startFloor reads every shard with one goroutine each: GetShardIterator at TRIM_HORIZON, then
// GetRecords with the same limit and pacing as the libraries, deaggregating with Shardline's
// zero-allocation parser. No leases, no checkpoints, no hash-range checks: what is left is
// the SDK's cost of fetching and decoding the records, which every library pays.
func startFloor(ctx context.Context, client *kinesis.Client, run ConsumerRun, tally *workload.Tally) (<-chan error, error) {
	var shards []string
	in := &kinesis.ListShardsInput{StreamName: aws.String(run.Stream)}
	for {
		out, err := client.ListShards(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, s := range out.Shards {
			shards = append(shards, aws.ToString(s.ShardId))
		}
		if out.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	errc := make(chan error, 1)
	go func() {
		var wg sync.WaitGroup
		var first atomic.Pointer[error]
		for _, id := range shards {
			wg.Go(func() {
				if err := floorShard(ctx, client, run, id, tally); err != nil && ctx.Err() == nil {
					first.CompareAndSwap(nil, &err)
				}
			})
		}
		wg.Wait()
		if p := first.Load(); p != nil {
			errc <- *p
			return
		}
		errc <- nil
	}()
	return errc, nil
}

func floorShard(ctx context.Context, client *kinesis.Client, run ConsumerRun, shard string, tally *workload.Tally) error {
	it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(run.Stream), ShardId: aws.String(shard), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		return err
	}
	var p aggregation.Parser
	iter := it.ShardIterator
	for iter != nil {
		called := time.Now()
		out, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(int32(run.Settings.MaxRecords))})
		if err != nil {
			return err
		}
		for i := range out.Records {
			p.Parse(out.Records[i].Data)
			for j := range p.Len() {
				tally.Add(p.Record(j).Data)
			}
		}
		iter = out.NextShardIterator
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(run.Settings.PollInterval - time.Since(called)):
		}
	}
	return nil
}

// startShardline runs Shardline's consumer as one worker of a fresh group: leases and
// checkpoints (after every batch, the default) in the in-memory store, TRIM_HORIZON.
func startShardline(ctx context.Context, client *kinesis.Client, run ConsumerRun, tally *workload.Tally, extra ...consumer.Option) (<-chan error, error) {
	c, err := consumer.New(client, run.Stream, checkpoint.NewMemory(), append([]consumer.Option{
		consumer.WithGroup("bench"),
		consumer.WithStartPosition(consumer.TrimHorizon),
		consumer.WithMaxRecords(run.Settings.MaxRecords),
		consumer.WithPollInterval(run.Settings.PollInterval)}, extra...)...)
	if err != nil {
		return nil, err
	}
	errc := make(chan error, 1)
	go func() {
		errc <- c.Run(ctx, func(_ context.Context, b *consumer.Batch) error {
			for i := range b.Records {
				tally.Add(b.Records[i].Data)
			}
			return nil
		})
	}()
	return errc, nil
}

// startHarlow runs harlow's consumer over every shard (its default AllGroup), TRIM_HORIZON,
// deaggregating with the AWS library only when the stream holds aggregates: on plain records
// that would cost it a check per record that it does not need.
func startHarlow(ctx context.Context, client *kinesis.Client, run ConsumerRun, tally *workload.Tally, extra ...harlow.Option) (<-chan error, error) {
	opts := append([]harlow.Option{
		harlow.WithClient(client),
		harlow.WithShardIteratorType(string(types.ShardIteratorTypeTrimHorizon)),
		harlow.WithScanInterval(run.Settings.PollInterval),
		harlow.WithMaxRecords(int64(run.Settings.MaxRecords)),
		harlow.WithAggregation(run.Aggregated),
	}, extra...)
	c, err := harlow.New(run.Stream, opts...)
	if err != nil {
		return nil, err
	}
	errc := make(chan error, 1)
	go func() {
		errc <- c.Scan(ctx, func(r *harlow.Record) error {
			tally.Add(r.Data)
			return nil
		})
	}()
	return errc, nil
}

// RunConsumer reads run's stream with lib and measures it from the library's construction
// until the handler has counted as many records as the stream holds (or the timeout).
// Shutdown is not measured.
func RunConsumer(ctx context.Context, lib ConsumerLib, run ConsumerRun) Result {
	run.Settings.defaults()
	res := Result{Library: lib.Name, Workload: run.Workload, Records: run.Records, Misplaced: -1}
	client, err := NewClient(ctx, run.Endpoint)
	if err != nil {
		res.Err = err
		return res
	}
	tally := workload.NewTally(run.Records)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	var ep0 time.Duration
	if run.EndpointCPU != nil {
		ep0 = run.EndpointCPU()
	}
	snap := measure.Take(true)
	errc, err := lib.Start(runCtx, client, run, tally)
	if err != nil {
		res.Err = err
		return res
	}
	timeout := time.NewTimer(run.Settings.Timeout)
	defer timeout.Stop()
	var early error
	stopped := false
	select {
	case <-tally.Full():
	case early = <-errc:
		stopped = true
		if early == nil {
			early = errors.New("consumer returned before reading every record")
		}
	case <-timeout.C:
		early = fmt.Errorf("timed out after %v", run.Settings.Timeout)
	case <-ctx.Done():
		early = ctx.Err()
	}
	res.Usage = snap.Since()
	if run.EndpointCPU != nil {
		res.EndpointCPU = run.EndpointCPU() - ep0
	}
	res.Counted = tally.Total()

	cancel()
	if !stopped {
		select {
		case err := <-errc:
			if err != nil && !errors.Is(err, context.Canceled) && early == nil {
				early = fmt.Errorf("at shutdown: %w", err)
			}
		case <-time.After(30 * time.Second):
			if early == nil {
				early = errors.New("did not stop within 30s of cancellation")
			}
		}
	}
	missing, dups, foreign := tally.Check()
	res.Errors = missing + dups + foreign
	res.Check = fmt.Sprintf("%d missing, %d duplicate, %d unknown", missing, dups, foreign)
	if res.Errors == 0 {
		res.Check = "every record once"
	}
	if early != nil {
		res.Err = early
		res.Errors++
	}
	return res
}
