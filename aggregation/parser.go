package aggregation

import (
	"crypto/md5"
	"errors"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// Format is what [Parser.Parse] found in a Kinesis record's data.
type Format int

const (
	// Plain data is not an aggregate: it lacks the magic prefix, is too short to hold the magic
	// and a digest, or its digest does not match (the KCL passes such records through as well).
	// It is exposed as one record holding the whole data.
	Plain Format = iota
	// Aggregated data carries the magic, a matching MD5 digest and a well-formed AggregatedRecord;
	// its user records are exposed one by one.
	Aggregated
	// Malformed data carries the magic and a matching MD5 digest, but its protobuf message does not
	// parse, lacks a required field, or refers to a key table entry that does not exist. It is
	// exposed as one record holding the whole data, so the caller can pass it through or stop;
	// [Parser.Err] says what is wrong.
	Malformed
)

// String returns "Plain", "Aggregated" or "Malformed".
func (f Format) String() string {
	switch f {
	case Plain:
		return "Plain"
	case Aggregated:
		return "Aggregated"
	case Malformed:
		return "Malformed"
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// ErrMalformed is the error [Parser.Err] wraps when the last parsed data was [Malformed].
var ErrMalformed = errors.New("aggregation: malformed aggregated record")

// Record is one record found by [Parser.Parse]. Its slices alias the data given to Parse: they
// stay valid as long as that data is not modified, and the caller copies what it keeps beyond.
type Record struct {
	// PartitionKey is the user record's partition key; nil for a plain record, whose key is the
	// Kinesis record's own.
	PartitionKey []byte
	// ExplicitHashKey is the user record's explicit hash key, nil when it has none.
	ExplicitHashKey []byte
	// Data is the user record's data (the whole Kinesis record data for a plain record).
	Data []byte
	// SubSequence is the record's index within the aggregate, 0 for a plain record. With the
	// Kinesis record's sequence number it forms the record's position (the KCL's sub-sequence
	// number).
	SubSequence int
}

// Parser deaggregates Kinesis record data. Reusable; not safe for concurrent use. The zero value
// is ready to use (and, before any Parse, reports one empty plain record). A reused Parser
// allocates nothing once its tables have grown to the largest aggregate seen.
type Parser struct {
	data   []byte
	format Format
	pks    [][]byte // partition_key_table, sub-slices of data
	ehks   [][]byte // explicit_hash_key_table, sub-slices of data
	recs   []rawRecord

	// Why the last data was Malformed, turned into an error only when Err is called so that
	// Parse never allocates.
	reason string
	where  string // "byte" or "record"
	pos    int
}

// rawRecord is a user record as encoded: indices are resolved against the key tables only after
// the whole message is read, because protobuf lets the tables come after the records.
type rawRecord struct {
	data   []byte
	pk     uint64
	ehk    uint64
	hasEHK bool
}

// IsAggregated reports whether data carries the magic prefix and an MD5 digest that matches the
// message between them: the test the KCL applies. It does not parse the message, so data that
// [Parser.Parse] reports as [Malformed] is aggregated too.
func IsAggregated(data []byte) bool {
	return hasMagic(data) && digestMatches(data)
}

func hasMagic(data []byte) bool {
	return len(data) >= overheadLen && [magicLen]byte(data) == Magic
}

// digestMatches checks the trailing MD5 of data, which must have passed hasMagic.
func digestMatches(data []byte) bool {
	end := len(data) - digestLen
	return md5.Sum(data[magicLen:end]) == [digestLen]byte(data[end:])
}

// Parse parses data and reports its [Format]. Afterwards Len and Record expose the records found:
// the user records of an aggregate, or one record holding the whole data otherwise. An aggregate
// may legitimately hold zero user records (the KCL then delivers nothing for it); Len is 0 then.
//
// Parse keeps sub-slices of data, not a copy; they stay valid until data is modified. It costs
// one MD5 over the data when the data starts with the magic prefix.
func (p *Parser) Parse(data []byte) Format {
	p.dropTables()
	p.data = data
	p.reason = ""
	p.format = Plain
	if !hasMagic(data) || !digestMatches(data) {
		return Plain
	}
	if !p.parseMessage(data[magicLen : len(data)-digestLen]) {
		p.dropTables()
		p.format = Malformed
		return Malformed
	}
	p.format = Aggregated
	return Aggregated
}

// dropTables empties the tables, keeping their capacity, and drops their references into earlier
// inputs so that a reused Parser does not keep old data alive.
func (p *Parser) dropTables() {
	clear(p.recs)
	clear(p.pks)
	clear(p.ehks)
	p.recs, p.pks, p.ehks = p.recs[:0], p.pks[:0], p.ehks[:0]
}

// Format returns what the last Parse reported ([Plain] before any).
func (p *Parser) Format() Format { return p.format }

// Err returns nil unless the last Parse reported [Malformed]; then it returns an error that wraps
// [ErrMalformed] and says what is wrong and where.
func (p *Parser) Err() error {
	if p.format != Malformed {
		return nil
	}
	return fmt.Errorf("%w: %s (%s %d)", ErrMalformed, p.reason, p.where, p.pos)
}

// Len returns the number of records the last Parse found: the number of user records for
// [Aggregated] data, 1 otherwise.
func (p *Parser) Len() int {
	if p.format == Aggregated {
		return len(p.recs)
	}
	return 1
}

// Record returns record i, 0 <= i < Len(); it panics if i is out of range.
func (p *Parser) Record(i int) Record {
	if p.format != Aggregated {
		if i != 0 {
			panic("aggregation: Parser.Record index " + strconv.Itoa(i) + " out of range [0:1]")
		}
		return Record{Data: p.data}
	}
	r := &p.recs[i]
	rec := Record{PartitionKey: p.pks[r.pk], Data: r.data, SubSequence: i}
	if r.hasEHK {
		rec.ExplicitHashKey = p.ehks[r.ehk]
	}
	return rec
}

// fail records why the message is malformed and reports false.
func (p *Parser) fail(reason, where string, pos int) bool {
	p.reason, p.where, p.pos = reason, where, pos
	return false
}

// parseMessage reads an AggregatedRecord, skipping unknown fields, then checks every key index.
func (p *Parser) parseMessage(msg []byte) bool {
	b := msg
	for len(b) > 0 {
		at := magicLen + len(msg) - len(b) // offset in the input, for Err
		var num protowire.Number
		var v []byte
		if t := b[0]; len(b) >= 2 && t >= 1<<3 && t < 0x80 && protowire.Type(t&7) == protowire.BytesType && b[1] < 0x80 {
			// Fast path for a one-byte tag and a one-byte length: the shape of nearly every
			// field in an aggregate of small records.
			n := 2 + int(b[1])
			if n > len(b) {
				return p.fail("truncated field", "byte", at)
			}
			num, v, b = protowire.Number(t>>3), b[2:n], b[n:]
		} else {
			tnum, typ, n := protowire.ConsumeTag(b)
			if n < 0 {
				return p.fail("bad field tag", "byte", at)
			}
			b = b[n:]
			if typ != protowire.BytesType {
				// Unknown field, or a known field number with the wrong wire type, which
				// protobuf parsers also treat as unknown.
				n = protowire.ConsumeFieldValue(tnum, typ, b)
				if n < 0 {
					return p.fail("bad unknown field", "byte", at)
				}
				b = b[n:]
				continue
			}
			v, n = protowire.ConsumeBytes(b)
			if n < 0 {
				return p.fail("truncated field", "byte", at)
			}
			num, b = tnum, b[n:]
		}
		switch num {
		case fieldPartitionKeyTable:
			p.pks = append(p.pks, v)
		case fieldExplicitHashKeyTable:
			p.ehks = append(p.ehks, v)
		case fieldRecords:
			r, reason := parseRecord(v)
			if reason != "" {
				return p.fail(reason, "byte", at)
			}
			p.recs = append(p.recs, r)
		}
		// Any other field number is an unknown length-delimited field, already skipped.
	}
	for i := range p.recs {
		r := &p.recs[i]
		if r.pk >= uint64(len(p.pks)) {
			return p.fail("partition key index out of range", "record", i)
		}
		if r.hasEHK && r.ehk >= uint64(len(p.ehks)) {
			return p.fail("explicit hash key index out of range", "record", i)
		}
	}
	return true
}

// parseRecord reads one Record message. Tags (field 4) and unknown fields are skipped; the
// required fields partition_key_index and data must be present. A repeated scalar field keeps its
// last value, as protobuf parsers do.
func parseRecord(b []byte) (rawRecord, string) {
	var r rawRecord
	var havePK, haveData bool
	for len(b) > 0 {
		if len(b) >= 2 && b[1] < 0x80 {
			// Fast path for the fields the KPL and the Builder write, when their value (index
			// or data length) fits one byte.
			switch b[0] {
			case tagPartitionKeyIndex:
				r.pk, havePK, b = uint64(b[1]), true, b[2:]
				continue
			case tagExplicitHashKeyIndex:
				r.ehk, r.hasEHK, b = uint64(b[1]), true, b[2:]
				continue
			case tagData:
				n := 2 + int(b[1])
				if n > len(b) {
					return r, "truncated data in record"
				}
				r.data, haveData, b = b[2:n], true, b[n:]
				continue
			}
		}
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return r, "bad field tag in record"
		}
		b = b[n:]
		switch {
		case num == fieldPartitionKeyIndex && typ == protowire.VarintType:
			r.pk, n = protowire.ConsumeVarint(b)
			havePK = true
		case num == fieldExplicitHashKeyIndex && typ == protowire.VarintType:
			r.ehk, n = protowire.ConsumeVarint(b)
			r.hasEHK = true
		case num == fieldData && typ == protowire.BytesType:
			r.data, n = protowire.ConsumeBytes(b)
			haveData = true
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return r, "bad field in record"
		}
		b = b[n:]
	}
	if !havePK {
		return r, "record without partition_key_index"
	}
	if !haveData {
		return r, "record without data"
	}
	return r, ""
}
