package consumer

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/kinesis/aggregation"
	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/events"
	"github.com/shardline/kinesis/internal/shardmap"
	"github.com/shardline/kinesis/internal/wire"
)

// benchReader returns a reader of a one-shard stream holding its lease in a memory store, as
// Run would set it up.
func benchReader(b *testing.B, opts ...Option) *shardReader {
	b.Helper()
	c, err := New(newFakeKinesis("bench", 1), "bench", checkpoint.NewMemory(), append([]Option{WithGroup("shardline")}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	c.startEvents()
	b.Cleanup(func() { _ = c.bus.Close(context.Background()) })
	key := checkpoint.ShardKey{Group: "shardline", Stream: "bench", Shard: "shardId-000000000000"}
	lease, err := c.store.TakeLease(context.Background(), key, c.cfg.workerID, 0)
	if err != nil {
		b.Fatal(err)
	}
	info := shardInfo{id: key.Shard, rng: shardmap.Range{End: shardmap.MaxHash}, open: true}
	return newShardReader(c, info, lease, TrimHorizon)
}

// benchRecords returns GetRecords output for n user records of size bytes over 1,000 keys,
// plain or packed in aggregates of per user records.
func benchRecords(n, size, per int) []wire.Record {
	var out []wire.Record
	seq := 1
	now := time.Now()
	data := func(i int) []byte { return make([]byte, size) }
	if per <= 1 {
		for i := 0; i < n; i++ {
			out = append(out, wire.Record{Data: data(i), PartitionKey: "user-" + strconv.Itoa(i%1000),
				SequenceNumber: strconv.Itoa(seq), ApproximateArrivalTimestamp: now})
			seq++
		}
		return out
	}
	bld := aggregation.NewBuilder(0)
	for i := 0; i < n; i++ {
		bld.Add("user-"+strconv.Itoa(i%1000), "", data(i))
		if bld.Len() == per || i == n-1 {
			out = append(out, wire.Record{Data: bld.AppendTo(nil), PartitionKey: "user-0",
				SequenceNumber: strconv.Itoa(seq), ApproximateArrivalTimestamp: now})
			seq++
			bld.Reset()
		}
	}
	return out
}

// benchDeliver measures the delivery path for one GetRecords response of 1,000 user records:
// deaggregation, the hash-range check, the handler call and the per-batch checkpoint.
func benchDeliver(b *testing.B, size, per int, opts ...Option) {
	r := benchReader(b, opts...)
	records := benchRecords(1000, size, per)
	handled := 0
	h := func(_ context.Context, batch *Batch) error { handled += len(batch.Records); return nil }
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r.handled, r.checkpointed = checkpoint.Position{}, checkpoint.Position{}
		if err := r.deliver(h, records, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if handled != 1000*b.N {
		b.Fatalf("handled %d records, want %d", handled, 1000*b.N)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(handled), "ns/record")
	b.ReportMetric(float64(testing.AllocsPerRun(10, func() {
		r.handled, r.checkpointed = checkpoint.Position{}, checkpoint.Position{}
		_ = r.deliver(h, records, 0)
	}))/1000, "allocs/record")
}

func BenchmarkDeliverPlain100B(b *testing.B)      { benchDeliver(b, 100, 1) }
func BenchmarkDeliverPlain1KiB(b *testing.B)      { benchDeliver(b, 1024, 1) }
func BenchmarkDeliverAggregated100B(b *testing.B) { benchDeliver(b, 100, 100) }

// With a listener attached (issue 10: at most 5% more per record than without).
func BenchmarkDeliverPlain100BListener(b *testing.B) {
	benchDeliver(b, 100, 1, WithListener(events.NewSummary(100)))
}
func BenchmarkDeliverAggregated100BListener(b *testing.B) {
	benchDeliver(b, 100, 100, WithListener(events.NewSummary(100)))
}
func BenchmarkDeliverAggregated1KiB(b *testing.B) { benchDeliver(b, 1024, 40) }

// cannedHTTP answers every request with one GetRecords body, so that the read path runs
// through the real SDK client (signing, middleware, codec) without a network.
type cannedHTTP struct{ body []byte }

func (c *cannedHTTP) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}},
		Body: io.NopCloser(bytes.NewReader(c.body)), ContentLength: int64(len(c.body)), Request: r}, nil
}

// getRecordsBody is the GetRecords response Kinesis would send for records.
func getRecordsBody(records []wire.Record) []byte {
	var b bytes.Buffer
	b.WriteString(`{"Records":[`)
	for i, r := range records {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"SequenceNumber":"%s","ApproximateArrivalTimestamp":%.3f,"Data":"%s","PartitionKey":"%s"}`,
			r.SequenceNumber, float64(r.ApproximateArrivalTimestamp.UnixMilli())/1e3, base64.StdEncoding.EncodeToString(r.Data), r.PartitionKey)
	}
	b.WriteString(`],"NextShardIterator":"AAAAAAAAAAHsW8zCWf9164uy8Epue6WS3w6wmj4a4USt","MillisBehindLatest":0}`)
	return b.Bytes()
}

// benchRead measures the whole read path of one GetRecords response of 1,000 user records
// through the AWS SDK client: the call, decoding (Shardline's codec or the SDK's), and
// delivery as in benchDeliver.
func benchRead(b *testing.B, size, per int, codec bool) {
	r := benchReader(b, WithWireCodec(codec))
	r.c.client = kinesis.New(kinesis.Options{
		Region: "us-east-1", BaseEndpoint: aws.String("http://127.0.0.1:1"), Retryer: aws.NopRetryer{},
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		}),
		HTTPClient: &cannedHTTP{body: getRecordsBody(benchRecords(1000, size, per))},
	})
	handled := 0
	h := func(_ context.Context, batch *Batch) error { handled += len(batch.Records); return nil }
	read := func() {
		out, err := r.getRecords(context.Background(), "iter")
		if err != nil {
			b.Fatal(err)
		}
		r.handled, r.checkpointed = checkpoint.Position{}, checkpoint.Position{}
		if err := r.deliver(h, out.Records, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		read()
	}
	if handled != 1000*b.N {
		b.Fatalf("handled %d records, want %d", handled, 1000*b.N)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(handled), "ns/record")
	b.ReportMetric(testing.AllocsPerRun(5, read)/1000, "allocs/record")
}

func BenchmarkReadPlain100B(b *testing.B)              { benchRead(b, 100, 1, true) }
func BenchmarkReadPlain100BSDKCodec(b *testing.B)      { benchRead(b, 100, 1, false) }
func BenchmarkReadAggregated100B(b *testing.B)         { benchRead(b, 100, 100, true) }
func BenchmarkReadAggregated100BSDKCodec(b *testing.B) { benchRead(b, 100, 100, false) }
