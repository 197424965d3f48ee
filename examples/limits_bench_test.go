package examples_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/kinesis/aggregation"
	"github.com/shardline/kinesis/internal/shardmap"
	"github.com/shardline/kinesis/localstack"
	"github.com/shardline/kinesis/localstack/kinesisproxy"
	"github.com/shardline/kinesis/producer"
)

// BenchmarkProducerUnderLimits measures how much of Kinesis's per-shard write limits the
// producer keeps busy (issue 9): 4 shards behind kinesisproxy's real limits (1 MiB/s and 1,000
// records/s per shard, one second of burst) in front of kinesalite, the producer fed as fast as
// its buffer takes records for 14 s, defaults otherwise (ordering on, every record confirmed).
// The fractions count what Kinesis confirmed per second between 4 s (the one-second burst
// spent, and any tokens a slow start left unused) and the end: user record bytes (data and partition key, as the limit counts them; an aggregate's
// framing is left out, so aggregated figures err low) and Kinesis records; misrouted counts
// user records on a shard their key does not map to, read back from the stream.
//
//	go test -run '^$' -bench BenchmarkProducerUnderLimits -benchtime 1x ./examples
func BenchmarkProducerUnderLimits(b *testing.B) {
	for _, c := range []struct {
		name      string
		size      int
		aggregate bool
	}{
		{"1KiB-aggregated", 1024, true},
		{"1KiB-plain", 1024, false},
		{"100B-plain", 100, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			var bytesFrac, recordsFrac, misrouted float64
			for b.Loop() {
				bf, rf, m := underLimits(b, c.size, c.aggregate)
				bytesFrac, recordsFrac, misrouted = bytesFrac+bf, recordsFrac+rf, misrouted+float64(m)
			}
			n := float64(b.N)
			b.ReportMetric(bytesFrac/n, "byte-limit-fraction")
			b.ReportMetric(recordsFrac/n, "record-limit-fraction")
			b.ReportMetric(misrouted/n, "misrouted")
		})
	}
}

func underLimits(b *testing.B, size int, aggregate bool) (bytesFrac, recordsFrac float64, misrouted int) {
	stack := localstack.Require(b)
	upstream := localstack.Kinesalite(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	direct := kinesis.NewFromConfig(stack.AWS, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(upstream) })
	stream := localstack.UniqueName(b, "limits-")
	if err := localstack.CreateStream(ctx, direct, stream, 4); err != nil {
		b.Fatal(err)
	}
	proxy, err := kinesisproxy.Start(ctx, kinesisproxy.Config{Upstream: upstream, Limits: kinesisproxy.DefaultLimits()})
	if err != nil {
		b.Fatal(err)
	}
	defer proxy.Close(context.Background())
	client := kinesis.NewFromConfig(stack.AWS, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(proxy.URL()) })
	p, err := producer.New(client, stream, producer.WithAggregation(aggregate))
	if err != nil {
		b.Fatal(err)
	}
	const run, warm = 14 * time.Second, 4 * time.Second
	data := []byte(strings.Repeat("x", size))
	began := time.Now()
	// What Kinesis confirmed between warm (the burst spent) and the end, from the producer's
	// counters, read by a sampler: user record bytes as the limit counts them (data and key;
	// for aggregates this leaves out their framing, so it errs low) and Kinesis records.
	type sample struct{ bytes, records float64 }
	read := func() sample {
		st := p.Stats()
		return sample{float64(st.DeliveredBytes) + float64(st.Delivered)*float64(len("key-000")), float64(st.KinesisRecords)}
	}
	samples := make(chan [2]sample, 1)
	go func() {
		time.Sleep(time.Until(began.Add(warm)))
		first := read()
		time.Sleep(time.Until(began.Add(run)))
		samples <- [2]sample{first, read()}
	}()
	for i := 0; time.Since(began) < run; i++ { // bounded in time; Put blocks while the buffer is full
		pctx, pcancel := context.WithDeadline(ctx, began.Add(run))
		_, err := p.Put(pctx, fmt.Sprintf("key-%d", i%1000), data)
		pcancel()
		if err != nil && pctx.Err() == nil {
			b.Fatal(err)
		}
	}
	cctx, ccancel := context.WithTimeout(ctx, time.Minute)
	err = p.Close(cctx)
	ccancel()
	if err != nil {
		b.Fatalf("Close: %v", err)
	}
	window := <-samples
	shards, err := shardmap.List(ctx, direct, stream, nil)
	if err != nil {
		b.Fatal(err)
	}
	var parser aggregation.Parser
	for _, s := range shards {
		rng, _ := shardmap.ShardRange(s)
		it, err := direct.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: s.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			b.Fatal(err)
		}
		for iter := it.ShardIterator; iter != nil; {
			out, err := direct.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range out.Records {
				parser.Parse(r.Data)
				for i := range parser.Len() {
					h := shardmap.HashKey(aws.ToString(r.PartitionKey))
					if parser.Format() == aggregation.Aggregated {
						h = shardmap.HashKeyBytes(parser.Record(i).PartitionKey)
					}
					if !rng.Contains(h) {
						misrouted++
					}
				}
			}
			iter = out.NextShardIterator
			if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
				break
			}
		}
	}
	secs := (run - warm).Seconds()
	bytes, records := window[1].bytes-window[0].bytes, window[1].records-window[0].records
	st := p.Stats()
	b.Logf("%d records delivered, %d failed, %d requests; %.0f B/s and %.0f Kinesis records/s confirmed over the 4 shards from 4 s to 14 s; proxy: %d entries throttled",
		st.Delivered, st.Failed, st.Requests, bytes/secs, records/secs, proxy.Counters().Operations["PutRecords"].ThrottledEntries)
	return bytes / secs / (4 << 20), records / secs / 4000, misrouted
}
