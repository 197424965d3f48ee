package producer_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/kinesis/producer"
)

// oneShard stands in for a one-shard stream in the examples; real code passes a
// *kinesis.Client.
type oneShard struct {
	mu  sync.Mutex
	seq int
}

func (s *oneShard) PutRecords(_ context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &kinesis.PutRecordsOutput{}
	for range in.Records {
		s.seq++
		out.Records = append(out.Records, types.PutRecordsResultEntry{
			ShardId: aws.String("shardId-000000000000"), SequenceNumber: aws.String(strconv.Itoa(s.seq)),
		})
	}
	return out, nil
}

func (s *oneShard) ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	return &kinesis.ListShardsOutput{Shards: []types.Shard{{
		ShardId: aws.String("shardId-000000000000"),
		HashKeyRange: &types.HashKeyRange{
			StartingHashKey: aws.String("0"),
			EndingHashKey:   aws.String("340282366920938463463374607431768211455"),
		},
	}}}, nil
}

// PutSync sends one record and waits for its outcome.
func ExampleProducer_PutSync() {
	ctx := context.Background()
	p, err := producer.New(&oneShard{}, "orders")
	if err != nil {
		panic(err)
	}
	defer p.Close(ctx)

	o, err := p.PutSync(ctx, "customer-42", []byte(`{"total":12}`))
	fmt.Println(o.ShardID, o.SequenceNumber, o.Aggregated, err)
	// Output: shardId-000000000000 1 false <nil>
}

// Put returns a future per record; records put within the linger time share one aggregate
// (one Kinesis record), and each keeps its own sub-sequence number.
func ExampleProducer_Put() {
	ctx := context.Background()
	p, err := producer.New(&oneShard{}, "orders")
	if err != nil {
		panic(err)
	}
	var results []*producer.Result
	for i := range 3 {
		r, err := p.Put(ctx, "customer-"+strconv.Itoa(i), []byte("event"))
		if err != nil {
			panic(err)
		}
		results = append(results, r)
	}
	if err := p.Close(ctx); err != nil { // Close flushes
		panic(err)
	}
	for _, r := range results {
		o, _ := r.Wait(ctx)
		fmt.Println(o.SequenceNumber, o.SubSequence, o.Aggregated, o.Err)
	}
	// Output:
	// 1 0 true <nil>
	// 1 1 true <nil>
	// 1 2 true <nil>
}

// describe tells what Wait's error says, in the order that keeps each case apart: an
// abandoned wait and a record Close gave up on may both match context.DeadlineExceeded.
func describe(o producer.Outcome, err error) string {
	switch {
	case err == nil:
		return "stored at " + o.ShardID + "/" + o.SequenceNumber
	case errors.Is(err, producer.ErrWaitAbandoned):
		return "stopped waiting; the record goes on"
	case errors.Is(err, producer.ErrClosed):
		return "the producer shut down before storing it"
	case errors.Is(err, producer.ErrMaybeWritten):
		return "failed, and Kinesis may hold it"
	}
	return "failed: " + err.Error()
}

// Wait's context bounds the wait, not the record: a wait that gives up says so with
// ErrWaitAbandoned, and the outcome can still be waited for.
func ExampleResult_Wait() {
	p, err := producer.New(&oneShard{}, "orders", producer.WithLinger(time.Hour))
	if err != nil {
		panic(err)
	}
	defer p.Close(context.Background())

	res, err := p.Put(context.Background(), "customer-42", []byte(`{"total":12}`))
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	fmt.Println(describe(res.Wait(ctx))) // the record lingers for up to an hour

	_ = p.Flush(context.Background()) // sends it now
	fmt.Println(describe(res.Wait(context.Background())))
	// Output:
	// stopped waiting; the record goes on
	// stored at shardId-000000000000/1
}
