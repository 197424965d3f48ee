package wire

import (
	"encoding/base64"
	"slices"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// AppendPutRecords appends the JSON body of a PutRecords request to dst: what the SDK's
// codec writes for in, with record data base64-encoded straight into dst.
func AppendPutRecords(dst []byte, in *kinesis.PutRecordsInput) []byte {
	// One allocation for the usual body: member names and quotes take 52 bytes per entry;
	// keys that need escapes, and the stream's name, may still grow it.
	size := 64 + len(deref(in.StreamName)) + len(deref(in.StreamARN))
	for i := range in.Records {
		e := &in.Records[i]
		size += 52 + base64.StdEncoding.EncodedLen(len(e.Data)) + len(deref(e.PartitionKey)) + len(deref(e.ExplicitHashKey))
	}
	dst = slices.Grow(dst, size)
	dst = append(dst, `{"Records":[`...)
	for i := range in.Records {
		e := &in.Records[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"Data":`...)
		if e.Data == nil {
			dst = append(dst, "null"...)
		} else {
			dst = append(dst, '"')
			n := base64.StdEncoding.EncodedLen(len(e.Data))
			dst = slices.Grow(dst, n+1)[:len(dst)+n]
			base64.StdEncoding.Encode(dst[len(dst)-n:], e.Data)
			dst = append(dst, '"')
		}
		if e.ExplicitHashKey != nil {
			dst = append(dst, `,"ExplicitHashKey":`...)
			dst = appendString(dst, *e.ExplicitHashKey)
		}
		if e.PartitionKey != nil {
			dst = append(dst, `,"PartitionKey":`...)
			dst = appendString(dst, *e.PartitionKey)
		}
		dst = append(dst, '}')
	}
	dst = append(dst, ']')
	if in.StreamARN != nil {
		dst = append(dst, `,"StreamARN":`...)
		dst = appendString(dst, *in.StreamARN)
	}
	if in.StreamName != nil {
		dst = append(dst, `,"StreamName":`...)
		dst = appendString(dst, *in.StreamName)
	}
	return append(dst, '}')
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

const hexDigits = "0123456789abcdef"

// appendString appends v as a JSON string, escaped as the SDK escapes it: quotes, backslashes
// and control characters; U+2028 and U+2029; invalid UTF-8 as U+FFFD.
func appendString(dst []byte, v string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, v[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, v[start:i]...)
			dst = append(dst, "\ufffd"...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, v[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, v[start:]...)
	return append(dst, '"')
}

// PutRecordsOutput is a decoded PutRecords response. Records is reused from one response to
// the next; its strings stay valid (they share one arena per response).
type PutRecordsOutput struct {
	Records           []PutRecordsResultEntry
	FailedRecordCount int32
	EncryptionType    types.EncryptionType

	// Decoded is set when the codec decoded the response.
	Decoded bool
}

// PutRecordsResultEntry is one entry's outcome: a sequence number and shard, or an error.
type PutRecordsResultEntry struct {
	SequenceNumber string
	ShardID        string
	ErrorCode      string
	ErrorMessage   string
}

type putSpan struct {
	seq, seqLen     int
	shard, shardLen int
	msg, msgLen     int
}

// The error codes PutRecords reports per entry, kept without allocating.
const (
	codeThroughput = "ProvisionedThroughputExceededException"
	codeInternal   = "InternalFailure"
	codeKMS        = "KMSThrottlingException"
)

// PutRecords decodes a PutRecords response body into out, whose Records array is reused.
func (d *Decoder) PutRecords(body []byte, out *PutRecordsOutput) error {
	clear(out.Records)
	*out = PutRecordsOutput{Records: out.Records[:0], Decoded: true}
	d.takeScratch(len(body)) // its strings, unescaped, are at most the body's length
	defer d.releaseScratch()
	spans := d.putSpans[:0]
	defer func() { d.putSpans = spans[:0] }()
	if len(body) == 0 {
		return nil
	}
	s := &scanner{op: "PutRecords", b: body}
	err := object(s, func(k []byte) (err error) {
		switch string(k) {
		case "Records":
			out.Records = out.Records[:0]
			spans = spans[:0]
			err = array(s, func() error { return d.putEntry(s, out, &spans) })
		case "FailedRecordCount":
			var n int64
			n, err = s.int64Value()
			if err == nil && (n < -1<<31 || n > 1<<31-1) {
				err = s.fail("FailedRecordCount %d out of range", n)
			}
			out.FailedRecordCount = int32(n)
		case "EncryptionType":
			out.EncryptionType, err = encryptionType(s)
		default:
			err = s.skipValue(0)
		}
		return err
	})
	if err != nil {
		return err
	}
	if len(d.scratch) == 0 {
		return nil
	}
	arena := d.arena()
	for i := range out.Records {
		sp := &spans[i]
		e := &out.Records[i]
		e.SequenceNumber = arenaString(arena, sp.seq, sp.seqLen)
		e.ShardID = arenaString(arena, sp.shard, sp.shardLen)
		e.ErrorMessage = arenaString(arena, sp.msg, sp.msgLen)
	}
	return nil
}

// putEntry decodes one element of a PutRecords response's Records array.
func (d *Decoder) putEntry(s *scanner, out *PutRecordsOutput, spans *[]putSpan) error {
	var e PutRecordsResultEntry
	var sp putSpan
	err := object(s, func(k []byte) (err error) { // a null element is a zero entry, as the SDK reads it
		switch string(k) {
		case "SequenceNumber":
			sp.seq, sp.seqLen, err = d.stringInto(s)
		case "ShardId":
			sp.shard, sp.shardLen, err = d.stringInto(s)
		case "ErrorCode":
			e.ErrorCode, err = errorCode(s)
		case "ErrorMessage":
			sp.msg, sp.msgLen, err = d.stringInto(s)
		default:
			err = s.skipValue(0)
		}
		return err
	})
	if err != nil {
		return err
	}
	out.Records = append(out.Records, e)
	*spans = append(*spans, sp)
	return nil
}

// errorCode reads an entry's ErrorCode, without allocating for the codes Kinesis sends.
func errorCode(s *scanner) (string, error) {
	raw, unq, escaped, err := s.stringValue()
	switch {
	case err != nil:
		return "", err
	case escaped:
		return unq, nil
	case string(raw) == codeThroughput:
		return codeThroughput, nil
	case string(raw) == codeInternal:
		return codeInternal, nil
	case string(raw) == codeKMS:
		return codeKMS, nil
	}
	return string(raw), nil
}
