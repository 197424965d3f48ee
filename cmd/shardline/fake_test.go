package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// fakeShard is one shard held in memory for readAPI fakes: records in sequence order with
// their arrival times. Iterators are "shard/index".
type fakeShard struct {
	records []types.Record
	closed  bool
	calls   int // GetRecords calls
}

var fakeBase = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// newFakeShard returns a shard with one record per arrival offset (in seconds from fakeBase),
// sequence numbers 1000, 1001, ...; data is "r<index>".
func newFakeShard(offsets ...float64) *fakeShard {
	s := &fakeShard{}
	for i, off := range offsets {
		s.records = append(s.records, types.Record{
			SequenceNumber:              aws.String(strconv.Itoa(1000 + i)),
			PartitionKey:                aws.String("k"),
			Data:                        []byte("r" + strconv.Itoa(i)),
			ApproximateArrivalTimestamp: aws.Time(fakeBase.Add(time.Duration(off * float64(time.Second)))),
		})
	}
	return s
}

type fakeKinesis struct{ shards map[string]*fakeShard }

func (f *fakeKinesis) GetShardIterator(_ context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	id := aws.ToString(in.ShardId)
	s, ok := f.shards[id]
	if !ok {
		return nil, &types.ResourceNotFoundException{Message: aws.String("no shard " + id)}
	}
	i := 0
	switch in.ShardIteratorType {
	case types.ShardIteratorTypeTrimHorizon:
	case types.ShardIteratorTypeLatest:
		i = len(s.records)
	case types.ShardIteratorTypeAtTimestamp:
		i = sort.Search(len(s.records), func(j int) bool { return !s.records[j].ApproximateArrivalTimestamp.Before(*in.Timestamp) })
	case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
		want := aws.ToString(in.StartingSequenceNumber)
		i = sort.Search(len(s.records), func(j int) bool { return compareSequence(*s.records[j].SequenceNumber, want) >= 0 })
		if in.ShardIteratorType == types.ShardIteratorTypeAfterSequenceNumber && i < len(s.records) && *s.records[i].SequenceNumber == want {
			i++
		}
	}
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String(fmt.Sprintf("%s/%d", id, i))}, nil
}

func (f *fakeKinesis) GetRecords(_ context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	id, pos, _ := strings.Cut(aws.ToString(in.ShardIterator), "/")
	s := f.shards[id]
	s.calls++
	i, _ := strconv.Atoi(pos)
	end := min(i+int(aws.ToInt32(in.Limit)), len(s.records))
	out := &kinesis.GetRecordsOutput{Records: s.records[i:end], MillisBehindLatest: aws.Int64(0)}
	if end < len(s.records) {
		last := s.records[len(s.records)-1].ApproximateArrivalTimestamp
		out.MillisBehindLatest = aws.Int64(max(1, last.Sub(*s.records[max(end-1, 0)].ApproximateArrivalTimestamp).Milliseconds()))
	}
	if !(s.closed && end == len(s.records)) {
		out.NextShardIterator = aws.String(fmt.Sprintf("%s/%d", id, end))
	}
	return out, nil
}
