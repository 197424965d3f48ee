package wire

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// canned is an HTTP client that answers every request with one response and keeps the last
// request, so that one SDK client can be asked the same thing with and without the codec.
type canned struct {
	status  int
	body    []byte
	req     *http.Request
	reqBody []byte
}

func (c *canned) Do(r *http.Request) (*http.Response, error) {
	c.req = r
	if r.Body != nil {
		c.reqBody, _ = io.ReadAll(r.Body)
	}
	return &http.Response{
		StatusCode:    c.status,
		Header:        http.Header{"Content-Type": {"application/x-amz-json-1.1"}},
		Body:          io.NopCloser(bytes.NewReader(c.body)),
		ContentLength: int64(len(c.body)),
		Request:       r,
	}, nil
}

func newClient(c *canned) *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		Credentials:  aws.NewCredentialsCache(credentials{}),
		HTTPClient:   c,
		BaseEndpoint: aws.String("http://127.0.0.1:1"),
		Retryer:      aws.NopRetryer{},
	})
}

type credentials struct{}

func (credentials) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test", Source: "test"}, nil
}

// sdkGet answers body to GetRecords through the SDK's codec and through ours, on one client.
func sdkGet(t testing.TB, status int, body []byte) (sdk *kinesis.GetRecordsOutput, sdkErr error, ours *Codec, oursErr error) {
	t.Helper()
	c := &canned{status: status, body: body}
	client := newClient(c)
	in := &kinesis.GetRecordsInput{ShardIterator: aws.String("iter")}
	sdk, sdkErr = client.GetRecords(context.Background(), in)
	ours = &Codec{}
	out, oursErr := client.GetRecords(context.Background(), in, ours.Option())
	if oursErr == nil && !ours.Get.Decoded {
		t.Fatal("the codec did not decode the response")
	}
	if oursErr == nil && (out == nil || len(out.Records) != 0 || out.NextShardIterator != nil) {
		t.Fatalf("the SDK's output is not empty with the codec on: %+v", out)
	}
	return sdk, sdkErr, ours, oursErr
}

// equalGet reports how the codec's decoding differs from the SDK's, or "".
func equalGet(sdk *kinesis.GetRecordsOutput, ours *GetRecordsOutput) string {
	if len(sdk.Records) != len(ours.Records) {
		return fmt.Sprintf("%d records, SDK %d", len(ours.Records), len(sdk.Records))
	}
	for i := range sdk.Records {
		s, o := &sdk.Records[i], &ours.Records[i]
		var at time.Time
		if s.ApproximateArrivalTimestamp != nil {
			at = *s.ApproximateArrivalTimestamp
		}
		switch {
		case !bytes.Equal(s.Data, o.Data) || (s.Data == nil) != (o.Data == nil):
			return fmt.Sprintf("record %d: data %q, SDK %q", i, o.Data, s.Data)
		case aws.ToString(s.PartitionKey) != o.PartitionKey:
			return fmt.Sprintf("record %d: key %q, SDK %q", i, o.PartitionKey, aws.ToString(s.PartitionKey))
		case aws.ToString(s.SequenceNumber) != o.SequenceNumber:
			return fmt.Sprintf("record %d: sequence number %q, SDK %q", i, o.SequenceNumber, aws.ToString(s.SequenceNumber))
		case !at.Equal(o.ApproximateArrivalTimestamp) || at.Location() != o.ApproximateArrivalTimestamp.Location():
			return fmt.Sprintf("record %d: arrival %v, SDK %v", i, o.ApproximateArrivalTimestamp, at)
		case s.EncryptionType != o.EncryptionType:
			return fmt.Sprintf("record %d: encryption %q, SDK %q", i, o.EncryptionType, s.EncryptionType)
		}
		if len(o.Data) > 0 && cap(o.Data) != len(o.Data) {
			return fmt.Sprintf("record %d: data capacity %d beyond its length %d", i, cap(o.Data), len(o.Data))
		}
	}
	if aws.ToString(sdk.NextShardIterator) != ours.NextShardIterator {
		return fmt.Sprintf("iterator %q, SDK %q", ours.NextShardIterator, aws.ToString(sdk.NextShardIterator))
	}
	if aws.ToInt64(sdk.MillisBehindLatest) != ours.MillisBehindLatest {
		return fmt.Sprintf("behind %d, SDK %d", ours.MillisBehindLatest, aws.ToInt64(sdk.MillisBehindLatest))
	}
	if !equalChildren(sdk.ChildShards, ours.ChildShards) {
		return fmt.Sprintf("children %s, SDK %s", jsonOf(ours.ChildShards), jsonOf(sdk.ChildShards))
	}
	return ""
}

func equalChildren(a, b []types.ChildShard) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return jsonOf(a) == jsonOf(b)
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// putPair is one PutRecords call made through the SDK's codec and through Shardline's, on
// one client: each side's output or error, and the request it sent.
type putPair struct {
	sdk      *kinesis.PutRecordsOutput
	sdkErr   error
	sdkReq   *canned
	codec    *Codec
	err      error
	codecReq *canned
}

// sdkPut answers body to PutRecords through both codecs.
func sdkPut(t testing.TB, status int, body []byte, in *kinesis.PutRecordsInput) putPair {
	t.Helper()
	c := &canned{status: status, body: body}
	client := newClient(c)
	var p putPair
	p.sdk, p.sdkErr = client.PutRecords(context.Background(), in)
	p.sdkReq = &canned{req: c.req, reqBody: c.reqBody}
	p.codec = &Codec{}
	out, err := client.PutRecords(context.Background(), in, p.codec.Option())
	p.err, p.codecReq = err, c
	if err == nil && (!p.codec.Put.Decoded || len(out.Records) != 0) {
		t.Fatalf("the codec did not decode the response (decoded %v, SDK records %d)", p.codec.Put.Decoded, len(out.Records))
	}
	return p
}

func equalPut(sdk *kinesis.PutRecordsOutput, ours *PutRecordsOutput) string {
	if len(sdk.Records) != len(ours.Records) {
		return fmt.Sprintf("%d entries, SDK %d", len(ours.Records), len(sdk.Records))
	}
	for i := range sdk.Records {
		s, o := &sdk.Records[i], &ours.Records[i]
		want := PutRecordsResultEntry{SequenceNumber: aws.ToString(s.SequenceNumber), ShardID: aws.ToString(s.ShardId),
			ErrorCode: aws.ToString(s.ErrorCode), ErrorMessage: aws.ToString(s.ErrorMessage)}
		if want != *o {
			return fmt.Sprintf("entry %d: %+v, SDK %+v", i, *o, want)
		}
	}
	if aws.ToInt32(sdk.FailedRecordCount) != ours.FailedRecordCount {
		return fmt.Sprintf("failed %d, SDK %d", ours.FailedRecordCount, aws.ToInt32(sdk.FailedRecordCount))
	}
	if sdk.EncryptionType != ours.EncryptionType {
		return fmt.Sprintf("encryption %q, SDK %q", ours.EncryptionType, sdk.EncryptionType)
	}
	return ""
}

// sameRequest reports how two PutRecords requests differ, as Kinesis would read them.
func sameRequest(a, b *canned) string {
	for _, h := range []string{"X-Amz-Target", "Content-Type"} {
		if a.req.Header.Get(h) != b.req.Header.Get(h) {
			return fmt.Sprintf("header %s %q, SDK %q", h, b.req.Header.Get(h), a.req.Header.Get(h))
		}
	}
	if a.req.Method != b.req.Method || a.req.URL.String() != b.req.URL.String() {
		return fmt.Sprintf("%s %s, SDK %s %s", b.req.Method, b.req.URL, a.req.Method, a.req.URL)
	}
	if cl := strconv.Itoa(len(b.reqBody)); b.req.Header.Get("Content-Length") != "" && b.req.Header.Get("Content-Length") != cl {
		return fmt.Sprintf("Content-Length %s for a %s-byte body", b.req.Header.Get("Content-Length"), cl)
	}
	var av, bv any
	if err := json.Unmarshal(a.reqBody, &av); err != nil {
		return "SDK body: " + err.Error()
	}
	if err := json.Unmarshal(b.reqBody, &bv); err != nil {
		return fmt.Sprintf("body %q: %v", b.reqBody, err)
	}
	if !reflect.DeepEqual(av, bv) {
		return fmt.Sprintf("body %s, SDK %s", b.reqBody, a.reqBody)
	}
	return ""
}
