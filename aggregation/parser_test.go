package aggregation

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// Hand encoders for the KPL messages, so tests can write what the Builder never would: fields out
// of order, unknown fields, tags, bad indices.
func pbString(b []byte, num protowire.Number, s string) []byte {
	return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), s)
}

func pbBytes(b []byte, num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
}

func pbVarint(b []byte, num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
}

// pbRecord encodes a Record message with the given partition key index, explicit hash key index
// (negative: none) and data.
func pbRecord(pk uint64, ehk int, data string) []byte {
	r := pbVarint(nil, 1, pk)
	if ehk >= 0 {
		r = pbVarint(r, 2, uint64(ehk))
	}
	return pbBytes(r, 3, []byte(data))
}

func TestParsePlain(t *testing.T) {
	valid := build(t, 0, []userRecord{{pk: "a", data: []byte("x")}})
	badBody := bytes.Clone(valid)
	badBody[len(Magic)+3] ^= 1
	badDigest := bytes.Clone(valid)
	badDigest[len(badDigest)-1] ^= 1
	tests := []struct {
		name string
		data []byte
	}{
		// Guards against empty or nil data being mistaken for anything but one empty record.
		{"nil", nil},
		{"empty", []byte{}},
		// Guards against treating arbitrary data as an aggregate.
		{"text", []byte("hello, kinesis")},
		// Guards against an out-of-range slice when data has the magic but no room for a digest.
		{"magic only", Magic[:]},
		{"magic and 15 bytes", append(Magic[:len(Magic):len(Magic)], make([]byte, 15)...)},
		{"shorter than magic", Magic[:3]},
		// Guards against dropping or mangling a record whose digest does not match: the KCL
		// passes it through unchanged.
		{"bad MD5, body changed", badBody},
		{"bad MD5, digest changed", badDigest},
		// Guards against matching only part of the magic.
		{"near-magic prefix", append([]byte{0xF3, 0x89, 0x9A, 0xC3}, valid[4:]...)},
	}
	var p Parser
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, got := parseAll(&p, tt.data)
			if f != Plain || p.Format() != Plain {
				t.Fatalf("Parse = %v, want Plain", f)
			}
			if p.Err() != nil {
				t.Fatalf("Err() = %v for plain data", p.Err())
			}
			if len(got) != 1 || !bytes.Equal(got[0].Data, tt.data) || got[0].PartitionKey != nil ||
				got[0].ExplicitHashKey != nil || got[0].SubSequence != 0 {
				t.Fatalf("records = %+v, want one record holding the whole data", got)
			}
			if IsAggregated(tt.data) {
				t.Fatal("IsAggregated = true for plain data")
			}
		})
	}
}

func TestParseMalformed(t *testing.T) {
	tests := []struct {
		name string
		msg  []byte
	}{
		// Guards against accepting bytes that do not parse as protobuf at all.
		{"garbage", []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}},
		{"field number 0", []byte{0x02, 0x00}},
		// Guards against reading past the end of a truncated length-delimited field.
		{"truncated table entry", []byte{0x0A, 0x05, 'a', 'b'}},
		{"truncated record", append(pbString(nil, 1, "k"), 0x1A, 0x20, 0x08, 0x00)},
		{"truncated record field", pbBytes(pbString(nil, 1, "k"), 3, []byte{0x08, 0x00, 0x1A, 0x09, 'd'})},
		// Guards against indexing the partition key table out of range (a panic in some readers).
		{"partition key index out of range", pbBytes(pbString(nil, 1, "k"), 3, pbRecord(1, -1, "d"))},
		{"partition key index huge", pbBytes(pbString(nil, 1, "k"), 3, pbRecord(1<<63, -1, "d"))},
		{"no partition key table", pbBytes(nil, 3, pbRecord(0, -1, "d"))},
		// Guards against indexing the explicit hash key table out of range.
		{"explicit hash key index out of range", pbBytes(pbString(pbString(nil, 1, "k"), 2, "9"), 3, pbRecord(0, 1, "d"))},
		{"no explicit hash key table", pbBytes(pbString(nil, 1, "k"), 3, pbRecord(0, 0, "d"))},
		// Guards against accepting records without their required fields (the KCL's protobuf
		// parser rejects them).
		{"record without partition key index", pbBytes(pbString(nil, 1, "k"), 3, pbBytes(nil, 3, []byte("d")))},
		{"record without data", pbBytes(pbString(nil, 1, "k"), 3, pbVarint(nil, 1, 0))},
		// Guards against a known field number with the wrong wire type being taken as the field.
		{"data as varint", pbBytes(pbString(nil, 1, "k"), 3, pbVarint(pbVarint(nil, 1, 0), 3, 5))},
		// Guards against an unterminated group being skipped as if it were complete.
		{"unterminated group", append(pbString(nil, 1, "k"), byte(protowire.EncodeTag(9, protowire.StartGroupType)))},
		{"stray end group", []byte{byte(protowire.EncodeTag(9, protowire.EndGroupType))}},
	}
	var p Parser
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := frame(tt.msg)
			f, got := parseAll(&p, data)
			if f != Malformed {
				t.Fatalf("Parse = %v, want Malformed", f)
			}
			if err := p.Err(); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Err() = %v, want an error wrapping ErrMalformed", err)
			} else {
				t.Log(err)
			}
			if len(got) != 1 || !bytes.Equal(got[0].Data, data) || got[0].PartitionKey != nil {
				t.Fatalf("records = %+v, want one plain record holding the whole data", got)
			}
			if !IsAggregated(data) {
				t.Fatal("IsAggregated = false for data whose magic and digest verify")
			}
		})
	}
}

// Guards against a strict parser that would reject what other KPL versions or future writers
// produce: tags, unknown fields of every wire type, tables after the records, fields repeated.
func TestParseToleratesUnknownFieldsAndTags(t *testing.T) {
	tag := pbString(pbString(nil, 1, "tag-key"), 2, "tag-value")
	rec0 := pbVarint(nil, 1, 1)
	rec0 = pbBytes(rec0, 4, tag)                                                            // tag before data
	rec0 = protowire.AppendFixed32(protowire.AppendTag(rec0, 15, protowire.Fixed32Type), 7) // unknown
	rec0 = pbBytes(rec0, 3, []byte("zero"))
	rec0 = pbBytes(rec0, 4, tag)
	rec0 = pbVarint(rec0, 2, 0)
	rec1 := pbBytes(nil, 3, []byte("one"))
	rec1 = pbString(rec1, 1, "a partition key index of the wrong wire type is an unknown field")
	rec1 = pbVarint(rec1, 1, 0)
	rec1 = pbBytes(rec1, 100, []byte("unknown bytes"))
	rec1 = protowire.AppendGroup(protowire.AppendTag(rec1, 5, protowire.StartGroupType), 5, pbVarint(nil, 1, 1))

	var msg []byte
	msg = pbVarint(msg, 7, 99) // unknown top-level varint
	msg = pbString(msg, 1, "pk0")
	msg = pbBytes(msg, 3, rec0) // record before the tables it refers to are complete
	msg = protowire.AppendFixed64(protowire.AppendTag(msg, 8, protowire.Fixed64Type), 1)
	msg = pbBytes(msg, 3, rec1)
	msg = pbVarint(msg, 3, 1) // records with the wrong wire type: unknown
	msg = pbString(msg, 2, "ehk0")
	msg = pbString(msg, 1, "pk1")
	msg = protowire.AppendGroup(protowire.AppendTag(msg, 9, protowire.StartGroupType), 9, pbString(nil, 1, "nested"))

	var p Parser
	f, got := parseAll(&p, frame(msg))
	if f != Aggregated {
		t.Fatalf("Parse = %v (%v), want Aggregated", f, p.Err())
	}
	checkRecords(t, got, []userRecord{
		{pk: "pk1", ehk: "ehk0", data: []byte("zero")},
		{pk: "pk0", data: []byte("one")},
	})
}

// Guards against keeping the first value when a singular field occurs twice: protobuf parsers,
// the KCL's included, keep the last.
func TestParseLastValueWins(t *testing.T) {
	rec := pbVarint(nil, 1, 0)
	rec = pbBytes(rec, 3, []byte("old"))
	rec = pbVarint(rec, 1, 1)
	rec = pbBytes(rec, 3, []byte("new"))
	msg := pbBytes(pbString(pbString(nil, 1, "a"), 1, "b"), 3, rec)
	var p Parser
	f, got := parseAll(&p, frame(msg))
	if f != Aggregated {
		t.Fatalf("Parse = %v (%v)", f, p.Err())
	}
	checkRecords(t, got, []userRecord{{pk: "b", data: []byte("new")}})
}

// Guards against an aggregate with no user records being reported as malformed or as one record:
// the KCL delivers nothing for it, and the consumer must still move past it.
func TestParseEmptyAggregate(t *testing.T) {
	var p Parser
	for _, msg := range [][]byte{nil, pbString(nil, 1, "unused key")} {
		if f := p.Parse(frame(msg)); f != Aggregated || p.Len() != 0 {
			t.Fatalf("Parse(%x) = %v with %d records, want Aggregated with 0", msg, f, p.Len())
		}
	}
}

// Guards against state leaking from one Parse into the next on a reused Parser (tables, records,
// the malformed reason).
func TestParserReuse(t *testing.T) {
	agg1 := build(t, 0, []userRecord{{pk: "a", data: []byte("1")}, {pk: "b", ehk: "7", data: []byte("2")}, {pk: "c", data: []byte("3")}})
	agg2 := build(t, 0, []userRecord{{pk: "z", data: []byte("9")}})
	malformed := frame(pbBytes(nil, 3, pbRecord(0, -1, "d")))
	var p Parser
	steps := []struct {
		data []byte
		want Format
		n    int
	}{
		{agg1, Aggregated, 3}, {[]byte("plain"), Plain, 1}, {malformed, Malformed, 1},
		{agg2, Aggregated, 1}, {malformed, Malformed, 1}, {agg1, Aggregated, 3},
	}
	for i, s := range steps {
		f, got := parseAll(&p, s.data)
		if f != s.want || len(got) != s.n {
			t.Fatalf("step %d: Parse = %v with %d records, want %v with %d", i, f, len(got), s.want, s.n)
		}
		if (p.Err() != nil) != (s.want == Malformed) {
			t.Fatalf("step %d: Err() = %v", i, p.Err())
		}
		if s.want != Aggregated && !bytes.Equal(got[0].Data, s.data) {
			t.Fatalf("step %d: record data %q, want the whole input", i, got[0].Data)
		}
	}
	if string(p.Record(2).PartitionKey) != "c" || string(p.Record(1).ExplicitHashKey) != "7" || p.Record(2).ExplicitHashKey != nil {
		t.Fatalf("records after reuse: %+v %+v", p.Record(1), p.Record(2))
	}
}

// Guards against Record silently returning a zero Record past the end.
func TestParserRecordOutOfRangePanics(t *testing.T) {
	agg := build(t, 0, []userRecord{{pk: "a", data: []byte("1")}})
	for _, data := range [][]byte{[]byte("plain"), agg} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Record(1) after parsing %x did not panic", data)
				}
			}()
			var p Parser
			p.Parse(data)
			p.Record(1)
		}()
	}
}

// Guards against the parser copying what it returns: records must alias the input.
func TestParseReturnsSubslices(t *testing.T) {
	data := build(t, 0, []userRecord{{pk: "key", ehk: "12", data: []byte("payload")}})
	var p Parser
	p.Parse(data)
	r := p.Record(0)
	for name, s := range map[string][]byte{"PartitionKey": r.PartitionKey, "ExplicitHashKey": r.ExplicitHashKey, "Data": r.Data} {
		if !within(s, data) {
			t.Errorf("%s is not a sub-slice of the input", name)
		}
	}
}

func TestFormatString(t *testing.T) {
	// Guards against log lines and metrics labels showing numbers instead of names.
	for f, want := range map[Format]string{Plain: "Plain", Aggregated: "Aggregated", Malformed: "Malformed", 7: "Format(7)"} {
		if got := f.String(); got != want {
			t.Errorf("Format(%d).String() = %q, want %q", int(f), got, want)
		}
	}
}

// Guards against allocations on the consumer's hot path: plain records, and aggregates once the
// Parser's tables have grown.
func TestParserAllocs(t *testing.T) {
	var recs []userRecord
	for i := range 500 {
		recs = append(recs, userRecord{pk: key("u", i%50, 20), data: patterned(i, 100)})
	}
	agg := build(t, 0, recs)
	plain := patterned(1, 100)
	var p Parser
	p.Parse(agg)
	for name, data := range map[string][]byte{"plain": plain, "aggregated": agg} {
		allocs := testing.AllocsPerRun(50, func() {
			p.Parse(data)
			for i := range p.Len() {
				_ = p.Record(i)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations per Parse, want 0", name, allocs)
		}
	}
}
