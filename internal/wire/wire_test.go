package wire

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// TestGetRecordsMatchesSDK: for generated responses (members in any order, whitespace,
// unknown members, escapes, ChildShards, absent members), the codec decodes exactly what the
// SDK's codec decodes through the same client.
func TestGetRecordsMatchesSDK(t *testing.T) {
	for seed := range uint64(400) {
		g := newGen(seed)
		body := g.getRecords(g.r.IntN(40), 4096)
		sdk, sdkErr, ours, err := sdkGet(t, 200, body)
		if sdkErr != nil {
			t.Fatalf("seed %d: the SDK refused a generated body: %v\n%s", seed, sdkErr, body)
		}
		if err != nil {
			t.Fatalf("seed %d: %v\n%s", seed, err, body)
		}
		if d := equalGet(sdk, &ours.Get); d != "" {
			t.Fatalf("seed %d: %s\n%s", seed, d, body)
		}
	}
}

// TestGetRecordsSizes covers the sizes Kinesis answers with: no records, 10,000 records (the
// GetRecords limit) and a 10 MiB record (the largest Kinesis stores).
func TestGetRecordsSizes(t *testing.T) {
	big := make([]byte, 10<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	bodies := map[string][]byte{
		"empty":      []byte(`{"Records":[],"NextShardIterator":"it","MillisBehindLatest":0}`),
		"closed":     []byte(`{"Records":[],"MillisBehindLatest":0,"ChildShards":[]}`),
		"empty body": {},
		"10 MiB":     fmt.Appendf(nil, `{"Records":[{"SequenceNumber":"1","ApproximateArrivalTimestamp":1.7e9,"Data":"%s","PartitionKey":"k"}],"NextShardIterator":"it"}`, base64.StdEncoding.EncodeToString(big)),
	}
	var many bytes.Buffer
	many.WriteString(`{"Records":[`)
	for i := range 10000 {
		if i > 0 {
			many.WriteByte(',')
		}
		fmt.Fprintf(&many, `{"SequenceNumber":"%056d","ApproximateArrivalTimestamp":1733155200.%03d,"Data":"%s","PartitionKey":"user-%d"}`,
			i, i%1000, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{byte(i)}, 100)), i%1000)
	}
	many.WriteString(`],"NextShardIterator":"it","MillisBehindLatest":12}`)
	bodies["10,000 records"] = many.Bytes()

	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			sdk, sdkErr, ours, err := sdkGet(t, 200, body)
			if sdkErr != nil || err != nil {
				t.Fatalf("SDK: %v, codec: %v", sdkErr, err)
			}
			if d := equalGet(sdk, &ours.Get); d != "" {
				t.Fatal(d)
			}
		})
	}
}

// TestPutRecordsRequestMatchesSDK: the codec's request carries what the SDK's does (headers,
// URL, the body as JSON values), including keys that need escapes or are not UTF-8.
func TestPutRecordsRequestMatchesSDK(t *testing.T) {
	for seed := range uint64(200) {
		g := newGen(seed)
		in := g.putInput(1+g.r.IntN(50), 2048)
		resp := g.putResponse(len(in.Records))
		p := sdkPut(t, 200, resp, in)
		if p.sdkErr != nil || p.err != nil {
			t.Fatalf("seed %d: SDK: %v, codec: %v\n%s", seed, p.sdkErr, p.err, resp)
		}
		if d := sameRequest(p.sdkReq, p.codecReq); d != "" {
			t.Fatalf("seed %d: request: %s", seed, d)
		}
		if d := equalPut(p.sdk, &p.codec.Put); d != "" {
			t.Fatalf("seed %d: response: %s\n%s", seed, d, resp)
		}
	}
}

// TestPutRecordsLargeRequest: 500 entries of 10 KiB (a 5 MiB request), one 1 MiB entry,
// 100 aggregate-sized entries that each carry an explicit hash key, as the producer's
// aggregates do (the body's first size estimate fell short for those and the encoder
// panicked on a 7 MB request in bench/compare), and keys that need escapes.
func TestPutRecordsLargeRequest(t *testing.T) {
	for _, c := range []struct {
		n, size int
		ehk     bool
		esc     bool
	}{{500, 10 << 10, false, false}, {1, 1 << 20, false, false}, {100, 50 << 10, true, false}, {500, 100, true, true}} {
		in := &kinesis.PutRecordsInput{StreamName: aws.String("s")}
		for i := range c.n {
			e := types.PutRecordsRequestEntry{Data: bytes.Repeat([]byte{byte(i)}, c.size), PartitionKey: aws.String(fmt.Sprint(i))}
			if c.ehk {
				e.ExplicitHashKey = aws.String("170141183460469231731687303715884105727")
			}
			if c.esc {
				e.PartitionKey = aws.String(fmt.Sprintf("\x01\x02\"%d\"\n", i))
			}
			in.Records = append(in.Records, e)
		}
		g := newGen(1)
		p := sdkPut(t, 200, g.putResponse(c.n), in)
		if p.sdkErr != nil || p.err != nil {
			t.Fatalf("SDK: %v, codec: %v", p.sdkErr, p.err)
		}
		if d := sameRequest(p.sdkReq, p.codecReq); d != "" {
			t.Fatal(d)
		}
	}
}

// TestErrorsMatchSDK: every modeled exception of GetRecords and PutRecords reaches the caller
// as the same typed error, with the same message, whether the codec is on or not.
func TestErrorsMatchSDK(t *testing.T) {
	cases := []struct {
		status int
		code   string
		target any
	}{
		{400, "ExpiredIteratorException", new(*types.ExpiredIteratorException)},
		{400, "ProvisionedThroughputExceededException", new(*types.ProvisionedThroughputExceededException)},
		{400, "ResourceNotFoundException", new(*types.ResourceNotFoundException)},
		{400, "InvalidArgumentException", new(*types.InvalidArgumentException)},
		{400, "AccessDeniedException", new(*types.AccessDeniedException)},
		{400, "KMSAccessDeniedException", new(*types.KMSAccessDeniedException)},
		{400, "KMSDisabledException", new(*types.KMSDisabledException)},
		{400, "KMSInvalidStateException", new(*types.KMSInvalidStateException)},
		{400, "KMSNotFoundException", new(*types.KMSNotFoundException)},
		{400, "KMSOptInRequired", new(*types.KMSOptInRequired)},
		{400, "KMSThrottlingException", new(*types.KMSThrottlingException)},
		{400, "LimitExceededException", new(*types.LimitExceededException)},
		{400, "ValidationException", new(*types.ValidationException)},
		{500, "InternalFailureException", new(*types.InternalFailureException)},
		{503, "ServiceUnavailable", new(smithy.APIError)},
	}
	for _, c := range cases {
		t.Run(c.code, func(t *testing.T) {
			body := fmt.Appendf(nil, `{"__type":"%s","message":"the %s message"}`, c.code, c.code)
			_, sdkErr, _, err := sdkGet(t, c.status, body)
			check := func(op string, sdkErr, err error) {
				if sdkErr == nil || err == nil {
					t.Fatalf("%s: SDK error %v, codec error %v", op, sdkErr, err)
				}
				if !errors.As(err, c.target) {
					t.Fatalf("%s: errors.As(%T) fails with the codec on: %v", op, c.target, err)
				}
				if sdkErr.Error() != err.Error() {
					t.Fatalf("%s: codec error %q, SDK %q", op, err, sdkErr)
				}
				var sdkAPI, api smithy.APIError
				if !errors.As(sdkErr, &sdkAPI) || !errors.As(err, &api) || sdkAPI.ErrorCode() != api.ErrorCode() {
					t.Fatalf("%s: error codes differ: %v / %v", op, err, sdkErr)
				}
			}
			check("GetRecords", sdkErr, err)
			g := newGen(1)
			p := sdkPut(t, c.status, body, g.putInput(2, 10))
			check("PutRecords", p.sdkErr, p.err)
		})
	}
}

// TestMalformedBodies: every truncation of a valid body, and bodies of the wrong shape, give
// a *smithy.DeserializationError wrapping a *SyntaxError that says where, never a panic.
func TestMalformedBodies(t *testing.T) {
	g := newGen(3)
	body := g.getRecords(3, 40)
	body = bytes.TrimRight(body, " \t\r\n")
	var d Decoder
	var out GetRecordsOutput
	for n := 1; n < len(body); n++ {
		err := d.GetRecords(body[:n], &out)
		var se *SyntaxError
		if !errors.As(err, &se) || se.Offset > n || se.Op != "GetRecords" {
			t.Fatalf("truncated at %d of %d: %v", n, len(body), err)
		}
	}
	wrong := []string{
		`[]`, `{"Records":{}}`, `{"Records":[1]}`, `{"Records":[{"Data":5}]}`,
		`{"Records":[{"Data":"!!!"}]}`, `{"MillisBehindLatest":"5"}`, `{"MillisBehindLatest":1.5}`,
		`{"Records":[{"ApproximateArrivalTimestamp":"x"}]}`, `{"NextShardIterator":7}`,
		`{"x":tru}`, `{"x":01}`, `{"x" 1}`, `{"Records":[{"SequenceNumber":"1"}`,
		`{"x":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}`,
	}
	for _, b := range wrong {
		_, sdkErr, _, err := sdkGet(t, 200, []byte(b))
		var de *smithy.DeserializationError
		var se *SyntaxError
		if !errors.As(err, &de) || !errors.As(err, &se) {
			t.Errorf("%s: %v (SDK: %v)", b, err, sdkErr)
		}
	}
	var po PutRecordsOutput
	for _, b := range []string{`{"Records":[{"ShardId":1}]}`, `{"FailedRecordCount":99999999999}`, `{"Records":[`} {
		var se *SyntaxError
		if err := d.PutRecords([]byte(b), &po); !errors.As(err, &se) || se.Op != "PutRecords" {
			t.Errorf("%s: %v", b, err)
		}
	}
}

// TestDecodedRecordsOwnTheirMemory: records of one response stay intact after the decoder
// read the next one, and appending to one record's data never reaches another's.
func TestDecodedRecordsOwnTheirMemory(t *testing.T) {
	var d Decoder
	var out GetRecordsOutput
	body := func(tag string) []byte {
		return fmt.Appendf(nil, `{"Records":[{"SequenceNumber":"%s-1","Data":"%s","PartitionKey":"%s-k"},{"SequenceNumber":"%s-2","Data":"%s","PartitionKey":"k"}],"NextShardIterator":"%s"}`,
			tag, base64.StdEncoding.EncodeToString([]byte(tag+"-one")), tag, tag, base64.StdEncoding.EncodeToString([]byte(tag+"-two")), tag)
	}
	if err := d.GetRecords(body("a"), &out); err != nil {
		t.Fatal(err)
	}
	kept := append([]Record(nil), out.Records...)
	kept[0].Data = append(kept[0].Data, "XXXX"...)
	if err := d.GetRecords(body("b"), &out); err != nil {
		t.Fatal(err)
	}
	if string(kept[1].Data) != "a-two" || kept[0].PartitionKey != "a-k" || kept[1].SequenceNumber != "a-2" || string(kept[0].Data) != "a-oneXXXX" {
		t.Fatalf("kept records changed: %q %q %q %q", kept[0].Data, kept[1].Data, kept[0].PartitionKey, kept[1].SequenceNumber)
	}
	if string(out.Records[0].Data) != "b-one" || out.NextShardIterator != "b" {
		t.Fatalf("second response: %q %q", out.Records[0].Data, out.NextShardIterator)
	}
}

// TestDecodeAllocations: one allocation per GetRecords response, the arena, whatever the
// number of records; none for a PutRecords response beyond its strings' arena. Both hold
// when the scratch pool is empty too: the buffer then allocated never has to grow.
func TestDecodeAllocations(t *testing.T) {
	var many bytes.Buffer
	many.WriteString(`{"Records":[`)
	for i := range 1000 {
		if i > 0 {
			many.WriteByte(',')
		}
		fmt.Fprintf(&many, `{"SequenceNumber":"%056d","ApproximateArrivalTimestamp":1.733155200123E9,"Data":"%s","PartitionKey":"user-%d","EncryptionType":"KMS"}`,
			i, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 100)), i)
	}
	many.WriteString(`],"NextShardIterator":"it","MillisBehindLatest":12}`)
	var d Decoder
	var out GetRecordsOutput
	body := many.Bytes()
	if n := decoderAllocs(func() { _ = d.GetRecords(body, &out) }); n > 1 {
		t.Fatalf("%.2f allocations per GetRecords response of 1,000 records, want at most 1", n)
	}
	if n := decoderAllocs(func() { emptyScratchPool(); _ = d.GetRecords(body, &out) }); n > 1 {
		t.Fatalf("%.2f allocations per GetRecords response of 1,000 records with an empty pool beyond the scratch buffer, want at most 1: the buffer grew", n)
	}
	var put []byte
	put = append(put, `{"FailedRecordCount":100,"Records":[`...)
	for i := range 500 {
		if i > 0 {
			put = append(put, ',')
		}
		if i%5 == 0 {
			put = fmt.Appendf(put, `{"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded for shard shardId-%012d in stream s under account 000000000000."}`, i%4)
			continue
		}
		put = fmt.Appendf(put, `{"SequenceNumber":"%056d","ShardId":"shardId-%012d"}`, i, i%4)
	}
	put = append(put, `]}`...)
	var po PutRecordsOutput
	if n := decoderAllocs(func() { _ = d.PutRecords(put, &po) }); n > 1 {
		t.Fatalf("%.2f allocations per PutRecords response of 500 entries, want at most 1", n)
	}
	if n := decoderAllocs(func() { emptyScratchPool(); _ = d.PutRecords(put, &po) }); n > 1 {
		t.Fatalf("%.2f allocations per PutRecords response of 500 entries with an empty pool beyond the scratch buffer, want at most 1: the buffer grew", n)
	}
}

// emptyScratchPool makes the next decoding start without a pooled buffer, as after a garbage
// collection: the scratch buffer it then allocates must be large enough for the response.
func emptyScratchPool() {
	for scratchPool.Get() != nil {
	}
}

// decoderAllocs is the mean number of allocations per call of decode beyond those of the
// shared scratch pool, which loses its buffers at every garbage collection and, under the
// race detector, at a random quarter of its Puts (TestDecoderKeepsNoBuffers covers the pool).
func decoderAllocs(decode func()) float64 {
	const runs = 50
	// The runtime allocates during collections, and a pool allocates its per-P array again
	// after one or after a change of GOMAXPROCS: none of that happens while measuring.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	decode() // warm up: the decoder's own arrays and the pool's first buffer
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	pooled := scratchAllocs.Load()
	for range runs {
		decode()
	}
	pooled = scratchAllocs.Load() - pooled
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs-uint64(pooled)) / runs
}

// TestDecoderKeepsNoBuffers: between responses a decoder holds no response-sized buffer, so
// a consumer with many readers does not keep one (up to ~10 MiB) per shard it holds.
func TestDecoderKeepsNoBuffers(t *testing.T) {
	var d Decoder
	var out GetRecordsOutput
	if err := d.GetRecords(getBody(1000, 1024), &out); err != nil {
		t.Fatal(err)
	}
	if cap(d.scratch) != 0 {
		t.Fatalf("the decoder keeps %d bytes of scratch after the response", cap(d.scratch))
	}
	var po PutRecordsOutput
	if err := d.PutRecords(putBody(500), &po); err != nil {
		t.Fatal(err)
	}
	if cap(d.scratch) != 0 {
		t.Fatalf("the decoder keeps %d bytes of scratch after a PutRecords response", cap(d.scratch))
	}
}
