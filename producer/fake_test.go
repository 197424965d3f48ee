package producer

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/shardline/kinesis/aggregation"
	"github.com/shardline/kinesis/internal/shardmap"
)

// fakeKinesis is an in-memory Kinesis for PutRecords and ListShards. It routes each entry
// as Kinesis does (explicit hash key, else MD5 of the partition key, over the open shards of
// its current layout), stores it with a per-stream sequence number, and lets tests inject
// per-entry error codes, request errors, latency and blocking, change the layout (a reshard
// the producer has not seen yet), and read back what a KCL-compatible consumer would see.
type fakeKinesis struct {
	mu       sync.Mutex
	shards   []fakeShard
	stored   []storedRecord
	seq      int
	listPage int // shards per ListShards page; 0 means all in one

	putCalls, listCalls int
	requests            []fakeRequest
	inFlight            map[string]int // requests in flight per landing shard
	maxInFlightPerShard int
	maxEntriesPerShard  int // most entries for one shard in one request
	// keyInFlight counts the entries in flight per ordering key of their user records (the
	// explicit hash key when set, else the partition key; aggregates are opened):
	// maxKeyInFlight above 1 means two Kinesis records holding one key were in flight at once,
	// which ordering forbids. Records of one key in one aggregate are stored together.
	keyInFlight    map[string]int
	maxKeyInFlight int

	latency time.Duration
	block   chan struct{} // when not nil, PutRecords waits until it is closed (or ctx ends)
	// inject decides, per PutRecords call, an error code per entry ("" for none) or an error
	// for the whole request. Entries given a code are not stored.
	inject  func(call int, in []types.PutRecordsRequestEntry) (codes []string, err error)
	listErr func(call int) error
}

type fakeShard struct {
	id     string
	rng    shardmap.Range
	closed bool
}

type storedRecord struct {
	shard   string
	seq     string
	pk, ehk string
	data    []byte
}

type fakeRequest struct {
	at      time.Time
	entries int
	bytes   int
	shards  map[string]int
}

// evenShards splits the hash space into n shards named shardId-000000000000 and on.
func evenShards(n int, firstIndex int) []fakeShard {
	space := new(big.Int).Lsh(big.NewInt(1), 128)
	step := new(big.Int).Div(space, big.NewInt(int64(n)))
	shards := make([]fakeShard, n)
	for i := range shards {
		start := new(big.Int).Mul(step, big.NewInt(int64(i)))
		end := new(big.Int).Sub(new(big.Int).Add(start, step), big.NewInt(1))
		if i == n-1 {
			end = new(big.Int).Sub(space, big.NewInt(1))
		}
		s, _ := shardmap.ParseHash(start.String())
		e, _ := shardmap.ParseHash(end.String())
		shards[i] = fakeShard{id: fmt.Sprintf("shardId-%012d", firstIndex+i), rng: shardmap.Range{Start: s, End: e}}
	}
	return shards
}

func newFake(shards int) *fakeKinesis {
	return &fakeKinesis{shards: evenShards(shards, 0), inFlight: map[string]int{}, keyInFlight: map[string]int{}}
}

// orderingKeys returns the ordering keys of the user records an entry carries, once each.
func orderingKeys(pk, ehk string, data []byte) []string {
	var p aggregation.Parser
	if p.Parse(data) != aggregation.Aggregated {
		if ehk != "" {
			return []string{"ehk:" + ehk}
		}
		return []string{pk}
	}
	keys := make([]string, 0, p.Len())
	for i := range p.Len() {
		r := p.Record(i)
		if r.ExplicitHashKey != nil {
			keys = append(keys, "ehk:"+string(r.ExplicitHashKey))
		} else {
			keys = append(keys, string(r.PartitionKey))
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// reshard closes every current shard and opens n new ones over the whole hash space, as a
// split or merge does; the producer finds out only when it lists shards again.
func (f *fakeKinesis) reshard(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	next := len(f.shards)
	for i := range f.shards {
		f.shards[i].closed = true
	}
	f.shards = append(f.shards, evenShards(n, next)...)
}

func (f *fakeKinesis) route(pk, ehk string) (fakeShard, error) {
	h := shardmap.HashKey(pk)
	if ehk != "" {
		var err error
		if h, err = shardmap.ParseHash(ehk); err != nil {
			return fakeShard{}, err
		}
	}
	for _, s := range f.shards {
		if !s.closed && s.rng.Contains(h) {
			return s, nil
		}
	}
	return fakeShard{}, fmt.Errorf("no open shard for %v", h)
}

func (f *fakeKinesis) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	f.mu.Lock()
	call := f.putCalls
	f.putCalls++
	bytes := 0
	perShard := map[string]int{}
	for _, e := range in.Records {
		pk := aws.ToString(e.PartitionKey)
		if pk == "" || len(e.Data)+len(pk) > MaxRecordSizeLimit {
			f.mu.Unlock()
			return nil, &types.InvalidArgumentException{Message: aws.String("bad entry")}
		}
		bytes += len(pk) + len(e.Data)
		s, err := f.route(pk, aws.ToString(e.ExplicitHashKey))
		if err != nil {
			f.mu.Unlock()
			return nil, &types.InvalidArgumentException{Message: aws.String(err.Error())}
		}
		perShard[s.id]++
	}
	if len(in.Records) == 0 || len(in.Records) > MaxBatchRecords || (bytes > MaxBatchBytes && len(in.Records) > 1) {
		f.mu.Unlock()
		return nil, &types.InvalidArgumentException{Message: aws.String(fmt.Sprintf("%d records, %d bytes", len(in.Records), bytes))}
	}
	f.requests = append(f.requests, fakeRequest{at: time.Now(), entries: len(in.Records), bytes: bytes, shards: perShard})
	for id, n := range perShard {
		f.inFlight[id]++
		f.maxInFlightPerShard = max(f.maxInFlightPerShard, f.inFlight[id])
		f.maxEntriesPerShard = max(f.maxEntriesPerShard, n)
	}
	var keys []string
	for _, e := range in.Records {
		keys = append(keys, orderingKeys(aws.ToString(e.PartitionKey), aws.ToString(e.ExplicitHashKey), e.Data)...)
	}
	for _, k := range keys {
		f.keyInFlight[k]++
		f.maxKeyInFlight = max(f.maxKeyInFlight, f.keyInFlight[k])
	}
	var codes []string
	var reqErr error
	if f.inject != nil {
		codes, reqErr = f.inject(call, in.Records)
	}
	latency, block := f.latency, f.block
	f.mu.Unlock()

	defer func() {
		f.mu.Lock()
		for id := range perShard {
			f.inFlight[id]--
		}
		for _, k := range keys {
			f.keyInFlight[k]--
		}
		f.mu.Unlock()
	}()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if reqErr != nil {
		return nil, reqErr
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	out := &kinesis.PutRecordsOutput{Records: make([]types.PutRecordsResultEntry, len(in.Records))}
	for i, e := range in.Records {
		if i < len(codes) && codes[i] != "" {
			out.Records[i] = types.PutRecordsResultEntry{ErrorCode: aws.String(codes[i]), ErrorMessage: aws.String("injected")}
			out.FailedRecordCount = aws.Int32(aws.ToInt32(out.FailedRecordCount) + 1)
			continue
		}
		pk, ehk := aws.ToString(e.PartitionKey), aws.ToString(e.ExplicitHashKey)
		s, _ := f.route(pk, ehk)
		f.seq++
		seq := fmt.Sprintf("%056d", f.seq)
		f.stored = append(f.stored, storedRecord{shard: s.id, seq: seq, pk: pk, ehk: ehk, data: slices.Clone(e.Data)})
		out.Records[i] = types.PutRecordsResultEntry{ShardId: aws.String(s.id), SequenceNumber: aws.String(seq)}
	}
	return out, nil
}

func (f *fakeKinesis) ListShards(ctx context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	call := f.listCalls
	f.listCalls++
	if f.listErr != nil {
		if err := f.listErr(call); err != nil {
			return nil, err
		}
	}
	if in.NextToken != nil && in.StreamName != nil {
		return nil, &types.InvalidArgumentException{Message: aws.String("NextToken and StreamName together")}
	}
	from := 0
	if in.NextToken != nil {
		from, _ = strconv.Atoi(*in.NextToken)
	}
	to := len(f.shards)
	if f.listPage > 0 {
		to = min(to, from+f.listPage)
	}
	out := &kinesis.ListShardsOutput{}
	for _, s := range f.shards[from:to] {
		sh := types.Shard{
			ShardId:             aws.String(s.id),
			HashKeyRange:        &types.HashKeyRange{StartingHashKey: aws.String(s.rng.Start.String()), EndingHashKey: aws.String(s.rng.End.String())},
			SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("0")},
		}
		if s.closed {
			sh.SequenceNumberRange.EndingSequenceNumber = aws.String("1")
		}
		out.Shards = append(out.Shards, sh)
	}
	if to < len(f.shards) {
		out.NextToken = aws.String(strconv.Itoa(to))
	}
	return out, nil
}

// userRecord is one user record as a KCL-compatible consumer reads it.
type userRecord struct {
	shard string
	seq   string
	sub   int
	pk    string
	data  string
}

// read returns what a KCL-compatible consumer would deliver, shard by shard in sequence
// order: aggregates deaggregated, and user records whose hash key lies outside the shard they
// were stored on dropped (the KCL does so); dropped counts those.
func (f *fakeKinesis) read(t testing.TB) (recs []userRecord, dropped int) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	ranges := map[string]shardmap.Range{}
	for _, s := range f.shards {
		ranges[s.id] = s.rng
	}
	var p aggregation.Parser
	for _, s := range f.stored {
		switch p.Parse(s.data) {
		case aggregation.Plain:
			recs = append(recs, userRecord{shard: s.shard, seq: s.seq, pk: s.pk, data: string(s.data)})
		case aggregation.Aggregated:
			for i := range p.Len() {
				r := p.Record(i)
				h := shardmap.HashKeyBytes(r.PartitionKey)
				if r.ExplicitHashKey != nil {
					h, _ = shardmap.ParseHash(string(r.ExplicitHashKey))
				}
				if !ranges[s.shard].Contains(h) {
					dropped++
					continue
				}
				recs = append(recs, userRecord{shard: s.shard, seq: s.seq, sub: r.SubSequence, pk: string(r.PartitionKey), data: string(r.Data)})
			}
		default:
			t.Fatalf("stored record %s on %s is malformed: %v", s.seq, s.shard, p.Err())
		}
	}
	return recs, dropped
}

// kinesisRecords returns how many Kinesis records were stored.
func (f *fakeKinesis) kinesisRecords() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.stored)
}

func (f *fakeKinesis) calls() (put, list int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.putCalls, f.listCalls
}

// shardOf returns the open shard of the fake's current layout that key maps to.
func (f *fakeKinesis) shardOf(key string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, _ := f.route(key, "")
	return s.id
}

// checkDelivered asserts that a consumer reads every record of want (key → data in Put order)
// exactly once, on the shard whose range holds the key's hash (by the fake's final layout when
// final, else on any shard that accepted it in range), with each key's records in order, and
// nothing else.
func checkDelivered(t testing.TB, f *fakeKinesis, want map[string][]string) {
	t.Helper()
	checkRead(t, f, want, true)
}

// checkDeliveredAnyOrder is checkDelivered without the order check, for ordering off: requests
// in flight together race, so records of one shard may be stored in any order.
func checkDeliveredAnyOrder(t testing.TB, f *fakeKinesis, want map[string][]string) {
	t.Helper()
	checkRead(t, f, want, false)
}

func checkRead(t testing.TB, f *fakeKinesis, want map[string][]string, ordered bool) {
	t.Helper()
	recs, _ := f.read(t)
	got := map[string][]string{}
	for _, r := range recs {
		if f.shardOf(r.pk) != r.shard {
			// The fake's layout can have changed since; what matters is the range check that
			// read already made. Only complain when the layout is unchanged.
			if !f.resharded() {
				t.Errorf("record %q of key %q on shard %s, want %s", r.data, r.pk, r.shard, f.shardOf(r.pk))
			}
		}
		got[r.pk] = append(got[r.pk], r.data)
	}
	short := func(ds []string) []string {
		out := make([]string, len(ds))
		for i, d := range ds {
			out[i] = d[:min(len(d), 20)]
		}
		return out
	}
	total := 0
	for key, datas := range want {
		total += len(datas)
		if !ordered {
			datas = slices.Sorted(slices.Values(datas))
			slices.Sort(got[key])
		}
		if !slices.Equal(got[key], datas) {
			if len(got[key]) == len(datas) {
				t.Errorf("key %q: records out of order:\n got %v\nwant %v", key, short(got[key]), short(datas))
			} else {
				t.Errorf("key %q: got %d records, want %d (exactly once each):\n got %v\nwant %v", key, len(got[key]), len(datas), short(got[key]), short(datas))
			}
		}
	}
	if len(recs) != total {
		t.Errorf("consumer reads %d records, want %d", len(recs), total)
	}
}

func (f *fakeKinesis) resharded() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.shards {
		if s.closed {
			return true
		}
	}
	return false
}

// unavailableThenThrottledAndRefused is a fault script for fakeKinesis.inject: the first call
// fails as a whole (503), the second has its first entry throttled and its second refused for
// good, later calls succeed.
func unavailableThenThrottledAndRefused(call int, in []types.PutRecordsRequestEntry) ([]string, error) {
	switch call {
	case 0:
		return nil, &smithy.GenericAPIError{Code: "ServiceUnavailable", Fault: smithy.FaultServer}
	case 1:
		codes := make([]string, len(in))
		codes[0] = CodeThroughputExceeded
		if len(in) > 1 {
			codes[1] = "Refused"
		}
		return codes, nil
	}
	return nil, nil
}
