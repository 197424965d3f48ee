package compare

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	a8m "github.com/a8m/kinesis-producer"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/kinesis/aggregation"
	"github.com/shardline/kinesis/bench/hashkey"
	"github.com/shardline/kinesis/bench/measure"
	"github.com/shardline/kinesis/bench/workload"
	"github.com/shardline/kinesis/producer"
)

// Dataset is a workload's records built before any run, so that building them is charged to
// no library. Both producers keep the data slices they are given until the records are
// sent, so every record has its own bytes.
type Dataset struct {
	Spec  workload.Spec
	keys  []string
	arena []byte
}

// NewDataset builds the records of spec.
func NewDataset(spec workload.Spec) (*Dataset, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	d := &Dataset{Spec: spec, keys: spec.KeyTable(), arena: make([]byte, spec.Records*spec.Size)}
	for i := range spec.Records {
		workload.Data(d.Data(i), i, d.Key(i))
	}
	return d, nil
}

// Key returns record i's partition key.
func (d *Dataset) Key(i int) string { return d.keys[i%len(d.keys)] }

// Data returns record i's data.
func (d *Dataset) Data(i int) []byte {
	return d.arena[i*d.Spec.Size : (i+1)*d.Spec.Size : (i+1)*d.Spec.Size]
}

// ProducerRun is one producer run: a dataset to put into an empty stream.
type ProducerRun struct {
	Endpoint string
	Stream   string
	Data     *Dataset
	Workload string
	Timeout  time.Duration
	// Ranges are the stream's shards, for the floor, which routes aggregates itself.
	Ranges []hashkey.Range
	// EndpointCPU, when set, returns the endpoint process's CPU time so far.
	EndpointCPU func() time.Duration
	// Verify reads back what the stream received, after the measured part of the run.
	Verify func(ctx context.Context) (Placement, error)
}

// ProducerLib is one producer library as the comparison drives it.
type ProducerLib struct {
	Name string
	// Put sends every record of run.Data and returns once the library has confirmed each
	// of them (see each library's doc), with the number of records it reported failed.
	Put func(ctx context.Context, client *kinesis.Client, run ProducerRun) (failed int64, err error)
}

// ProducerLibs returns the producers compared. Shardline runs three ways: its defaults (per
// shard rate limits of 1,000 records/s and 1 MiB/s, strict per-shard ordering), without the
// rate limits, and without rate limits or ordering (a8m has neither). a8m runs with its
// defaults and its log output discarded. The floor sends the same records pre-aggregated
// with raw PutRecords calls: the SDK's cost of carrying them, which every library pays.
func ProducerLibs() []ProducerLib {
	return []ProducerLib{
		{Name: ProducerFloorName, Put: putFloor},
		{Name: "shardline (defaults)", Put: func(ctx context.Context, c *kinesis.Client, run ProducerRun) (int64, error) {
			return putShardline(ctx, c, run)
		}},
		{Name: "shardline (no rate limit)", Put: func(ctx context.Context, c *kinesis.Client, run ProducerRun) (int64, error) {
			return putShardline(ctx, c, run, producer.WithShardRateLimit(0, 0))
		}},
		{Name: "shardline (no rate limit, no ordering)", Put: func(ctx context.Context, c *kinesis.Client, run ProducerRun) (int64, error) {
			return putShardline(ctx, c, run, producer.WithShardRateLimit(0, 0), producer.WithOrdering(false))
		}},
		{Name: "shardline (no rate limit, SDK codec)", Put: func(ctx context.Context, c *kinesis.Client, run ProducerRun) (int64, error) {
			return putShardline(ctx, c, run, producer.WithShardRateLimit(0, 0), producer.WithWireCodec(false))
		}},
		{Name: "a8m", Put: putA8m},
	}
}

// ProducerFloorName names the bare SDK sender in tables.
const ProducerFloorName = "floor: bare SDK PutRecords of pre-built aggregates"

// putShardline puts every record with Producer.Put, then Close, which returns nil only once
// every accepted record has its outcome. Failed outcomes are counted by the OnFailure hook;
// the run is confirmed when Close returned nil, the hook saw nothing and the producer's
// Stats count every record delivered. The *Result futures are dropped, as a bulk producer
// that relies on the hook does: keeping a million of them alive would charge the garbage
// collector's scanning to the library (see README.md).
func putShardline(ctx context.Context, client *kinesis.Client, run ProducerRun, opts ...producer.Option) (int64, error) {
	var failed atomic.Int64
	opts = append(opts, producer.WithOnFailure(func(producer.Record, producer.Outcome) { failed.Add(1) }))
	p, err := producer.New(client, run.Stream, opts...)
	if err != nil {
		return 0, err
	}
	n := run.Data.Spec.Records
	var putErr error
	accepted := 0
	for i := range n {
		if _, err := p.Put(ctx, run.Data.Key(i), run.Data.Data(i)); err != nil {
			putErr = fmt.Errorf("put %d: %w", i, err)
			break
		}
		accepted++
	}
	if err := p.Close(ctx); err != nil && putErr == nil {
		putErr = fmt.Errorf("producer close: %w", err)
	}
	st := p.Stats()
	lost := int64(n) - st.Delivered // never accepted, failed, or without an outcome
	if lost < failed.Load() {
		lost = failed.Load()
	}
	if putErr == nil && (st.Delivered != int64(accepted) || st.Failed != failed.Load()) {
		putErr = fmt.Errorf("stats say %d delivered and %d failed of %d accepted; the hook saw %d failures", st.Delivered, st.Failed, accepted, failed.Load())
	}
	return lost, putErr
}

// a8mLogger discards a8m's log lines (its default logger prints every flush to stdout).
type a8mLogger struct{}

func (a8mLogger) Info(string, ...a8m.LogValue)         {}
func (a8mLogger) Error(string, error, ...a8m.LogValue) {}

// putA8m puts every record with a8m's Put while a goroutine drains its failure channel,
// then Stop: Stop returns once every PutRecords request has returned. a8m retries failed
// entries inside the request's goroutine until they succeed, and reports a record failed
// (on the channel) only when a whole request failed; it reports no per-record success.
func putA8m(ctx context.Context, client *kinesis.Client, run ProducerRun) (int64, error) {
	p := a8m.New(&a8m.Config{StreamName: run.Stream, Client: client, Logger: a8mLogger{}})
	failures := p.NotifyFailures()
	var failed atomic.Int64
	drained := make(chan struct{})
	go func() {
		for range failures {
			failed.Add(1)
		}
		close(drained)
	}()
	p.Start()
	var putErr error
	for i := range run.Data.Spec.Records {
		if err := p.Put(run.Data.Data(i), run.Data.Key(i)); err != nil {
			putErr = fmt.Errorf("put %d: %w", i, err)
			failed.Add(int64(run.Data.Spec.Records - i))
			break
		}
		if i%4096 == 0 && ctx.Err() != nil {
			putErr = ctx.Err()
			failed.Add(int64(run.Data.Spec.Records - i))
			break
		}
	}
	p.Stop()
	<-drained
	return failed.Load(), putErr
}

// putFloor is not a library: RunProducer builds the records into per-shard aggregates of
// 51,200 bytes before the clock starts (prepareFloor), and putFloor, measured, sends them
// with raw PutRecords calls of at most 500 entries and 5 MiB, 8 at a time (Shardline's
// default in-flight limit). What it costs is the SDK's serialisation and the HTTP exchange
// of the same bytes.
func putFloor(ctx context.Context, client *kinesis.Client, run ProducerRun) (int64, error) {
	e, ok := floorCache.Load(run.Data)
	if !ok || e.(*floorBuilt).stream != run.Stream {
		return 0, errors.New("floor entries were not prepared")
	}
	return 0, sendEntries(ctx, client, run.Stream, e.(*floorBuilt).entries, 8)
}

// floorBuilt is the floor's entries for one dataset and stream.
type floorBuilt struct {
	stream  string
	entries []types.PutRecordsRequestEntry
}

var floorCache sync.Map // *Dataset -> *floorBuilt

// prepareFloor builds the floor's entries for run (outside the measured window).
func prepareFloor(run ProducerRun) error {
	if len(run.Ranges) == 0 {
		return errors.New("floor: no shard ranges")
	}
	ds := run.Data
	keyShard := make(map[string]int, len(ds.keys))
	for _, k := range ds.keys {
		keyShard[k] = hashkey.Find(run.Ranges, hashkey.Of(k))
	}
	builders := make([]*aggregation.Builder, len(run.Ranges))
	first := make([]string, len(run.Ranges))
	var entries []types.PutRecordsRequestEntry
	flush := func(s int) {
		if b := builders[s]; b != nil && b.Len() > 0 {
			entries = append(entries, types.PutRecordsRequestEntry{
				PartitionKey: aws.String(first[s]), ExplicitHashKey: aws.String(run.Ranges[s].Start.String()), Data: b.AppendTo(nil)})
			b.Reset()
		}
	}
	for i := range ds.Spec.Records {
		key := ds.Key(i)
		s := keyShard[key]
		if builders[s] == nil {
			builders[s] = aggregation.NewBuilder(producer.DefaultAggregationMaxSize)
		}
		if builders[s].Len() == 0 {
			first[s] = key
		}
		if !builders[s].Add(key, "", ds.Data(i)) {
			flush(s)
			first[s] = key
			builders[s].Add(key, "", ds.Data(i))
		}
	}
	for s := range builders {
		flush(s)
	}
	floorCache.Store(ds, &floorBuilt{stream: run.Stream, entries: entries})
	return nil
}

// sendEntries sends entries in PutRecords calls of at most 500 entries and 5 MiB, inflight
// at a time; failed entries are retried.
func sendEntries(ctx context.Context, client *kinesis.Client, stream string, entries []types.PutRecordsRequestEntry, inflight int) error {
	var batches [][]types.PutRecordsRequestEntry
	for start := 0; start < len(entries); {
		end, size := start, 0
		for end < len(entries) && end-start < 500 {
			n := len(entries[end].Data) + len(aws.ToString(entries[end].PartitionKey))
			if end > start && size+n > 5<<20 {
				break
			}
			size += n
			end++
		}
		batches = append(batches, entries[start:end])
		start = end
	}
	sem := make(chan struct{}, inflight)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for _, b := range batches {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := putBatch(ctx, client, stream, b); err != nil {
				mu.Lock()
				firstErr = errors.Join(firstErr, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return firstErr
}

// RunProducer puts run's dataset with lib into run's (empty) stream and measures it from
// the library's construction until it confirmed every record; then it reads back what the
// stream received (not measured) and checks every record: present once, on its key's shard.
func RunProducer(ctx context.Context, lib ProducerLib, run ProducerRun) Result {
	n := run.Data.Spec.Records
	res := Result{Library: lib.Name, Workload: run.Workload, Records: n, Misplaced: -1}
	client, err := NewClient(ctx, run.Endpoint)
	if err != nil {
		res.Err = err
		return res
	}
	if lib.Name == ProducerFloorName {
		if err := prepareFloor(run); err != nil {
			res.Err = err
			return res
		}
		defer floorCache.Delete(run.Data)
	}
	runCtx, cancel := context.WithTimeout(ctx, run.Timeout)
	defer cancel()
	var ep0 time.Duration
	if run.EndpointCPU != nil {
		ep0 = run.EndpointCPU()
	}
	snap := measure.Take(true)
	failed, err := lib.Put(runCtx, client, run)
	res.Usage = snap.Since()
	if run.EndpointCPU != nil {
		res.EndpointCPU = run.EndpointCPU() - ep0
	}
	res.Err = err
	res.Counted = int64(n) - failed
	res.Errors = failed
	if run.Verify == nil {
		return res
	}
	p, err := run.Verify(ctx)
	if err != nil {
		res.Err = errors.Join(res.Err, fmt.Errorf("verify: %w", err))
		return res
	}
	res.Misplaced = p.Misplaced
	res.Errors += p.Missing + p.Duplicates + p.Foreign
	res.Check = fmt.Sprintf("%d failed; read back %d user records in %d Kinesis records: %d missing, %d duplicate, %d with another key",
		failed, p.UserRecords, p.KinesisRecords, p.Missing, p.Duplicates, p.KeyChanged)
	return res
}
