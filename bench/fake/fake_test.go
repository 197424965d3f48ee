package fake_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/kinesis/bench/compare"
	"github.com/shardline/kinesis/bench/fake"
	"github.com/shardline/kinesis/bench/hashkey"
	"github.com/shardline/kinesis/bench/workload"
)

// TestPutCheck guards the fake's judgement of producers through the real SDK: an entry on
// its key's shard counts as placed, an aggregate-like entry under a foreign key as misplaced,
// and missing records are reported.
func TestPutCheck(t *testing.T) {
	ctx := context.Background()
	srv := fake.New()
	client, err := compare.NewClient(ctx, srv.Start())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.Create(ctx, fake.CreateRequest{Stream: "s", Shards: 4, Expect: 3}); err != nil {
		t.Fatal(err)
	}
	ranges := hashkey.Even(4)
	keyA := workload.Key(0)
	// A key on another shard than keyA, to put record 1 under the wrong key.
	var other string
	for k := 1; other == ""; k++ {
		if hashkey.Find(ranges, hashkey.Of(workload.Key(k))) != hashkey.Find(ranges, hashkey.Of(keyA)) {
			other = workload.Key(k)
		}
	}
	data := func(i int, key string) []byte { return workload.Data(make([]byte, 64), i, key) }
	out, err := client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: []types.PutRecordsRequestEntry{
		{PartitionKey: aws.String(keyA), Data: data(0, keyA)},
		{PartitionKey: aws.String(keyA), Data: data(1, other)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(out.FailedRecordCount) != 0 || aws.ToString(out.Records[0].ShardId) != ranges[hashkey.Find(ranges, hashkey.Of(keyA))].ShardID {
		t.Fatalf("PutRecords answered %+v", out.Records)
	}
	st, err := srv.Stats(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	if st.UserRecords != 2 || st.Misplaced != 1 || st.KeyChanged != 1 || st.Missing != 1 || st.Duplicates != 0 {
		t.Fatalf("stats %+v: want 2 user records, 1 misplaced, 1 key changed, 1 missing", st)
	}
}

// TestLoadAndRead guards the consumer side: every record of a loaded stream, plain or
// aggregated, comes back once through GetShardIterator and GetRecords, and no call returns
// more than the limit.
func TestLoadAndRead(t *testing.T) {
	ctx := context.Background()
	srv := fake.New()
	client, err := compare.NewClient(ctx, srv.Start())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, agg := range []bool{false, true} {
		spec := workload.Spec{Records: 5000, Size: 100, Keys: 100}
		if _, err := srv.Load(ctx, fake.LoadRequest{Stream: "s", Shards: 3, Spec: spec, Aggregate: agg, AggregateMax: 4096}); err != nil {
			t.Fatal(err)
		}
		ranges := hashkey.Even(3)
		p, err := compare.ReadBack(ctx, client, "s", ranges, spec.Records)
		if err != nil {
			t.Fatal(err)
		}
		if p.UserRecords != 5000 || p.Missing != 0 || p.Duplicates != 0 || p.Misplaced != 0 || p.KeyChanged != 0 {
			t.Fatalf("aggregated=%v: read back %+v", agg, p)
		}
		it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String(ranges[0].ShardID), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		got, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(7)})
		if err != nil || len(got.Records) != 7 || aws.ToInt64(got.MillisBehindLatest) == 0 {
			t.Fatalf("GetRecords with limit 7: %d records, behind %d, err %v", len(got.Records), aws.ToInt64(got.MillisBehindLatest), err)
		}
		_ = srv.Delete(ctx, "s")
	}
}
