package aggregation

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzParse guards against panics on hostile input, against records that point outside the input,
// and against any disagreement between the Parser and the Builder: the user records of every
// aggregate the Parser accepts, rebuilt by the Builder and parsed again, must come back the same.
// Seeds live in testdata/fuzz/FuzzParse (plain, valid aggregates, bad MD5, malformed).
//
// Random mutations almost never keep the MD5 digest valid, so each input is also parsed with its
// digest repaired (or, without the magic, framed as an aggregate): that is what lets the fuzzer
// reach and explore the protobuf parser.
func FuzzParse(f *testing.F) {
	var c parseChecker
	f.Fuzz(func(t *testing.T, data []byte) {
		c.check(t, data)
		var fixed []byte
		if hasMagic(data) {
			fixed = frame(data[magicLen : len(data)-digestLen])
		} else {
			fixed = frame(data)
		}
		c.check(t, fixed)
	})
}

// parseChecker holds the Parsers and the Builder FuzzParse reuses across inputs, as the consumer
// and producer do, so that state leaking from one input to the next shows too.
type parseChecker struct {
	p, p2 Parser
	b     Builder
}

func (c *parseChecker) check(t *testing.T, data []byte) {
	p, p2, b := &c.p, &c.p2, &c.b
	format := p.Parse(data)
	if IsAggregated(data) != (format != Plain) {
		t.Fatalf("Parse = %v but IsAggregated = %v", format, IsAggregated(data))
	}
	if format != Aggregated {
		if p.Len() != 1 || !bytes.Equal(p.Record(0).Data, data) || p.Record(0).PartitionKey != nil {
			t.Fatalf("%v data not exposed as one whole record", format)
		}
		if (p.Err() != nil) != (format == Malformed) {
			t.Fatalf("Parse = %v, Err() = %v", format, p.Err())
		}
		return
	}
	b.Reset()
	b.maxSize = math.MaxInt // no limit: a rebuilt aggregate is never refused for size
	for i := range p.Len() {
		r := p.Record(i)
		if !within(r.PartitionKey, data) || !within(r.Data, data) ||
			(r.ExplicitHashKey != nil && !within(r.ExplicitHashKey, data)) {
			t.Fatalf("record %d has a slice outside the input", i)
		}
		if r.SubSequence != i {
			t.Fatalf("record %d: SubSequence %d", i, r.SubSequence)
		}
		if !b.Add(string(r.PartitionKey), string(r.ExplicitHashKey), r.Data) {
			t.Fatalf("record %d refused by an unlimited Builder", i)
		}
	}
	rebuilt := b.AppendTo(nil)
	if len(rebuilt) != b.Size() {
		t.Fatalf("len(AppendTo) = %d, Size() = %d", len(rebuilt), b.Size())
	}
	if p.Len() == 0 {
		if len(rebuilt) != 0 {
			t.Fatalf("empty Builder wrote %d bytes", len(rebuilt))
		}
		return
	}
	if f2 := p2.Parse(rebuilt); f2 != Aggregated || p2.Len() != p.Len() {
		t.Fatalf("rebuilt aggregate: Parse = %v with %d records (%v), want Aggregated with %d", f2, p2.Len(), p2.Err(), p.Len())
	}
	for i := range p.Len() {
		r, r2 := p.Record(i), p2.Record(i)
		// An empty explicit hash key cannot be expressed by the Builder ("" means none), so
		// bytes.Equal's nil == empty is the right comparison here.
		if !bytes.Equal(r.PartitionKey, r2.PartitionKey) || !bytes.Equal(r.ExplicitHashKey, r2.ExplicitHashKey) ||
			!bytes.Equal(r.Data, r2.Data) {
			t.Fatalf("record %d changed across rebuild: %+v → %+v", i, r, r2)
		}
	}
}

// FuzzBuild guards against size-accounting and encoding errors for arbitrary record sets: input
// bytes are cut into records (keys and data taken from the input), and what the Builder accepts
// must parse back identically, with Size equal to the encoded length and never above the maximum.
func FuzzBuild(f *testing.F) {
	f.Add([]byte("a|1|hello\nb||world\na|1|\n"), 0)
	f.Add([]byte(strings.Repeat("key|ehk|"+strings.Repeat("x", 200)+"\n", 100)), 5000)
	f.Add([]byte("k||\n"), 21)
	var p Parser
	f.Fuzz(func(t *testing.T, input []byte, maxSize int) {
		maxSize %= 1 << 22
		b := NewBuilder(maxSize)
		var want []userRecord
		for line := range bytes.SplitSeq(input, []byte("\n")) {
			fields := bytes.SplitN(line, []byte("|"), 3)
			if len(fields) != 3 {
				continue
			}
			r := userRecord{pk: string(fields[0]), ehk: string(fields[1]), data: fields[2]}
			size := b.SizeWith(r.pk, r.ehk, len(r.data))
			if b.Add(r.pk, r.ehk, r.data) != (size <= b.MaxSize()) {
				t.Fatalf("Add disagrees with SizeWith %d and MaxSize %d", size, b.MaxSize())
			}
			if size <= b.MaxSize() {
				want = append(want, r)
				if b.Size() != size {
					t.Fatalf("Size() = %d, SizeWith predicted %d", b.Size(), size)
				}
			}
		}
		out := b.AppendTo(nil)
		if len(out) != b.Size() || len(out) > b.MaxSize() {
			t.Fatalf("encoded %d bytes, Size() %d, MaxSize() %d", len(out), b.Size(), b.MaxSize())
		}
		if len(want) == 0 {
			return
		}
		format, got := parseAll(&p, out)
		if format != Aggregated {
			t.Fatalf("Parse = %v (%v)", format, p.Err())
		}
		checkRecords(t, got, want)
	})
}

// Guards against the committed seed corpus rotting: each seed must still be what its name says,
// or FuzzParse would start from less coverage than it claims.
func TestFuzzParseSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	wantFormat := map[string]Format{"plain": Plain, "aggregate": Aggregated, "badmd5": Plain, "malformed": Malformed}
	seen := map[Format]int{}
	var p Parser
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		data, err := unmarshalCorpusEntry(raw)
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		kind, _, _ := strings.Cut(e.Name(), "-")
		want, ok := wantFormat[kind]
		if !ok {
			t.Fatalf("%s: seed name does not start with one of plain, aggregate, badmd5, malformed", e.Name())
		}
		if got := p.Parse(data); got != want {
			t.Errorf("%s: Parse = %v, want %v", e.Name(), got, want)
		}
		if kind == "badmd5" && !hasMagic(data) {
			t.Errorf("%s: a bad-MD5 seed must carry the magic", e.Name())
		}
		seen[want]++
	}
	for _, f := range []Format{Plain, Aggregated, Malformed} {
		if seen[f] == 0 {
			t.Errorf("no %v seed in %s", f, dir)
		}
	}
}

// unmarshalCorpusEntry decodes a seed file holding a single []byte value, in the
// "go test fuzz v1" format that the fuzzing engine writes.
func unmarshalCorpusEntry(raw []byte) ([]byte, error) {
	header, value, _ := strings.Cut(string(raw), "\n")
	if header != "go test fuzz v1" {
		return nil, fmt.Errorf("bad header %q", header)
	}
	value = strings.TrimSpace(value)
	quoted, ok := strings.CutPrefix(value, "[]byte(")
	if !ok || !strings.HasSuffix(quoted, ")") {
		return nil, fmt.Errorf("not a single []byte value: %.40q", value)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(quoted, ")"))
	return []byte(s), err
}
