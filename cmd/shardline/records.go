package main

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

// readAPI is the part of the Kinesis client that reading shards takes; *kinesis.Client
// satisfies it, tests plug fakes in.
type readAPI interface {
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

var _ readAPI = (*kinesis.Client)(nil)

// userRecord is one user record: a plain Kinesis record, or one record of a KPL aggregate.
type userRecord struct {
	Shard           string
	Sequence        string
	SubSequence     int64
	Key             string
	ExplicitHashKey string
	Arrival         time.Time
	Data            []byte
	Aggregated      bool
}

// deaggregator turns Kinesis records into user records the way Shardline's consumer does:
// aggregates are unpacked, user records at or before skip (a checkpoint inside an aggregate)
// are left out, and so are user records whose hash key is outside the shard's range (the KCL
// drops those: a stale producer map put them on the wrong shard, and they were sent again).
type deaggregator struct {
	shard  string
	rng    shardmap.Range
	hasRng bool
	parser aggregation.Parser
	// dropped counts user records outside the shard's range; malformed counts aggregates that
	// did not parse (passed through whole, as data).
	dropped, malformed int
}

func newDeaggregator(shard string, hashRange *types.HashKeyRange) *deaggregator {
	d := &deaggregator{shard: shard}
	if hashRange != nil {
		rng, err := shardmap.ShardRange(types.Shard{HashKeyRange: hashRange})
		if err == nil {
			d.rng, d.hasRng = rng, true
		}
	}
	return d
}

// add appends the user records of rec after skip to dst.
func (d *deaggregator) add(dst []userRecord, rec types.Record, skip checkpoint.Position) []userRecord {
	seq := aws.ToString(rec.SequenceNumber)
	var arrival time.Time
	if rec.ApproximateArrivalTimestamp != nil {
		arrival = rec.ApproximateArrivalTimestamp.UTC()
	}
	sameSeq := !skip.IsZero() && !skip.ShardEnd && seq == skip.SequenceNumber
	base := userRecord{Shard: d.shard, Sequence: seq, Key: aws.ToString(rec.PartitionKey), Arrival: arrival}
	switch d.parser.Parse(rec.Data) {
	case aggregation.Aggregated:
		for i := 0; i < d.parser.Len(); i++ {
			ur := d.parser.Record(i)
			if sameSeq && int64(ur.SubSequence) <= skip.SubSequenceNumber {
				continue
			}
			u := base
			u.Key = string(ur.PartitionKey)
			u.ExplicitHashKey = string(ur.ExplicitHashKey)
			h := shardmap.HashKeyBytes(ur.PartitionKey)
			if len(ur.ExplicitHashKey) > 0 {
				parsed, err := shardmap.ParseHash(u.ExplicitHashKey)
				if err != nil {
					d.dropped++
					continue
				}
				h = parsed
			}
			if d.hasRng && !d.rng.Contains(h) {
				d.dropped++
				continue
			}
			u.SubSequence = int64(ur.SubSequence)
			u.Data = append([]byte(nil), ur.Data...)
			u.Aggregated = true
			dst = append(dst, u)
		}
		return dst
	case aggregation.Malformed:
		d.malformed++
	}
	if sameSeq {
		return dst // a plain record is sub-sequence 0: at or before any checkpoint on it
	}
	base.Data = rec.Data
	return append(dst, base)
}

// lastPosition is the position of the last user record in rec: what a consumer checkpoints
// after handling rec whole.
func lastPosition(rec types.Record) checkpoint.Position {
	pos := checkpoint.Position{SequenceNumber: aws.ToString(rec.SequenceNumber)}
	var p aggregation.Parser
	if p.Parse(rec.Data) == aggregation.Aggregated && p.Len() > 0 {
		pos.SubSequenceNumber = int64(p.Len() - 1)
	}
	return pos
}

// userRecordsAfter counts the user records of rec after skip (all of them for a zero skip).
func userRecordsAfter(rec types.Record, skip checkpoint.Position) int64 {
	var p aggregation.Parser
	n := int64(1)
	if p.Parse(rec.Data) == aggregation.Aggregated {
		n = int64(p.Len())
	}
	if !skip.IsZero() && aws.ToString(rec.SequenceNumber) == skip.SequenceNumber {
		n -= min(n, skip.SubSequenceNumber+1)
	}
	return n
}

// iteratorStart is where a shard iterator starts.
type iteratorStart struct {
	Type      types.ShardIteratorType
	Sequence  string
	Timestamp time.Time
}

func (s iteratorStart) String() string {
	switch s.Type {
	case types.ShardIteratorTypeAtTimestamp:
		return "at " + s.Timestamp.UTC().Format(time.RFC3339Nano)
	case types.ShardIteratorTypeAtSequenceNumber:
		return "at sequence " + s.Sequence
	case types.ShardIteratorTypeAfterSequenceNumber:
		return "after sequence " + s.Sequence
	}
	return string(s.Type)
}

func getIterator(ctx context.Context, api readAPI, stream, shard string, at iteratorStart) (string, error) {
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(shard), ShardIteratorType: at.Type}
	switch at.Type {
	case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
		in.StartingSequenceNumber = aws.String(at.Sequence)
	case types.ShardIteratorTypeAtTimestamp:
		in.Timestamp = aws.Time(at.Timestamp)
	}
	out, err := api.GetShardIterator(ctx, in)
	if err != nil {
		return "", fmt.Errorf("get an iterator on %s %s: %w", shard, at, err)
	}
	return aws.ToString(out.ShardIterator), nil
}

// minPoll is the least time between two GetRecords calls on one shard: Kinesis allows five
// per second per shard.
const minPoll = 200 * time.Millisecond

// pacer spaces GetRecords calls on one shard.
type pacer struct{ last time.Time }

func (p *pacer) wait(ctx context.Context, d time.Duration) error {
	if wait := d - time.Since(p.last); wait > 0 && !p.last.IsZero() {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	p.last = time.Now()
	return nil
}

// getRecords calls GetRecords, retrying throttling a few times with backoff (the SDK's retryer
// already retried it) so a busy shard slows the read down rather than failing it.
func getRecords(ctx context.Context, api readAPI, iter string, limit int32) (*kinesis.GetRecordsOutput, error) {
	for attempt := 0; ; attempt++ {
		out, err := api.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(iter), Limit: aws.Int32(limit)})
		var throttled *types.ProvisionedThroughputExceededException
		if err == nil || !errors.As(err, &throttled) || attempt >= 8 {
			return out, err
		}
		t := time.NewTimer(time.Duration(1<<min(attempt, 4)) * 200 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// compareSequence compares two decimal sequence numbers as integers.
func compareSequence(a, b string) int {
	x, okx := new(big.Int).SetString(a, 10)
	y, oky := new(big.Int).SetString(b, 10)
	if !okx || !oky {
		switch {
		case len(a) != len(b):
			return len(a) - len(b)
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	}
	return x.Cmp(y)
}
