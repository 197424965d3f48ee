package examples_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/kinesis/aggregation"
	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/internal/shardmap"
)

// stored is where the test found a produced record in the stream.
type stored struct {
	shard string
	pos   checkpoint.Position
}

// locate reads every shard of the stream from its start, closed ones included, the way a
// KCL-compatible consumer does (deaggregating, dropping user records outside the shard's hash
// range), and returns where each record of examples/producer is stored: its first readable
// copy. It lets a test tell a record the consumers never reached from one they checkpointed
// past without delivering.
func locate(ctx context.Context, client *kinesis.Client, stream string) (map[string]stored, error) {
	shards, err := shardmap.List(ctx, client, stream, nil)
	if err != nil {
		return nil, err
	}
	found := make(map[string]stored)
	var parser aggregation.Parser
	for _, s := range shards {
		rng, err := shardmap.ShardRange(s)
		if err != nil {
			return nil, err
		}
		id := aws.ToString(s.ShardId)
		it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(stream), ShardId: s.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			return nil, err
		}
		iter := it.ShardIterator
		for iter != nil {
			out, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				return nil, err
			}
			for _, r := range out.Records {
				seq := aws.ToString(r.SequenceNumber)
				parser.Parse(r.Data)
				for i := range parser.Len() {
					ur := parser.Record(i)
					key := aws.ToString(r.PartitionKey)
					if parser.Format() == aggregation.Aggregated {
						key = string(ur.PartitionKey)
						h := shardmap.HashKeyBytes(ur.PartitionKey)
						if len(ur.ExplicitHashKey) > 0 {
							if h, err = shardmap.ParseHash(string(ur.ExplicitHashKey)); err != nil {
								continue
							}
						}
						if !rng.Contains(h) {
							continue
						}
					}
					k, n, ok := recordID(ur.Data, key)
					if _, seen := found[idString(k, n)]; ok && !seen {
						found[idString(k, n)] = stored{id, checkpoint.Position{SequenceNumber: seq, SubSequenceNumber: int64(ur.SubSequence)}}
					}
				}
			}
			iter = out.NextShardIterator
			if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
				break // an open shard, read to its tip
			}
		}
	}
	return found, nil
}

// waitActive waits until the stream is ACTIVE again after a reshard.
func waitActive(ctx context.Context, client *kinesis.Client, stream string) error {
	for {
		out, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stream %s not ACTIVE: %w (last error %v)", stream, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// openShard returns the open shard with the given ID.
func openShard(ctx context.Context, client *kinesis.Client, stream, id string) (types.Shard, []types.Shard, error) {
	shards, err := shardmap.List(ctx, client, stream, nil)
	if err != nil {
		return types.Shard{}, nil, err
	}
	for _, s := range shards {
		if aws.ToString(s.ShardId) == id && shardmap.IsOpen(s) {
			return s, shards, nil
		}
	}
	return types.Shard{}, shards, fmt.Errorf("no open shard %s in stream %s", id, stream)
}

func hashBounds(s types.Shard) (start, end *big.Int) {
	start, _ = new(big.Int).SetString(aws.ToString(s.HashKeyRange.StartingHashKey), 10)
	end, _ = new(big.Int).SetString(aws.ToString(s.HashKeyRange.EndingHashKey), 10)
	return start, end
}

// split splits shard id at the middle of its hash range, waits until the stream is ACTIVE
// and returns the children: lower and upper half.
func split(ctx context.Context, client *kinesis.Client, stream, id string) (lower, upper string, err error) {
	parent, _, err := openShard(ctx, client, stream, id)
	if err != nil {
		return "", "", err
	}
	start, end := hashBounds(parent)
	mid := new(big.Int).Add(start, end)
	mid.Add(mid, big.NewInt(1)).Rsh(mid, 1)
	if _, err := client.SplitShard(ctx, &kinesis.SplitShardInput{
		StreamName: aws.String(stream), ShardToSplit: aws.String(id), NewStartingHashKey: aws.String(mid.String()),
	}); err != nil {
		return "", "", fmt.Errorf("split %s: %w", id, err)
	}
	if err := waitActive(ctx, client, stream); err != nil {
		return "", "", err
	}
	shards, err := shardmap.List(ctx, client, stream, nil)
	if err != nil {
		return "", "", err
	}
	for _, s := range shards {
		if aws.ToString(s.ParentShardId) != id {
			continue
		}
		if st, _ := hashBounds(s); st.Cmp(mid) == 0 {
			upper = aws.ToString(s.ShardId)
		} else {
			lower = aws.ToString(s.ShardId)
		}
	}
	if lower == "" || upper == "" {
		return "", "", fmt.Errorf("split %s: children not found in %d shards", id, len(shards))
	}
	return lower, upper, nil
}

// merge merges two open shards with adjacent hash ranges, waits until the stream is ACTIVE
// and returns the child.
func merge(ctx context.Context, client *kinesis.Client, stream, a, b string) (string, error) {
	if _, err := client.MergeShards(ctx, &kinesis.MergeShardsInput{
		StreamName: aws.String(stream), ShardToMerge: aws.String(a), AdjacentShardToMerge: aws.String(b),
	}); err != nil {
		return "", fmt.Errorf("merge %s and %s: %w", a, b, err)
	}
	if err := waitActive(ctx, client, stream); err != nil {
		return "", err
	}
	shards, err := shardmap.List(ctx, client, stream, nil)
	if err != nil {
		return "", err
	}
	for _, s := range shards {
		if p, q := aws.ToString(s.ParentShardId), aws.ToString(s.AdjacentParentShardId); (p == a && q == b) || (p == b && q == a) {
			return aws.ToString(s.ShardId), nil
		}
	}
	return "", errors.New("merge: child not found")
}
