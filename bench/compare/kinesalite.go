package compare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/awslabs/kinesis-aggregation/go/v2/deaggregator"

	"github.com/shardline/kinesis/aggregation"
	"github.com/shardline/kinesis/bench/hashkey"
	"github.com/shardline/kinesis/bench/workload"
)

// CheckKinesalite verifies that endpoint answers and is not kinesis-mock, whose ~1k records/s
// would turn a volume run into a test of the engine. kinesis-mock answers GET /healthcheck
// with 200; kinesalite does not.
func CheckKinesalite(ctx context.Context, endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return err
	}
	conn, err := (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return fmt.Errorf("kinesalite is not reachable at %s: %w", endpoint, err)
	}
	conn.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/healthcheck", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return fmt.Errorf("%s answers GET /healthcheck: it is kinesis-mock, not kinesalite", endpoint)
		}
	}
	return nil
}

// CreateStream creates a stream of n shards, waits until it is active and returns its
// shards' hash-key ranges.
func CreateStream(ctx context.Context, client *kinesis.Client, name string, n int) ([]hashkey.Range, error) {
	_, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(int32(n))})
	if err != nil {
		return nil, fmt.Errorf("CreateStream %s: %w", name, err)
	}
	w := kinesis.NewStreamExistsWaiter(client, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second
	})
	if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(name)}, time.Minute); err != nil {
		return nil, fmt.Errorf("waiting for %s: %w", name, err)
	}
	return ShardRanges(ctx, client, name)
}

// DeleteStream deletes a stream, freeing the engine's memory.
func DeleteStream(ctx context.Context, client *kinesis.Client, name string) error {
	_, err := client.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(name), EnforceConsumerDeletion: aws.Bool(true)})
	return err
}

// ShardRanges lists a stream's shards (paginated ListShards) as hash-key ranges.
func ShardRanges(ctx context.Context, client *kinesis.Client, name string) ([]hashkey.Range, error) {
	var out []hashkey.Range
	in := &kinesis.ListShardsInput{StreamName: aws.String(name)}
	for {
		page, err := client.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("ListShards %s: %w", name, err)
		}
		for _, s := range page.Shards {
			start, err1 := hashkey.Parse(aws.ToString(s.HashKeyRange.StartingHashKey))
			end, err2 := hashkey.Parse(aws.ToString(s.HashKeyRange.EndingHashKey))
			if err := errors.Join(err1, err2); err != nil {
				return nil, err
			}
			out = append(out, hashkey.Range{ShardID: aws.ToString(s.ShardId), Start: start, End: end})
		}
		if page.NextToken == nil {
			return out, nil
		}
		in = &kinesis.ListShardsInput{NextToken: page.NextToken}
	}
}

// Preload puts the records of spec into a stream with plain PutRecords calls of the raw
// SDK, 4 at a time, retrying failed entries. With aggregate, the user records of each shard
// are packed into KPL aggregates of at most 51200 bytes (Shardline's builder; its output is
// checked against the AWS deaggregator in Shardline's tests) put with the shard's starting
// hash key as explicit hash key, so each aggregate lands on the shard all its keys map to.
// It returns the number of Kinesis records put.
func Preload(ctx context.Context, client *kinesis.Client, stream string, ranges []hashkey.Range, spec workload.Spec, aggregate bool) (int, error) {
	keys := spec.KeyTable()
	keyShard := make([]int, len(keys))
	for k, key := range keys {
		keyShard[k] = hashkey.Find(ranges, hashkey.Of(key))
	}
	var entries []types.PutRecordsRequestEntry
	buf := make([]byte, spec.Size)
	if !aggregate {
		for i := range spec.Records {
			key := keys[i%len(keys)]
			entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(key), Data: append([]byte(nil), workload.Data(buf, i, key)...)})
		}
	} else {
		builders := make([]*aggregation.Builder, len(ranges))
		first := make([]string, len(ranges))
		flush := func(s int) {
			if b := builders[s]; b != nil && b.Len() > 0 {
				entries = append(entries, types.PutRecordsRequestEntry{
					PartitionKey: aws.String(first[s]), ExplicitHashKey: aws.String(ranges[s].Start.String()), Data: b.AppendTo(nil)})
				b.Reset()
			}
		}
		for i := range spec.Records {
			k := i % len(keys)
			s := keyShard[k]
			if builders[s] == nil {
				builders[s] = aggregation.NewBuilder(51200)
			}
			if builders[s].Len() == 0 {
				first[s] = keys[k]
			}
			data := workload.Data(buf, i, keys[k])
			if !builders[s].Add(keys[k], "", data) {
				flush(s)
				first[s] = keys[k]
				builders[s].Add(keys[k], "", data)
			}
		}
		for s := range builders {
			flush(s)
		}
	}
	return len(entries), putAll(ctx, client, stream, entries)
}

// putAll sends entries in PutRecords calls of at most 500 entries and 4 MiB, 4 calls at a
// time, and retries failed entries until they succeed or ctx ends.
func putAll(ctx context.Context, client *kinesis.Client, stream string, entries []types.PutRecordsRequestEntry) error {
	var batches [][]types.PutRecordsRequestEntry
	for start := 0; start < len(entries); {
		end, size := start, 0
		for end < len(entries) && end-start < 500 && (end == start || size+len(entries[end].Data) <= 4<<20) {
			size += len(entries[end].Data) + len(aws.ToString(entries[end].PartitionKey))
			end++
		}
		batches = append(batches, entries[start:end])
		start = end
	}
	work := make(chan []types.PutRecordsRequestEntry)
	errc := make(chan error, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for batch := range work {
				if err := putBatch(ctx, client, stream, batch); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	var err error
send:
	for _, b := range batches {
		select {
		case work <- b:
		case err = <-errc:
			break send
		}
	}
	close(work)
	go func() { wg.Wait(); close(errc) }()
	for e := range errc {
		err = errors.Join(err, e)
	}
	return err
}

func putBatch(ctx context.Context, client *kinesis.Client, stream string, batch []types.PutRecordsRequestEntry) error {
	for attempt := 0; len(batch) > 0; attempt++ {
		out, err := client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: batch})
		if err != nil {
			return fmt.Errorf("PutRecords: %w", err)
		}
		if aws.ToInt32(out.FailedRecordCount) == 0 {
			return nil
		}
		if attempt == 20 {
			return fmt.Errorf("PutRecords: %d entries still failing after %d attempts", aws.ToInt32(out.FailedRecordCount), attempt)
		}
		var failed []types.PutRecordsRequestEntry
		for i, r := range out.Records {
			if r.ErrorCode != nil {
				failed = append(failed, batch[i])
			}
		}
		batch = failed
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// Placement is what ReadBack found on a stream.
type Placement struct {
	KinesisRecords, UserRecords int64
	// Misplaced counts user records on a shard their own key (from their data) does not map
	// to; KeyChanged those whose partition key as read back is not their own.
	Misplaced, KeyChanged        int64
	Missing, Duplicates, Foreign int64
}

// ReadBack reads every shard of a stream from TRIM_HORIZON with the raw SDK, deaggregates
// with the AWS deaggregator (independent of the compared libraries) and checks every user
// record of a workload of n records: present once, on the shard its own key maps to. A shard
// is read until GetRecords returns nothing twice in a row.
func ReadBack(ctx context.Context, client *kinesis.Client, stream string, ranges []hashkey.Range, n int) (Placement, error) {
	var p Placement
	tally := workload.NewTally(n)
	for _, rng := range ranges {
		it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(stream), ShardId: aws.String(rng.ShardID), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			return p, err
		}
		iter, empty := it.ShardIterator, 0
		for iter != nil && empty < 2 {
			out, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
			if err != nil {
				return p, err
			}
			iter = out.NextShardIterator
			if len(out.Records) == 0 {
				empty++
				continue
			}
			empty = 0
			p.KinesisRecords += int64(len(out.Records))
			users, err := deaggregator.DeaggregateRecords(out.Records)
			if err != nil {
				return p, err
			}
			for _, u := range users {
				p.UserRecords++
				key := workload.KeyOf(u.Data)
				if key == nil {
					p.Foreign++
					continue
				}
				if !rng.Contains(hashkey.Of(string(key))) {
					p.Misplaced++
				}
				if aws.ToString(u.PartitionKey) != string(key) {
					p.KeyChanged++
				}
				tally.Add(u.Data)
			}
		}
	}
	missing, dups, foreign := tally.Check()
	p.Missing, p.Duplicates, p.Foreign = missing, dups, p.Foreign+foreign
	return p, nil
}
