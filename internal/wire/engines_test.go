package wire

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/shardline/kinesis/localstack"
)

// TestAgainstEngines puts records through the codec into a real engine (kinesis-mock, and a
// kinesalite of the test's own), then reads every shard with the same iterator through the
// SDK's codec and Shardline's and requires the same records; the engines' error answers
// reach the caller as the same modeled exception either way.
func TestAgainstEngines(t *testing.T) {
	engines := map[string]func(t *testing.T) *kinesis.Client{
		"kinesis-mock": func(t *testing.T) *kinesis.Client { return localstack.Kinesis(t) },
		"kinesalite": func(t *testing.T) *kinesis.Client {
			endpoint := localstack.Kinesalite(t)
			cfg, err := localstack.LoadConfig(context.Background(), endpoint)
			if err != nil {
				t.Fatal(err)
			}
			return kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(endpoint) })
		},
	}
	for name, newClient := range engines {
		t.Run(name, func(t *testing.T) {
			client := newClient(t)
			stream := localstack.NewStream(t, client, 2)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()

			g := newGen(42)
			in := &kinesis.PutRecordsInput{StreamName: aws.String(stream)}
			for i := range 300 {
				key := fmt.Sprintf("user-%d", i%37)
				if i%10 == 0 {
					key = fmt.Sprintf("clé \"%d\" \u2028 😀", i)
				}
				data := g.data(3000)
				if len(data) == 0 {
					data = []byte{byte(i)}
				}
				in.Records = append(in.Records, types.PutRecordsRequestEntry{Data: data, PartitionKey: aws.String(key)})
			}
			codec := &Codec{}
			if _, err := client.PutRecords(ctx, in, codec.Option()); err != nil {
				t.Fatal(err)
			}
			put := &codec.Put
			if !put.Decoded || len(put.Records) != len(in.Records) || put.FailedRecordCount != 0 {
				t.Fatalf("PutRecords through the codec: decoded %v, %d entries, %d failed", put.Decoded, len(put.Records), put.FailedRecordCount)
			}
			for i, e := range put.Records {
				if e.SequenceNumber == "" || e.ShardID == "" || e.ErrorCode != "" {
					t.Fatalf("entry %d: %+v", i, e)
				}
			}

			shards, err := client.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
			if err != nil {
				t.Fatal(err)
			}
			read := 0
			for _, sh := range shards.Shards {
				it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream),
					ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
				if err != nil {
					t.Fatal(err)
				}
				get := &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator}
				sdk, err := client.GetRecords(ctx, get)
				if err != nil {
					t.Fatal(err)
				}
				c := &Codec{}
				if _, err := client.GetRecords(ctx, get, c.Option()); err != nil {
					t.Fatal(err)
				}
				if !c.Get.Decoded {
					t.Fatal("the codec did not decode the engine's response")
				}
				// Each call hands out a new iterator, and the time behind the tip moves on:
				// compare what both answers must share.
				if aws.ToString(sdk.NextShardIterator) == "" || c.Get.NextShardIterator == "" {
					t.Fatalf("an open shard without a next iterator: SDK %q, codec %q", aws.ToString(sdk.NextShardIterator), c.Get.NextShardIterator)
				}
				sdk.NextShardIterator, sdk.MillisBehindLatest = aws.String(c.Get.NextShardIterator), aws.Int64(c.Get.MillisBehindLatest)
				if d := equalGet(sdk, &c.Get); d != "" {
					t.Fatalf("shard %s: %s", aws.ToString(sh.ShardId), d)
				}
				read += len(c.Get.Records)
			}
			if read != len(in.Records) {
				t.Fatalf("read %d records, put %d", read, len(in.Records))
			}

			// An engine's error is the same modeled exception through either codec.
			bad := &kinesis.GetRecordsInput{ShardIterator: aws.String("AAAAAAAAAAF0aGlzIGlzIG5vdCBhbiBpdGVyYXRvcg==")}
			_, sdkErr := client.GetRecords(ctx, bad)
			_, err = client.GetRecords(ctx, bad, (&Codec{}).Option())
			var sdkAPI, api smithy.APIError
			if !errors.As(sdkErr, &sdkAPI) || !errors.As(err, &api) || sdkAPI.ErrorCode() != api.ErrorCode() {
				t.Fatalf("bad iterator: codec error %v, SDK error %v", err, sdkErr)
			}
		})
	}
}
