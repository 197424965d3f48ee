package wire

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// The protocol the codec speaks, as the SDK names it: only a client on it gets the codec.
var awsJSON11 = smithy.ShapeID{Namespace: "aws.protocols", Name: "awsJson1_1"}

// target is the X-Amz-Target prefix of every Kinesis operation.
const target = "Kinesis_20131202."

// Codec is Shardline's codec for one caller's GetRecords or PutRecords calls. Its Option
// makes the SDK use it for the call it is passed to; the decoded response is then in Get or
// Put (with Decoded set), and the SDK's own output is empty. Calls that fail keep the SDK's
// errors: every response outside 2xx goes to the SDK's protocol.
//
// A Codec serves one call at a time, and a decoded response stays in it until the next
// call: give each goroutine that calls Kinesis its own.
type Codec struct {
	Get GetRecordsOutput
	Put PutRecordsOutput

	dec    Decoder
	option func(*kinesis.Options)
}

// Option returns the per-call option that routes the call through c. It is made once, so
// passing it costs no allocation. On a client whose protocol is not AWS JSON 1.1 it does
// nothing and the SDK decodes as usual.
func (c *Codec) Option() func(*kinesis.Options) {
	if c.option == nil {
		c.option = func(o *kinesis.Options) {
			if o.Protocol == nil || o.Protocol.ID() != awsJSON11 {
				return
			}
			if p, ok := o.Protocol.(*protocol); ok && p.c == c {
				return
			}
			o.Protocol = &protocol{inner: o.Protocol, c: c}
		}
	}
	return c.option
}

// Reset forgets the last decoded responses, so that a call that did not go through the codec
// (a client that is not the SDK's) is not mistaken for one that did.
func (c *Codec) Reset() {
	c.Get.reset()
	c.Get.Decoded = false
	clear(c.Put.Records)
	c.Put = PutRecordsOutput{Records: c.Put.Records[:0]}
}

// bodyPool holds response bodies between calls, shared by every codec.
var bodyPool sync.Pool

// protocol is the SDK's protocol with the codec in front for GetRecords and PutRecords.
type protocol struct {
	inner smithyhttp.ClientProtocol
	c     *Codec
}

var _ smithyhttp.ClientProtocol = (*protocol)(nil)

func (p *protocol) ID() smithy.ShapeID { return p.inner.ID() }

func (p *protocol) SerializeRequest(ctx context.Context, schema *smithy.OperationSchema, in smithy.Serializable, req *smithyhttp.Request) error {
	put, ok := in.(*kinesis.PutRecordsInput)
	if !ok || schema.ID().Name != "PutRecords" {
		return p.inner.SerializeRequest(ctx, schema, in, req)
	}
	req.Method = http.MethodPost
	if len(req.URL.Path) == 0 {
		req.URL.Path = "/"
	}
	req.Header.Set("X-Amz-Target", target+"PutRecords")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	// A new body per call: the HTTP transport may still read a request body after the call
	// returned (golang/go#51907), so it is never reused.
	sreq, err := req.SetStream(bytes.NewReader(AppendPutRecords(nil, put)))
	if err != nil {
		return err
	}
	*req = *sreq
	return nil
}

func (p *protocol) DeserializeResponse(ctx context.Context, schema *smithy.OperationSchema, reg *smithy.TypeRegistry, resp *smithyhttp.Response, out smithy.Deserializable) error {
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return p.inner.DeserializeResponse(ctx, schema, reg, resp, out)
	}
	var get bool
	switch out.(type) {
	case *kinesis.GetRecordsOutput:
		get = true
	case *kinesis.PutRecordsOutput:
	default:
		return p.inner.DeserializeResponse(ctx, schema, reg, resp, out)
	}
	// The body is read whole into a pooled buffer, kept only while it is decoded (everything
	// decoded is copied out of it).
	body, _ := bodyPool.Get().(*bytes.Buffer)
	if body == nil {
		body = new(bytes.Buffer)
	}
	body.Reset()
	defer bodyPool.Put(body)
	if n := resp.ContentLength; n > 0 && n < 64<<20 {
		body.Grow(int(n))
	}
	if _, err := body.ReadFrom(resp.Body); err != nil {
		return &smithy.DeserializationError{Err: err}
	}
	var err error
	if get {
		err = p.c.dec.GetRecords(body.Bytes(), &p.c.Get)
	} else {
		err = p.c.dec.PutRecords(body.Bytes(), &p.c.Put)
	}
	if err != nil {
		return &smithy.DeserializationError{Err: err}
	}
	return nil
}

func (p *protocol) HasInitialEventMessage() bool { return p.inner.HasInitialEventMessage() }

func (p *protocol) SerializeEventMessage(schema, variant *smithy.Schema, v smithy.Serializable, w io.Writer) error {
	return p.inner.SerializeEventMessage(schema, variant, v, w)
}

func (p *protocol) DeserializeEventMessage(schema *smithy.Schema, reg *smithy.TypeRegistry, r io.Reader) (smithy.Deserializable, error) {
	return p.inner.DeserializeEventMessage(schema, reg, r)
}

func (p *protocol) SerializeInitialRequest(schema *smithy.Schema, v smithy.Serializable, w io.Writer) error {
	return p.inner.SerializeInitialRequest(schema, v, w)
}

func (p *protocol) DeserializeInitialResponse(schema *smithy.Schema, r io.Reader, out smithy.Deserializable) error {
	return p.inner.DeserializeInitialResponse(schema, r, out)
}

// FromSDK fills out from the SDK's own GetRecords output, for calls the codec did not
// decode. Data slices are shared with in.
func FromSDK(in *kinesis.GetRecordsOutput, out *GetRecordsOutput) {
	out.reset()
	for i := range in.Records {
		r := &in.Records[i]
		w := Record{Data: r.Data, EncryptionType: r.EncryptionType}
		if r.PartitionKey != nil {
			w.PartitionKey = *r.PartitionKey
		}
		if r.SequenceNumber != nil {
			w.SequenceNumber = *r.SequenceNumber
		}
		if r.ApproximateArrivalTimestamp != nil {
			w.ApproximateArrivalTimestamp = *r.ApproximateArrivalTimestamp
		}
		out.Records = append(out.Records, w)
	}
	if in.NextShardIterator != nil {
		out.NextShardIterator = *in.NextShardIterator
	}
	if in.MillisBehindLatest != nil {
		out.MillisBehindLatest = *in.MillisBehindLatest
	}
	out.ChildShards = in.ChildShards
}

// PutFromSDK fills out from the SDK's own PutRecords output.
func PutFromSDK(in *kinesis.PutRecordsOutput, out *PutRecordsOutput) {
	clear(out.Records)
	*out = PutRecordsOutput{Records: out.Records[:0], EncryptionType: in.EncryptionType}
	if in.FailedRecordCount != nil {
		out.FailedRecordCount = *in.FailedRecordCount
	}
	for i := range in.Records {
		r := &in.Records[i]
		out.Records = append(out.Records, PutRecordsResultEntry{
			SequenceNumber: deref(r.SequenceNumber), ShardID: deref(r.ShardId),
			ErrorCode: deref(r.ErrorCode), ErrorMessage: deref(r.ErrorMessage),
		})
	}
}
