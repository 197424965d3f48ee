package aggregation

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

// userRecord is a user record as a producer hands it to the Builder.
type userRecord struct {
	pk, ehk string
	data    []byte
}

func (r userRecord) String() string {
	return fmt.Sprintf("{pk %q ehk %q data %d bytes}", short(r.pk), short(r.ehk), len(r.data))
}

func short(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}

// build adds every record to a Builder of the given maximum, failing the test if one is refused,
// and returns the encoded aggregate after checking that Size predicted its length.
func build(t testing.TB, maxSize int, recs []userRecord) []byte {
	t.Helper()
	b := NewBuilder(maxSize)
	for i, r := range recs {
		want := b.SizeWith(r.pk, r.ehk, len(r.data))
		if !b.Add(r.pk, r.ehk, r.data) {
			t.Fatalf("Add(record %d %v) refused at size %d, max %d", i, r, b.Size(), b.MaxSize())
		}
		if got := b.Size(); got != want {
			t.Fatalf("after record %d: Size() = %d, SizeWith predicted %d", i, got, want)
		}
	}
	out := b.AppendTo(nil)
	if len(out) != b.Size() {
		t.Fatalf("len(AppendTo) = %d, Size() = %d", len(out), b.Size())
	}
	return out
}

// parseAll parses data and returns its format and the records found, copied out of the Parser.
func parseAll(p *Parser, data []byte) (Format, []Record) {
	f := p.Parse(data)
	recs := make([]Record, p.Len())
	for i := range recs {
		recs[i] = p.Record(i)
	}
	return f, recs
}

// checkRecords fails the test unless got holds exactly the user records want, in order, with
// sub-sequence numbers 0, 1, 2, ...
func checkRecords(t testing.TB, got []Record, want []userRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if string(g.PartitionKey) != w.pk || g.PartitionKey == nil {
			t.Fatalf("record %d: partition key %q, want %q", i, short(string(g.PartitionKey)), short(w.pk))
		}
		if w.ehk == "" && g.ExplicitHashKey != nil {
			t.Fatalf("record %d: explicit hash key %q, want none", i, g.ExplicitHashKey)
		}
		if string(g.ExplicitHashKey) != w.ehk {
			t.Fatalf("record %d: explicit hash key %q, want %q", i, short(string(g.ExplicitHashKey)), short(w.ehk))
		}
		if !bytes.Equal(g.Data, w.data) {
			t.Fatalf("record %d: data %d bytes %.16x…, want %d bytes %.16x…", i, len(g.Data), g.Data, len(w.data), w.data)
		}
		if g.SubSequence != i {
			t.Fatalf("record %d: SubSequence %d", i, g.SubSequence)
		}
	}
}

// frame wraps a protobuf message in the aggregate framing: magic, message, MD5 of the message.
func frame(msg []byte) []byte {
	sum := md5.Sum(msg)
	out := append(Magic[:len(Magic):len(Magic)], msg...)
	return append(out, sum[:]...)
}

// patterned returns n bytes that differ from record to record, so that a record swapped for
// another or cut short shows.
func patterned(seed, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(seed*31 + i*7 + i>>8)
	}
	return b
}

func key(prefix string, i, width int) string {
	s := fmt.Sprintf("%s-%d-", prefix, i)
	if len(s) < width {
		s += strings.Repeat("k", width-len(s))
	}
	return s
}

// within reports whether s lies inside data's memory (a zero-length s may sit at its very end).
// A nil s is not within anything.
func within(s, data []byte) bool {
	if s == nil {
		return false
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	return p >= start && p+uintptr(len(s)) <= start+uintptr(len(data))
}
