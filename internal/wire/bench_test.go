package wire

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// getBody is a GetRecords response of n records of size bytes, as Kinesis writes one.
func getBody(n, size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"Records":[`)
	data := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{'x'}, size))
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"SequenceNumber":"49659800734953513466498836543829271012%018d","ApproximateArrivalTimestamp":1.733155200123E9,"Data":"%s","PartitionKey":"user-%d"}`, i, data, i%1000)
	}
	b.WriteString(`],"NextShardIterator":"AAAAAAAAAAHsW8zCWf9164uy8Epue6WS3w6wmj4a4USt+CNvMd6uXQ+HL5vAJMznqqC0DLKsIjuoiTi1BpT6nW0LN2M2D56zM5H8anHm30Gbri9ua+qaGgj+3XTyvbhpERfrezgLHbPB/rIcVpykJbaSj5tmcXYRmFnqZBEyHwtZYFmh6hvWVFkIwLuMZLMrpWhG5r5hzkE=","MillisBehindLatest":0}`)
	return b.Bytes()
}

func benchGet(b *testing.B, n, size int, codec bool) {
	body := getBody(n, size)
	client := newClient(&canned{status: 200, body: body})
	in := &kinesis.GetRecordsInput{ShardIterator: aws.String("iter")}
	c := &Codec{}
	var opts []func(*kinesis.Options)
	if codec {
		opts = append(opts, c.Option())
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		out, err := client.GetRecords(context.Background(), in, opts...)
		if err != nil {
			b.Fatal(err)
		}
		if got := len(out.Records) + len(c.Get.Records); got != n {
			b.Fatalf("%d records", got)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
	b.ReportMetric(float64(testing.AllocsPerRun(1, func() { _, _ = client.GetRecords(context.Background(), in, opts...) }))/float64(n), "allocs/record")
}

// BenchmarkGetRecords: one GetRecords call through the SDK client (signing, middleware,
// a canned HTTP answer), 1,000 records of 100 B, decoded by the SDK's codec or Shardline's.
func BenchmarkGetRecords(b *testing.B) {
	b.Run("sdk/100B", func(b *testing.B) { benchGet(b, 1000, 100, false) })
	b.Run("codec/100B", func(b *testing.B) { benchGet(b, 1000, 100, true) })
	b.Run("sdk/1KiB", func(b *testing.B) { benchGet(b, 1000, 1024, false) })
	b.Run("codec/1KiB", func(b *testing.B) { benchGet(b, 1000, 1024, true) })
}

// BenchmarkDecodeGetRecords: the decoder alone on a 1,000-record body.
func BenchmarkDecodeGetRecords(b *testing.B) {
	body := getBody(1000, 100)
	var d Decoder
	var out GetRecordsOutput
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := d.GetRecords(body, &out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/record")
}

func putBody(n int) []byte {
	var b []byte
	b = append(b, `{"FailedRecordCount":0,"Records":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"SequenceNumber":"49659800734953513466498836543829271012%018d","ShardId":"shardId-%012d"}`, i, i%4)
	}
	return append(b, `]}`...)
}

// BenchmarkPutRecords: one PutRecords call of 500 entries of 1 KiB (KPL aggregates are
// larger; the encoding cost scales with bytes), through the SDK's codec or Shardline's.
func BenchmarkPutRecords(b *testing.B) {
	for _, codec := range []bool{false, true} {
		name := map[bool]string{false: "sdk", true: "codec"}[codec]
		b.Run(name, func(b *testing.B) {
			in := &kinesis.PutRecordsInput{StreamName: aws.String("orders")}
			for i := range 500 {
				in.Records = append(in.Records, types.PutRecordsRequestEntry{Data: bytes.Repeat([]byte{byte(i)}, 1024), PartitionKey: aws.String(fmt.Sprintf("user-%d", i))})
			}
			client := newClient(&canned{status: 200, body: putBody(500)})
			c := &Codec{}
			var opts []func(*kinesis.Options)
			if codec {
				opts = append(opts, c.Option())
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.PutRecords(context.Background(), in, opts...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*500), "ns/entry")
		})
	}
}
