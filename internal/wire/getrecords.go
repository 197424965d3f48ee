package wire

import (
	"bytes"
	"encoding/base64"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Record is one Kinesis record of a GetRecords response. Data, PartitionKey and
// SequenceNumber point into the response's arena, which is never reused: they may be kept.
// Data's capacity ends where its bytes do, so appending to it never overwrites a neighbour.
type Record struct {
	Data           []byte
	PartitionKey   string
	SequenceNumber string
	// ApproximateArrivalTimestamp is zero when the response had none.
	ApproximateArrivalTimestamp time.Time
	EncryptionType              types.EncryptionType
}

// GetRecordsOutput is a decoded GetRecords response. The SDK's pointers become values: an
// absent NextShardIterator is "" (the shard is closed), an absent MillisBehindLatest is 0.
type GetRecordsOutput struct {
	Records            []Record
	NextShardIterator  string
	MillisBehindLatest int64
	ChildShards        []types.ChildShard

	// Decoded is set when the codec decoded the response (it stays false when a client that
	// is not the SDK's ignored the codec's option and answered with the SDK's own output).
	Decoded bool
}

// reset empties o for the next response, keeping the Records array.
func (o *GetRecordsOutput) reset() {
	clear(o.Records) // drop the last response's arena
	*o = GetRecordsOutput{Records: o.Records[:0]}
}

// span is where a record's decoded fields lie in the scratch buffer, until the arena exists.
type span struct {
	data, dataLen int // dataLen -1: no Data member (or null)
	key, keyLen   int
	seq, seqLen   int
}

// Decoder decodes GetRecords and PutRecords responses; use one per goroutine. Its scratch
// space comes from a pool shared by every decoder for the length of one response only, so a
// reader that is idle, or whose shard answers little, keeps no response-sized buffer (a
// 10 MiB response needs about 10 MiB of it).
type Decoder struct {
	scratch    []byte
	scratchBox *[]byte // scratch's pool entry while a response is decoded
	spans      []span
	putSpans   []putSpan

	lastArrivalText []byte
	lastArrival     time.Time
}

var emptyData = []byte{}

// GetRecords decodes a GetRecords response body into out, whose Records array is reused.
// Every byte the records keep is copied into one new arena; body may be reused afterwards.
func (d *Decoder) GetRecords(body []byte, out *GetRecordsOutput) error {
	out.reset()
	out.Decoded = true
	d.takeScratch(len(body) * 3 / 4) // decoded data is at most 3/4 of its base64
	defer d.releaseScratch()
	d.spans = d.spans[:0]
	s := &scanner{op: "GetRecords", b: body}
	if len(body) == 0 {
		return nil // as the SDK: an empty body is an empty output
	}
	iter, iterLen := 0, 0 // the iterator's span in scratch
	err := object(s, func(k []byte) (err error) {
		switch string(k) {
		case "Records":
			out.Records = out.Records[:0]
			d.spans = d.spans[:0]
			err = array(s, func() error { return d.record(s, out) })
		case "NextShardIterator":
			iter, iterLen, err = d.stringInto(s)
		case "MillisBehindLatest":
			out.MillisBehindLatest, err = s.int64Value()
		case "ChildShards":
			out.ChildShards, err = childShards(s)
		default:
			err = s.skipValue(0)
		}
		return err
	})
	if err != nil {
		return err
	}

	if len(d.scratch) == 0 {
		for i := range out.Records {
			if d.spans[i].dataLen == 0 {
				out.Records[i].Data = emptyData
			}
		}
		return nil
	}
	arena := d.arena()
	for i := range out.Records {
		sp := &d.spans[i]
		r := &out.Records[i]
		switch {
		case sp.dataLen > 0:
			r.Data = arena[sp.data : sp.data+sp.dataLen : sp.data+sp.dataLen]
		case sp.dataLen == 0:
			r.Data = emptyData
		}
		r.PartitionKey = arenaString(arena, sp.key, sp.keyLen)
		r.SequenceNumber = arenaString(arena, sp.seq, sp.seqLen)
	}
	out.NextShardIterator = arenaString(arena, iter, iterLen)
	return nil
}

// scratchPool holds scratch buffers between responses (of *[]byte, so Put allocates nothing).
// A Get finds it empty after garbage collections and, under the race detector, after the
// quarter of Puts it drops on purpose.
var scratchPool sync.Pool

// scratchAllocs counts the allocations takeScratch made because the pool had no buffer, or
// none large enough: the tests of the decoder's own allocations leave these out.
var scratchAllocs atomic.Int64

// takeScratch gives d an empty scratch buffer of at least hint bytes' capacity.
func (d *Decoder) takeScratch(hint int) {
	box, _ := scratchPool.Get().(*[]byte)
	if box == nil {
		box = new([]byte)
		scratchAllocs.Add(1)
	}
	d.scratchBox, d.scratch = box, (*box)[:0]
	if cap(d.scratch) < hint {
		d.scratch = make([]byte, 0, hint)
		scratchAllocs.Add(1)
	}
}

// releaseScratch returns d's scratch buffer to the pool; nothing decoded points into it (the
// arena is a copy).
func (d *Decoder) releaseScratch() {
	*d.scratchBox = d.scratch[:0]
	scratchPool.Put(d.scratchBox)
	d.scratch, d.scratchBox = nil, nil
}

// arena copies what the response decoded into scratch into one new allocation, which the
// decoded values then share and nothing ever reuses.
func (d *Decoder) arena() []byte {
	arena := make([]byte, len(d.scratch))
	copy(arena, d.scratch)
	return arena
}

// arenaString is the string of n bytes at off in arena, without a copy: the arena is never
// written after it was filled.
func arenaString(arena []byte, off, n int) string {
	if n <= 0 {
		return ""
	}
	return unsafe.String(&arena[off], n)
}

// record decodes one element of the Records array.
func (d *Decoder) record(s *scanner, out *GetRecordsOutput) error {
	var r Record
	sp := span{dataLen: -1}
	if s.null() { // a zero record, as the SDK reads a null element
		out.Records = append(out.Records, r)
		d.spans = append(d.spans, sp)
		return nil
	}
	if err := s.expect('{'); err != nil {
		return err
	}
	err := members(s, func(k []byte) (err error) {
		switch string(k) {
		case "Data":
			sp.data, sp.dataLen, err = d.blobInto(s)
		case "PartitionKey":
			sp.key, sp.keyLen, err = d.stringInto(s)
		case "SequenceNumber":
			sp.seq, sp.seqLen, err = d.stringInto(s)
		case "ApproximateArrivalTimestamp":
			if !s.null() {
				r.ApproximateArrivalTimestamp, err = d.arrival(s)
			}
		case "EncryptionType":
			r.EncryptionType, err = encryptionType(s)
		default:
			err = s.skipValue(0)
		}
		return err
	})
	if err != nil {
		return err
	}
	out.Records = append(out.Records, r)
	d.spans = append(d.spans, sp)
	return nil
}

// arrival reads an ApproximateArrivalTimestamp. Records of one response often share one
// (Kinesis stamps them to the millisecond, and those of one PutRecords call alike), so the
// last one read is kept with its text and reused when the same text comes again.
func (d *Decoder) arrival(s *scanner) (time.Time, error) {
	tok, err := s.number()
	if err != nil {
		return time.Time{}, err
	}
	if len(d.lastArrivalText) > 0 && string(tok) == string(d.lastArrivalText) {
		return d.lastArrival, nil
	}
	ms, err := s.epochMillis(tok)
	if err != nil {
		return time.Time{}, err
	}
	d.lastArrivalText = append(d.lastArrivalText[:0], tok...)
	d.lastArrival = time.Unix(0, ms*1e6).UTC()
	return d.lastArrival, nil
}

// stringInto reads a string member into scratch and returns where it lies (n 0 for "" or
// null).
func (d *Decoder) stringInto(s *scanner) (off, n int, err error) {
	raw, unq, escaped, err := s.stringValue()
	if err != nil {
		return 0, 0, err
	}
	off = len(d.scratch)
	if escaped {
		d.scratch = append(d.scratch, unq...)
		return off, len(unq), nil
	}
	d.scratch = append(d.scratch, raw...)
	return off, len(raw), nil
}

// blobInto reads a base64 member, decoding it into scratch (n -1 for null).
func (d *Decoder) blobInto(s *scanner) (off, n int, err error) {
	if s.peek() == '"' {
		// Base64 needs no escapes, so the string ends at the next quote: decode it in one
		// pass. Anything else (an escape such as "\/", or an escaped quote that ended the
		// span early) fails to decode and takes the general path below.
		if end := bytes.IndexByte(s.b[s.i+1:], '"'); end >= 0 {
			raw := s.b[s.i+1 : s.i+1+end]
			off = len(d.scratch)
			max := base64.StdEncoding.DecodedLen(len(raw))
			d.scratch = grow(d.scratch, max)
			if n, err := base64.StdEncoding.Decode(d.scratch[off:off+max], raw); err == nil {
				d.scratch = d.scratch[:off+n]
				s.i += end + 2
				return off, n, nil
			}
			d.scratch = d.scratch[:off]
		}
	}
	raw, unq, escaped, err := s.stringValue()
	if err != nil {
		return 0, 0, err
	}
	if raw == nil && !escaped {
		return 0, -1, nil
	}
	if escaped {
		raw = []byte(unq)
	}
	off = len(d.scratch)
	max := base64.StdEncoding.DecodedLen(len(raw))
	d.scratch = grow(d.scratch, max)
	n, err = base64.StdEncoding.Decode(d.scratch[off:off+max], raw)
	if err != nil {
		d.scratch = d.scratch[:off]
		return 0, 0, s.fail("decode base64 blob: %v", err)
	}
	d.scratch = d.scratch[:off+n]
	return off, n, nil
}

// grow extends b's length by n, reallocating at most once per doubling.
func grow(b []byte, n int) []byte {
	if len(b)+n <= cap(b) {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, 2*cap(b)+n)
	copy(nb, b)
	return nb
}

// encryptionType reads an EncryptionType member without allocating for the known values.
func encryptionType(s *scanner) (types.EncryptionType, error) {
	raw, unq, escaped, err := s.stringValue()
	switch {
	case err != nil:
		return "", err
	case escaped:
		return types.EncryptionType(unq), nil
	case string(raw) == string(types.EncryptionTypeKms):
		return types.EncryptionTypeKms, nil
	case string(raw) == string(types.EncryptionTypeNone):
		return types.EncryptionTypeNone, nil
	}
	return types.EncryptionType(raw), nil
}

// childShards decodes the ChildShards member (only the last response of a closed shard has
// one, so its strings are allocated).
func childShards(s *scanner) ([]types.ChildShard, error) {
	if s.null() {
		return nil, nil
	}
	out := []types.ChildShard{}
	err := array(s, func() error {
		var c types.ChildShard
		err := object(s, func(k []byte) (err error) {
			switch string(k) {
			case "ShardId":
				c.ShardId, err = stringPtr(s)
			case "ParentShards":
				c.ParentShards, err = stringList(s)
			case "HashKeyRange":
				if s.null() {
					return nil
				}
				r := &types.HashKeyRange{}
				c.HashKeyRange = r
				err = object(s, func(k []byte) (err error) {
					switch string(k) {
					case "StartingHashKey":
						r.StartingHashKey, err = stringPtr(s)
					case "EndingHashKey":
						r.EndingHashKey, err = stringPtr(s)
					default:
						err = s.skipValue(0)
					}
					return err
				})
			default:
				err = s.skipValue(0)
			}
			return err
		})
		out = append(out, c) // a null element is a zero ChildShard, as the SDK reads it
		return err
	})
	return out, err
}

// object reads an object (null reads as an empty one), calling member for each member with
// the scanner just past the member's colon; member must read the value.
func object(s *scanner, member func(key []byte) error) error {
	ok, err := s.open('{')
	if !ok {
		return err
	}
	return members(s, member)
}

// members reads the members of an object whose '{' was read.
func members(s *scanner, member func(key []byte) error) error {
	for first := true; ; {
		more, err := s.more(&first, '}')
		if err != nil || !more {
			return err
		}
		k, err := s.key()
		if err != nil {
			return err
		}
		if err := member(k); err != nil {
			return err
		}
	}
}

// array reads an array (null reads as an empty one), calling elem with the scanner before
// each element; elem must read it.
func array(s *scanner, elem func() error) error {
	ok, err := s.open('[')
	if !ok {
		return err
	}
	return elements(s, elem)
}

// elements reads the elements of an array whose '[' was read.
func elements(s *scanner, elem func() error) error {
	for first := true; ; {
		more, err := s.more(&first, ']')
		if err != nil || !more {
			return err
		}
		if err := elem(); err != nil {
			return err
		}
	}
}

// stringPtr reads a string member into a new string (nil for null).
func stringPtr(s *scanner) (*string, error) {
	if s.null() {
		return nil, nil
	}
	raw, unq, escaped, err := s.stringValue()
	if err != nil {
		return nil, err
	}
	if !escaped {
		unq = string(raw)
	}
	return &unq, nil
}

// stringList reads an array of strings (a null element reads as "", as the SDK reads it).
func stringList(s *scanner) ([]string, error) {
	if s.null() {
		return nil, nil
	}
	out := []string{}
	err := array(s, func() error {
		p, err := stringPtr(s)
		if p != nil {
			out = append(out, *p)
		} else if err == nil {
			out = append(out, "")
		}
		return err
	})
	return out, err
}
