package consumer

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/kinesis/internal/shardmap"
)

// fakeKinesis is an in-memory stream with Kinesis' read semantics: hash-key routing, closed
// shards with lineage, iterators that expire after five minutes, ChildShards at a shard's
// end and MillisBehindLatest. Faults are injected through hooks. It is safe for concurrent
// use and runs on the synctest clock.
type fakeKinesis struct {
	mu      sync.Mutex
	stream  string
	shards  []*fakeShard // creation order
	byID    map[string]*fakeShard
	nextSeq int64
	nextID  int

	// getRecordsFault, when set, is called before every GetRecords; a non-nil error is
	// returned instead of records.
	getRecordsFault func(shard string) error
	calls           map[string][]time.Time // GetRecords call times per shard
	pageSize        int                    // ListShards page size
	// noChildShards: a closed shard's last GetRecords names no children, as kinesalite
	// answers.
	noChildShards bool
}

type fakeShard struct {
	id      string
	parent  string
	adj     string
	rng     shardmap.Range
	records []types.Record
	closed  bool
}

var two128 = new(big.Int).Lsh(big.NewInt(1), 128)

func newFakeKinesis(stream string, shards int) *fakeKinesis {
	f := &fakeKinesis{stream: stream, byID: map[string]*fakeShard{}, calls: map[string][]time.Time{}, pageSize: 2}
	step := new(big.Int).Div(two128, big.NewInt(int64(shards)))
	for i := 0; i < shards; i++ {
		start := new(big.Int).Mul(step, big.NewInt(int64(i)))
		end := new(big.Int).Sub(new(big.Int).Add(start, step), big.NewInt(1))
		if i == shards-1 {
			end = new(big.Int).Sub(two128, big.NewInt(1))
		}
		f.addShard("", "", mustRange(start.String(), end.String()))
	}
	return f
}

func mustRange(start, end string) shardmap.Range {
	s, err1 := shardmap.ParseHash(start)
	e, err2 := shardmap.ParseHash(end)
	if err1 != nil || err2 != nil {
		panic(fmt.Sprint(err1, err2))
	}
	return shardmap.Range{Start: s, End: e}
}

func (f *fakeKinesis) addShard(parent, adj string, rng shardmap.Range) *fakeShard {
	s := &fakeShard{id: fmt.Sprintf("shardId-%012d", f.nextID), parent: parent, adj: adj, rng: rng}
	f.nextID++
	f.shards = append(f.shards, s)
	f.byID[s.id] = s
	return s
}

// put routes a record by its explicit hash key or partition key, as Kinesis does.
func (f *fakeKinesis) put(key string, ehk string, data []byte) (shard, seq string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := shardmap.HashKey(key)
	if ehk != "" {
		h, _ = shardmap.ParseHash(ehk)
	}
	for _, s := range f.shards {
		if !s.closed && s.rng.Contains(h) {
			f.nextSeq++
			seq = strconv.FormatInt(f.nextSeq, 10) // 1, 2, ... 10: numeric, not lexical, order
			s.records = append(s.records, types.Record{
				Data: data, PartitionKey: aws.String(key), SequenceNumber: aws.String(seq),
				ApproximateArrivalTimestamp: aws.Time(time.Now()),
			})
			return s.id, seq
		}
	}
	panic("fake: no open shard for hash " + h.String())
}

func (f *fakeKinesis) open() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, s := range f.shards {
		if !s.closed {
			ids = append(ids, s.id)
		}
	}
	return ids
}

// split closes shard id and creates two children splitting its range in half.
func (f *fakeKinesis) split(id string) (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.byID[id]
	p.closed = true
	lo, hi := bigOf(p.rng.Start), bigOf(p.rng.End)
	mid := new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1)
	a := f.addShard(id, "", mustRange(lo.String(), mid.String()))
	b := f.addShard(id, "", mustRange(new(big.Int).Add(mid, big.NewInt(1)).String(), hi.String()))
	return a.id, b.id
}

// merge closes two adjacent shards and creates their child.
func (f *fakeKinesis) merge(a, b string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	pa, pb := f.byID[a], f.byID[b]
	if pa.rng.Start.Compare(pb.rng.Start) > 0 {
		pa, pb = pb, pa
	}
	pa.closed, pb.closed = true, true
	return f.addShard(pa.id, pb.id, shardmap.Range{Start: pa.rng.Start, End: pb.rng.End}).id
}

// expire drops closed shard id as Kinesis does once the retention period passed: it is no
// longer listed, and its records are gone.
func (f *fakeKinesis) expire(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.byID[id].closed {
		panic("fake: only closed shards leave retention")
	}
	f.shards = slices.DeleteFunc(f.shards, func(s *fakeShard) bool { return s.id == id })
	delete(f.byID, id)
}

func bigOf(h shardmap.Hash) *big.Int {
	b := new(big.Int).SetUint64(h.Hi)
	b.Lsh(b, 64)
	return b.Or(b, new(big.Int).SetUint64(h.Lo))
}

func (f *fakeKinesis) toType(s *fakeShard) types.Shard {
	out := types.Shard{
		ShardId:             aws.String(s.id),
		HashKeyRange:        &types.HashKeyRange{StartingHashKey: aws.String(s.rng.Start.String()), EndingHashKey: aws.String(s.rng.End.String())},
		SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("0")},
	}
	if s.parent != "" {
		out.ParentShardId = aws.String(s.parent)
	}
	if s.adj != "" {
		out.AdjacentParentShardId = aws.String(s.adj)
	}
	if s.closed {
		out.SequenceNumberRange.EndingSequenceNumber = aws.String("999999999")
	}
	return out
}

func (f *fakeKinesis) ListShards(_ context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	start := 0
	if in.NextToken != nil {
		if in.StreamName != nil {
			return nil, &types.InvalidArgumentException{Message: aws.String("NextToken and StreamName")}
		}
		start, _ = strconv.Atoi(*in.NextToken)
	} else if aws.ToString(in.StreamName) != f.stream {
		return nil, &types.ResourceNotFoundException{Message: aws.String("no stream " + aws.ToString(in.StreamName))}
	}
	out := &kinesis.ListShardsOutput{}
	end := min(start+f.pageSize, len(f.shards))
	for _, s := range f.shards[start:end] {
		out.Shards = append(out.Shards, f.toType(s))
	}
	if end < len(f.shards) {
		out.NextToken = aws.String(strconv.Itoa(end))
	}
	return out, nil
}

func (f *fakeKinesis) GetShardIterator(_ context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if aws.ToString(in.StreamName) != f.stream {
		return nil, &types.ResourceNotFoundException{Message: aws.String("no stream")}
	}
	s, ok := f.byID[aws.ToString(in.ShardId)]
	if !ok {
		return nil, &types.ResourceNotFoundException{Message: aws.String("no shard")}
	}
	idx := 0
	switch in.ShardIteratorType {
	case types.ShardIteratorTypeTrimHorizon:
	case types.ShardIteratorTypeLatest:
		idx = len(s.records)
	case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
		want, _ := new(big.Int).SetString(aws.ToString(in.StartingSequenceNumber), 10)
		idx = len(s.records)
		for i, r := range s.records {
			got, _ := new(big.Int).SetString(aws.ToString(r.SequenceNumber), 10)
			if c := got.Cmp(want); c > 0 || (c == 0 && in.ShardIteratorType == types.ShardIteratorTypeAtSequenceNumber) {
				idx = i
				break
			}
		}
	case types.ShardIteratorTypeAtTimestamp:
		idx = len(s.records)
		for i, r := range s.records {
			if !r.ApproximateArrivalTimestamp.Before(*in.Timestamp) {
				idx = i
				break
			}
		}
	default:
		return nil, &types.InvalidArgumentException{Message: aws.String("iterator type")}
	}
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String(f.iterator(s.id, idx))}, nil
}

func (f *fakeKinesis) iterator(shard string, idx int) string {
	return fmt.Sprintf("%s|%d|%d", shard, idx, time.Now().UnixNano())
}

func (f *fakeKinesis) GetRecords(_ context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	parts := strings.Split(aws.ToString(in.ShardIterator), "|")
	if len(parts) != 3 {
		return nil, &types.InvalidArgumentException{Message: aws.String("bad iterator")}
	}
	idx, _ := strconv.Atoi(parts[1])
	issued, _ := strconv.ParseInt(parts[2], 10, 64)
	f.mu.Lock()
	f.calls[parts[0]] = append(f.calls[parts[0]], time.Now())
	fault := f.getRecordsFault
	f.mu.Unlock()
	if fault != nil {
		if err := fault(parts[0]); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Since(time.Unix(0, issued)) > 5*time.Minute {
		return nil, &types.ExpiredIteratorException{Message: aws.String("Iterator expired")}
	}
	s := f.byID[parts[0]]
	limit := int(aws.ToInt32(in.Limit))
	if limit == 0 {
		limit = 10000
	}
	end := min(idx+limit, len(s.records))
	out := &kinesis.GetRecordsOutput{Records: append([]types.Record(nil), s.records[idx:end]...), MillisBehindLatest: aws.Int64(0)}
	if end < len(s.records) {
		out.MillisBehindLatest = aws.Int64(time.Since(*s.records[end-1].ApproximateArrivalTimestamp).Milliseconds() + 1)
	}
	if s.closed && end == len(s.records) {
		for _, c := range f.shards {
			if (c.parent == s.id || c.adj == s.id) && !f.noChildShards {
				ct := f.toType(c)
				parents := []string{c.parent}
				if c.adj != "" {
					parents = append(parents, c.adj)
				}
				out.ChildShards = append(out.ChildShards, types.ChildShard{ShardId: ct.ShardId, HashKeyRange: ct.HashKeyRange, ParentShards: parents})
			}
		}
		return out, nil
	}
	out.NextShardIterator = aws.String(f.iterator(s.id, end))
	return out, nil
}

// maxCallsPerSecond returns the most GetRecords calls any shard received within one second.
func (f *fakeKinesis) maxCallsPerSecond() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	most := 0
	for _, calls := range f.calls {
		for i := range calls {
			n := 0
			for j := i; j < len(calls) && calls[j].Sub(calls[i]) < time.Second; j++ {
				n++
			}
			most = max(most, n)
		}
	}
	return most
}

var errInjected = errors.New("injected fault")
