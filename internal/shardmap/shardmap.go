// Package shardmap lists a stream's shards and maps hash keys to the open shard that owns
// them, as Kinesis routes records: the producer predicts each record's shard with it, the
// consumer checks deaggregated records against their shard's range.
package shardmap

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// ListShardsAPI is the Kinesis call List makes; *kinesis.Client satisfies it.
type ListShardsAPI interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

var _ ListShardsAPI = (*kinesis.Client)(nil)

// List returns every shard of stream that ListShards reports, following NextToken (the SDK
// has no paginator for it). filter may be nil.
func List(ctx context.Context, api ListShardsAPI, stream string, filter *types.ShardFilter) ([]types.Shard, error) {
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream), ShardFilter: filter}
	var shards []types.Shard
	for {
		out, err := api.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("shardmap: list shards of %s: %w", stream, err)
		}
		shards = append(shards, out.Shards...)
		if aws.ToString(out.NextToken) == "" {
			return shards, nil
		}
		// With NextToken, Kinesis refuses StreamName and ShardFilter.
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

// IsOpen reports whether s still accepts records (it has no ending sequence number).
func IsOpen(s types.Shard) bool {
	return s.SequenceNumberRange == nil || s.SequenceNumberRange.EndingSequenceNumber == nil
}

// ShardRange returns the hash-key range of s.
func ShardRange(s types.Shard) (Range, error) {
	if s.HashKeyRange == nil {
		return Range{}, fmt.Errorf("shardmap: shard %s has no hash key range", aws.ToString(s.ShardId))
	}
	start, err := ParseHash(aws.ToString(s.HashKeyRange.StartingHashKey))
	if err != nil {
		return Range{}, err
	}
	end, err := ParseHash(aws.ToString(s.HashKeyRange.EndingHashKey))
	if err != nil {
		return Range{}, err
	}
	return Range{Start: start, End: end}, nil
}

// Map maps hash keys to the open shards of a stream. It is immutable, so it is safe for
// concurrent use; a refresh builds a new Map.
type Map struct {
	entries []Entry // sorted by Range.Start, non-overlapping
}

// Entry is one open shard of a Map.
type Entry struct {
	ID    string
	Range Range
}

// New builds a Map from the open shards among shards (closed ones are ignored).
func New(shards []types.Shard) (*Map, error) {
	m := &Map{}
	for _, s := range shards {
		if !IsOpen(s) {
			continue
		}
		r, err := ShardRange(s)
		if err != nil {
			return nil, err
		}
		m.entries = append(m.entries, Entry{ID: aws.ToString(s.ShardId), Range: r})
	}
	if len(m.entries) == 0 {
		return nil, fmt.Errorf("shardmap: no open shard")
	}
	slices.SortFunc(m.entries, func(a, b Entry) int { return a.Range.Start.Compare(b.Range.Start) })
	for i := 1; i < len(m.entries); i++ {
		if m.entries[i-1].Range.End.Compare(m.entries[i].Range.Start) >= 0 {
			return nil, fmt.Errorf("shardmap: open shards %s and %s overlap", m.entries[i-1].ID, m.entries[i].ID)
		}
	}
	return m, nil
}

// Lookup returns the open shard whose range contains h.
func (m *Map) Lookup(h Hash) (Entry, bool) {
	// The first entry whose End ≥ h, found by binary search.
	i, _ := slices.BinarySearchFunc(m.entries, h, func(e Entry, h Hash) int { return e.Range.End.Compare(h) })
	if i == len(m.entries) || !m.entries[i].Range.Contains(h) {
		return Entry{}, false
	}
	return m.entries[i], true
}

// Index returns the position in Entries of the open shard containing h, or -1.
func (m *Map) Index(h Hash) int {
	i, _ := slices.BinarySearchFunc(m.entries, h, func(e Entry, h Hash) int { return e.Range.End.Compare(h) })
	if i == len(m.entries) || !m.entries[i].Range.Contains(h) {
		return -1
	}
	return i
}

// Entries returns the open shards in hash-key order. The slice must not be modified.
func (m *Map) Entries() []Entry { return m.entries }

// Len returns the number of open shards.
func (m *Map) Len() int { return len(m.entries) }
