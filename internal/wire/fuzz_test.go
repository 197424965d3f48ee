package wire

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// safely runs the SDK's side of a comparison: the SDK panics on some bodies (a "NaN"
// timestamp reaches big.NewFloat), which then count as refused.
func safely(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.New("the SDK panicked")
		}
	}()
	return f()
}

// checkCodecError: the codec's only failure on a 2xx body is a DeserializationError that
// wraps a SyntaxError.
func checkCodecError(t *testing.T, err error, body []byte) {
	var de *smithy.DeserializationError
	var se *SyntaxError
	if err != nil && (!errors.As(err, &de) || !errors.As(err, &se)) {
		t.Fatalf("codec error of type %T: %v\n%q", err, err, body)
	}
}

// FuzzGetRecords: on any body the codec never panics, fails only with a SyntaxError, and
// decodes every body the SDK decodes exactly as the SDK does.
func FuzzGetRecords(f *testing.F) {
	for seed := range uint64(24) {
		g := newGen(seed)
		f.Add(g.getRecords(g.r.IntN(4), 64))
	}
	f.Add([]byte(`{"Records":[{"ApproximateArrivalTimestamp":"NaN"}]}`))
	f.Add([]byte(`{"Records":[null,{"Data":null}],"ChildShards":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		c := &canned{status: 200, body: body}
		client := newClient(c)
		in := &kinesis.GetRecordsInput{ShardIterator: aws.String("iter")}
		var sdk *kinesis.GetRecordsOutput
		sdkErr := safely(func() (err error) { sdk, err = client.GetRecords(context.Background(), in); return err })
		codec := &Codec{}
		_, err := client.GetRecords(context.Background(), in, codec.Option())
		checkCodecError(t, err, body)
		if sdkErr != nil {
			return
		}
		if err != nil {
			t.Fatalf("the SDK decodes what the codec refuses (%v):\n%q", err, body)
		}
		if d := equalGet(sdk, &codec.Get); d != "" {
			t.Fatalf("%s\n%q", d, body)
		}
	})
}

// FuzzPutRecords: the same for PutRecords responses.
func FuzzPutRecords(f *testing.F) {
	for seed := range uint64(16) {
		g := newGen(seed)
		f.Add(g.putResponse(g.r.IntN(5)))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c := &canned{status: 200, body: body}
		client := newClient(c)
		in := newGen(1).putInput(2, 8)
		var sdk *kinesis.PutRecordsOutput
		sdkErr := safely(func() (err error) { sdk, err = client.PutRecords(context.Background(), in); return err })
		codec := &Codec{}
		_, err := client.PutRecords(context.Background(), in, codec.Option())
		checkCodecError(t, err, body)
		if sdkErr != nil {
			return
		}
		if err != nil {
			t.Fatalf("the SDK decodes what the codec refuses (%v):\n%q", err, body)
		}
		if d := equalPut(sdk, &codec.Put); d != "" {
			t.Fatalf("%s\n%q", d, body)
		}
	})
}

// FuzzPutRecordsRequest: for any keys, sizes and stream name the codec sends what the SDK
// sends (headers, URL, the same JSON values), and never panics.
func FuzzPutRecordsRequest(f *testing.F) {
	f.Add("user-1", "", uint16(100), uint8(3), "s")
	f.Add("a\"b\\\x01\u2028\xff", "170141183460469231731687303715884105727", uint16(60000), uint8(19), "orders")
	f.Fuzz(func(t *testing.T, key, ehk string, size uint16, n uint8, stream string) {
		in := &kinesis.PutRecordsInput{StreamName: aws.String(stream)}
		for i := range int(n) % 20 {
			e := types.PutRecordsRequestEntry{Data: bytes.Repeat([]byte{byte(i)}, int(size)+i), PartitionKey: aws.String(key)}
			if ehk != "" {
				e.ExplicitHashKey = aws.String(ehk)
			}
			in.Records = append(in.Records, e)
		}
		c := &canned{status: 200, body: []byte(`{}`)}
		client := newClient(c)
		_, _ = client.PutRecords(context.Background(), in)
		sdkReq := &canned{req: c.req, reqBody: c.reqBody}
		c.req, c.reqBody = nil, nil
		_, _ = client.PutRecords(context.Background(), in, (&Codec{}).Option())
		if (sdkReq.req == nil) != (c.req == nil) {
			t.Fatalf("the SDK sent a request: %v; the codec did: %v", sdkReq.req != nil, c.req != nil)
		}
		if c.req != nil {
			if d := sameRequest(sdkReq, c); d != "" {
				t.Fatal(d)
			}
		}
	})
}
