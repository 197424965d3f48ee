package aggregation

import (
	"crypto/md5"

	"google.golang.org/protobuf/encoding/protowire"
)

// Magic is the 4-byte prefix that marks Kinesis record data as a KPL aggregated record.
var Magic = [4]byte{0xF3, 0x89, 0x9A, 0xC2}

// DefaultMaxSize is the Kinesis per-record limit (data + partition key) and the encoded size a
// [Builder] is limited to when it is given no positive maximum.
//
// Kinesis counts the partition key of the aggregated record against the same limit, so a producer
// that sends an aggregate under a key of k bytes should build it with a maximum of at most
// limit−k (or limit−256 to cover every key).
const DefaultMaxSize = 1 << 20

// Fixed framing around the protobuf message: the magic prefix and the MD5 digest suffix.
const (
	magicLen    = len(Magic)
	digestLen   = md5.Size
	overheadLen = magicLen + digestLen
)

// Protobuf field numbers of the KPL messages (KPL messages.proto).
const (
	fieldPartitionKeyTable    protowire.Number = 1 // AggregatedRecord.partition_key_table
	fieldExplicitHashKeyTable protowire.Number = 2 // AggregatedRecord.explicit_hash_key_table
	fieldRecords              protowire.Number = 3 // AggregatedRecord.records

	fieldPartitionKeyIndex    protowire.Number = 1 // Record.partition_key_index
	fieldExplicitHashKeyIndex protowire.Number = 2 // Record.explicit_hash_key_index
	fieldData                 protowire.Number = 3 // Record.data
)

// Single-byte tags (field number << 3 | wire type): every field number above is below 16, so
// each tag encodes in one byte.
const (
	tagPartitionKeyTable    = byte(fieldPartitionKeyTable)<<3 | byte(protowire.BytesType)
	tagExplicitHashKeyTable = byte(fieldExplicitHashKeyTable)<<3 | byte(protowire.BytesType)
	tagRecords              = byte(fieldRecords)<<3 | byte(protowire.BytesType)
	tagPartitionKeyIndex    = byte(fieldPartitionKeyIndex)<<3 | byte(protowire.VarintType)
	tagExplicitHashKeyIndex = byte(fieldExplicitHashKeyIndex)<<3 | byte(protowire.VarintType)
	tagData                 = byte(fieldData)<<3 | byte(protowire.BytesType)
)

// Builder accumulates user records into one aggregated Kinesis record. Reusable via Reset; not
// safe for concurrent use. The zero value is ready to use with a maximum of [DefaultMaxSize].
//
// Ownership: Add copies the record data into the Builder's own buffer, so the caller may reuse or
// modify its data slice as soon as Add returns. Partition keys and explicit hash keys are Go
// strings, which are immutable; the Builder keeps references to them (for de-duplication) until
// Reset.
//
// The Builder holds every field already protobuf-encoded: AppendTo only concatenates the three
// sections and computes the MD5, and a reused Builder (after Reset) allocates nothing once its
// buffers and key maps have grown to their working size.
type Builder struct {
	maxSize int

	// Key tables, de-duplicated by value. The maps give each distinct key its index; the byte
	// slices hold the encoded table entries (tag, length, key) in index order.
	pkIndex   map[string]uint64
	ehkIndex  map[string]uint64
	pkTable   []byte
	ehkTable  []byte
	records   []byte // encoded AggregatedRecord.records entries, record data included
	nRecords  int
	protoSize int // len(pkTable) + len(ehkTable) + len(records)
}

// NewBuilder returns a Builder whose aggregates never exceed maxSize encoded bytes (magic, protobuf
// message and MD5 digest together). maxSize <= 0 means [DefaultMaxSize].
func NewBuilder(maxSize int) *Builder {
	return &Builder{maxSize: maxSize}
}

// MaxSize returns the upper bound on the encoded size of the aggregate.
func (b *Builder) MaxSize() int {
	if b.maxSize <= 0 {
		return DefaultMaxSize
	}
	return b.maxSize
}

// Len returns the number of user records added since the last Reset.
func (b *Builder) Len() int { return b.nRecords }

// Size returns the exact number of bytes AppendTo would append now: 0 when the Builder is empty.
func (b *Builder) Size() int {
	if b.nRecords == 0 {
		return 0
	}
	return overheadLen + b.protoSize
}

// SizeWith returns the exact encoded size the aggregate would have after adding a record with
// these fields, for the first record too (then it includes the magic and the digest). It accounts
// for key de-duplication and for the growth of every varint involved. dataLen must not be
// negative.
func (b *Builder) SizeWith(partitionKey, explicitHashKey string, dataLen int) int {
	var p addPlan
	b.plan(&p, partitionKey, explicitHashKey, dataLen)
	return overheadLen + b.protoSize + p.grow
}

// Add appends a user record to the aggregate; explicitHashKey "" means the record has none. It
// reports false and changes nothing when the aggregate would then exceed MaxSize: the caller then
// sends the current aggregate (AppendTo, Reset) and adds the record again, or sends a record that
// does not fit even alone without aggregation.
//
// Add does not validate keys: Kinesis rules (partition key of 1 to 256 Unicode characters,
// explicit hash key a decimal number below 2^128) are the producer's to enforce.
func (b *Builder) Add(partitionKey, explicitHashKey string, data []byte) bool {
	var p addPlan
	b.plan(&p, partitionKey, explicitHashKey, len(data))
	if overheadLen+b.protoSize+p.grow > b.MaxSize() {
		return false
	}
	if p.newPK {
		if b.pkIndex == nil {
			b.pkIndex = make(map[string]uint64)
		}
		b.pkIndex[partitionKey] = p.pkIdx
		b.pkTable = appendVarint(append(b.pkTable, tagPartitionKeyTable), uint64(len(partitionKey)))
		b.pkTable = append(b.pkTable, partitionKey...)
	}
	if p.newEHK {
		if b.ehkIndex == nil {
			b.ehkIndex = make(map[string]uint64)
		}
		b.ehkIndex[explicitHashKey] = p.ehkIdx
		b.ehkTable = appendVarint(append(b.ehkTable, tagExplicitHashKeyTable), uint64(len(explicitHashKey)))
		b.ehkTable = append(b.ehkTable, explicitHashKey...)
	}
	r := appendVarint(append(b.records, tagRecords), uint64(p.recLen))
	r = appendVarint(append(r, tagPartitionKeyIndex), p.pkIdx)
	if p.hasEHK {
		r = appendVarint(append(r, tagExplicitHashKeyIndex), p.ehkIdx)
	}
	r = appendVarint(append(r, tagData), uint64(len(data)))
	b.records = append(r, data...)
	b.protoSize += p.grow
	b.nRecords++
	return true
}

// appendVarint is protowire.AppendVarint with the one-byte case (tags, small indices, short
// lengths) inlined.
func appendVarint(b []byte, v uint64) []byte {
	if v < 0x80 {
		return append(b, byte(v))
	}
	return protowire.AppendVarint(b, v)
}

// AppendTo appends the encoded aggregated record (magic, protobuf message, MD5 digest of the
// message) to dst and returns the extended slice. It appends nothing when the Builder is empty. It
// does not Reset the Builder, and the bytes it appends never alias the Builder's buffers.
func (b *Builder) AppendTo(dst []byte) []byte {
	if b.nRecords == 0 {
		return dst
	}
	dst = append(dst, Magic[:]...)
	start := len(dst)
	// Canonical field order (tables first, then records), as protobuf encoders and the KPL write
	// it, so that even hand-written parsers that expect the tables first can read it.
	dst = append(dst, b.pkTable...)
	dst = append(dst, b.ehkTable...)
	dst = append(dst, b.records...)
	sum := md5.Sum(dst[start:])
	return append(dst, sum[:]...)
}

// Reset empties the Builder and keeps its buffers and key maps for reuse. The maximum size is
// kept.
func (b *Builder) Reset() {
	clear(b.pkIndex)
	clear(b.ehkIndex)
	b.pkTable = b.pkTable[:0]
	b.ehkTable = b.ehkTable[:0]
	b.records = b.records[:0]
	b.nRecords = 0
	b.protoSize = 0
}

// addPlan is what adding one record would do: the key indices it would use, whether the keys are
// new to the tables, and by how many bytes the protobuf message would grow.
type addPlan struct {
	pkIdx, ehkIdx uint64
	newPK, newEHK bool
	hasEHK        bool
	recLen        int // length of the encoded Record message
	grow          int // bytes added to protoSize
}

// plan computes into p the effect of adding a record without changing the Builder, so that Add
// can refuse a record that does not fit and leave every table untouched.
func (b *Builder) plan(p *addPlan, partitionKey, explicitHashKey string, dataLen int) {
	if dataLen < 0 {
		panic("aggregation: negative data length")
	}
	idx, ok := b.pkIndex[partitionKey]
	if !ok {
		idx = uint64(len(b.pkIndex))
		p.newPK = true
		p.grow += 1 + protowire.SizeBytes(len(partitionKey))
	}
	p.pkIdx = idx
	p.recLen = 1 + protowire.SizeVarint(idx) + 1 + protowire.SizeBytes(dataLen)
	if explicitHashKey != "" {
		p.hasEHK = true
		idx, ok := b.ehkIndex[explicitHashKey]
		if !ok {
			idx = uint64(len(b.ehkIndex))
			p.newEHK = true
			p.grow += 1 + protowire.SizeBytes(len(explicitHashKey))
		}
		p.ehkIdx = idx
		p.recLen += 1 + protowire.SizeVarint(idx)
	}
	p.grow += 1 + protowire.SizeBytes(p.recLen)
}
