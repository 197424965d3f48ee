package aggregation

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestBuilderRoundTrip(t *testing.T) {
	var many []userRecord
	for i := range 1000 {
		r := userRecord{pk: key("user", i%37, 20), data: patterned(i, i%300)}
		if i%3 == 0 {
			r.ehk = key("", i%11, 30)
		}
		many = append(many, r)
	}
	var boundaries []userRecord
	for _, n := range []int{0, 1, 126, 127, 128, 129, 16382, 16383, 16384, 16385, 2097151, 2097152} {
		boundaries = append(boundaries, userRecord{pk: "k", data: patterned(n, n)})
	}
	key256 := strings.Repeat("p", 256)
	tests := []struct {
		name string
		recs []userRecord
	}{
		// Guards against an off-by-one in the single-record (first record) size and framing.
		{"one record", []userRecord{{pk: "a", data: []byte("hello")}}},
		// Guards against index mix-ups when keys repeat and interleave.
		{"shared keys", []userRecord{
			{pk: "a", data: []byte("1")}, {pk: "b", data: []byte("2")}, {pk: "a", data: []byte("3")},
			{pk: "c", data: []byte("4")}, {pk: "b", data: []byte("5")}, {pk: "a", data: []byte("6")},
		}},
		// Guards against explicit hash keys being dropped, shared wrongly, or given to records
		// that have none.
		{"explicit hash keys", []userRecord{
			{pk: "a", ehk: "340282366920938463463374607431768211455", data: []byte("1")},
			{pk: "b", data: []byte("2")},
			{pk: "c", ehk: "0", data: []byte("3")},
			{pk: "a", ehk: "340282366920938463463374607431768211455", data: []byte("4")},
			{pk: "d", ehk: "0", data: []byte("5")},
			{pk: "a", data: []byte("6")},
		}},
		// Guards against an explicit hash key table that is shared with the partition key table:
		// the same string used as both kinds of key needs an entry in each table.
		{"same string in both tables", []userRecord{
			{pk: "42", ehk: "42", data: []byte("x")}, {pk: "7", ehk: "42", data: []byte("y")},
		}},
		// Guards against empty data being omitted (data is a required field: omitting it makes
		// the record malformed for every reader).
		{"empty data", []userRecord{{pk: "a", data: nil}, {pk: "b", data: []byte{}}, {pk: "a", data: []byte("z")}}},
		// Guards against key length varints (256 needs two bytes) being sized as one byte.
		{"256-byte keys", []userRecord{
			{pk: key256, ehk: strings.Repeat("9", 38), data: []byte("a")},
			{pk: key256[:255] + "q", data: []byte("b")},
			{pk: key256, data: []byte("c")},
		}},
		// Guards against data and record length varints sized wrongly at 1/2/3/4-byte boundaries.
		{"varint boundary data sizes", boundaries},
		// Guards against state drift over many records (sizes, indices, key table growth).
		{"many records", many},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := build(t, 64<<20, tt.recs)
			var p Parser
			f, got := parseAll(&p, out)
			if f != Aggregated {
				t.Fatalf("Parse = %v (%v), want Aggregated", f, p.Err())
			}
			checkRecords(t, got, tt.recs)
		})
	}
}

// Guards against varint growth of key indices (127→128 and 16383→16384 entries) being missed in
// the size accounting, which would let Add exceed the maximum or make Size lie.
func TestBuilderIndexVarintBoundaries(t *testing.T) {
	for _, n := range []int{127, 128, 129, 16383, 16384, 16385} {
		var recs []userRecord
		for i := range n {
			recs = append(recs, userRecord{pk: key("p", i, 0), ehk: key("", i, 0), data: []byte{byte(i)}})
		}
		// The last records reuse the first and the newest keys, so both ends of the index range
		// are written after the tables have grown.
		recs = append(recs, userRecord{pk: recs[0].pk, ehk: recs[n-1].ehk, data: []byte("first")})
		recs = append(recs, userRecord{pk: recs[n-1].pk, ehk: recs[0].ehk, data: []byte("last")})
		out := build(t, 64<<20, recs)
		var p Parser
		f, got := parseAll(&p, out)
		if f != Aggregated {
			t.Fatalf("n=%d: Parse = %v (%v)", n, f, p.Err())
		}
		checkRecords(t, got, recs)
	}
}

// Guards against the size prediction drifting from the encoder for any mix of key reuse, explicit
// hash keys and lengths, and against Add accepting a record that does not fit or refusing one that
// does.
func TestBuilderSizeAccountingRandomized(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lengths := []int{0, 1, 2, 100, 126, 127, 128, 129, 255, 256, 1000, 16381, 16382, 16383, 16384, 16385, 70000}
	for iter := range 200 {
		maxSize := 20 + rng.IntN(200000)
		if iter%10 == 0 {
			maxSize = 0 // default maximum
		}
		b := NewBuilder(maxSize)
		nKeys := 1 + rng.IntN(300)
		refused := 0
		for range 1 + rng.IntN(400) {
			pk := key("k", rng.IntN(nKeys), rng.IntN(260))
			ehk := ""
			if rng.IntN(3) == 0 {
				ehk = key("", rng.IntN(nKeys), rng.IntN(40))
			}
			n := lengths[rng.IntN(len(lengths))]
			if rng.IntN(2) == 0 {
				n = rng.IntN(300)
			}
			predicted := b.SizeWith(pk, ehk, n)
			before, lenBefore := b.Size(), b.Len()
			ok := b.Add(pk, ehk, make([]byte, n))
			if ok != (predicted <= b.MaxSize()) {
				t.Fatalf("iter %d: Add = %v with predicted size %d, max %d", iter, ok, predicted, b.MaxSize())
			}
			if ok && b.Size() != predicted {
				t.Fatalf("iter %d: Size() = %d after Add, SizeWith predicted %d", iter, b.Size(), predicted)
			}
			if !ok {
				refused++
				if b.Size() != before || b.Len() != lenBefore {
					t.Fatalf("iter %d: refused Add changed Size %d→%d, Len %d→%d", iter, before, b.Size(), lenBefore, b.Len())
				}
			}
			if b.Size() > b.MaxSize() {
				t.Fatalf("iter %d: Size() %d exceeds MaxSize() %d", iter, b.Size(), b.MaxSize())
			}
		}
		out := b.AppendTo(nil)
		if len(out) != b.Size() {
			t.Fatalf("iter %d: len(AppendTo) = %d, Size() = %d (refused %d)", iter, len(out), b.Size(), refused)
		}
		if b.Len() > 0 {
			var p Parser
			if f := p.Parse(out); f != Aggregated || p.Len() != b.Len() {
				t.Fatalf("iter %d: Parse = %v with %d records (%v), want Aggregated with %d", iter, f, p.Len(), p.Err(), b.Len())
			}
		}
	}
}

// Guards against an off-by-one at the limit: a record that makes the aggregate exactly maxSize
// fits, one byte more does not, for the first record and for later ones.
func TestBuilderExactlyAtMaxSize(t *testing.T) {
	first := NewBuilder(1)
	size1 := first.SizeWith("key", "", 128)
	for _, tc := range []struct {
		max  int
		want bool
	}{{size1, true}, {size1 - 1, false}} {
		b := NewBuilder(tc.max)
		if got := b.Add("key", "", make([]byte, 128)); got != tc.want {
			t.Errorf("first record of size %d with max %d: Add = %v, want %v", size1, tc.max, got, tc.want)
		}
		if tc.want && len(b.AppendTo(nil)) != tc.max {
			t.Errorf("aggregate is %d bytes, want exactly %d", len(b.AppendTo(nil)), tc.max)
		}
	}

	probe := NewBuilder(0)
	probe.Add("a", "", []byte("first"))
	size2 := probe.SizeWith("b", "123", 16383)
	for _, tc := range []struct {
		max  int
		want bool
	}{{size2, true}, {size2 - 1, false}} {
		b := NewBuilder(tc.max)
		if !b.Add("a", "", []byte("first")) {
			t.Fatal("first record refused")
		}
		if got := b.Add("b", "123", make([]byte, 16383)); got != tc.want {
			t.Errorf("second record to size %d with max %d: Add = %v, want %v", size2, tc.max, got, tc.want)
		}
		if tc.want && len(b.AppendTo(nil)) != tc.max {
			t.Errorf("aggregate is %d bytes, want exactly %d", len(b.AppendTo(nil)), tc.max)
		}
	}
}

// Guards against a refused Add leaving traces: a key inserted into the de-duplication map before
// the size check would give the next new key a skipped index, pointing past the end of the table.
func TestBuilderRefusedAddChangesNothing(t *testing.T) {
	b := NewBuilder(200)
	if !b.Add("a", "1", []byte("small")) {
		t.Fatal("first record refused")
	}
	before := b.AppendTo(nil)
	size, n := b.Size(), b.Len()
	if b.Add("new-key", "new-ehk", make([]byte, 300)) {
		t.Fatal("oversized record accepted")
	}
	if b.Size() != size || b.Len() != n || !bytes.Equal(b.AppendTo(nil), before) {
		t.Fatalf("refused Add changed the builder: Size %d→%d Len %d→%d", size, b.Size(), n, b.Len())
	}
	want := []userRecord{{pk: "a", ehk: "1", data: []byte("small")}, {pk: "other", ehk: "2", data: []byte("fits")}}
	if !b.Add(want[1].pk, want[1].ehk, want[1].data) {
		t.Fatal("record that fits refused")
	}
	if !bytes.Equal(b.AppendTo(nil), build(t, 0, want)) {
		t.Fatal("aggregate after a refused Add differs from one built without it")
	}
}

// Guards against the Builder keeping the caller's data slice instead of a copy: the producer
// reuses its buffers as soon as Add returns.
func TestBuilderCopiesData(t *testing.T) {
	b := NewBuilder(0)
	buf := []byte("original")
	b.Add("k", "", buf)
	copy(buf, "XXXXXXXX")
	var p Parser
	if f := p.Parse(b.AppendTo(nil)); f != Aggregated || string(p.Record(0).Data) != "original" {
		t.Fatalf("Parse = %v, data %q; want the data as it was at Add", f, p.Record(0).Data)
	}
}

// Guards against Reset leaving state behind (keys, sizes, records), against AppendTo output
// aliasing buffers that a reused Builder overwrites, and against AppendTo clobbering dst's prefix.
func TestBuilderReset(t *testing.T) {
	first := []userRecord{{pk: "a", ehk: "5", data: []byte("one")}, {pk: "b", data: []byte("two")}}
	second := []userRecord{{pk: "b", data: []byte("three")}, {pk: "c", ehk: "6", data: []byte("four")}}
	b := NewBuilder(0)
	for _, r := range first {
		b.Add(r.pk, r.ehk, r.data)
	}
	out1 := b.AppendTo(nil)
	b.Reset()
	if b.Len() != 0 || b.Size() != 0 || len(b.AppendTo(nil)) != 0 {
		t.Fatalf("after Reset: Len %d Size %d, AppendTo %d bytes; want all 0", b.Len(), b.Size(), len(b.AppendTo(nil)))
	}
	if b.SizeWith("b", "", 5) != NewBuilder(0).SizeWith("b", "", 5) {
		t.Fatal("after Reset, SizeWith still counts a key from before the Reset as present")
	}
	for _, r := range second {
		b.Add(r.pk, r.ehk, r.data)
	}
	out2 := b.AppendTo([]byte("prefix"))
	if !bytes.HasPrefix(out2, []byte("prefix")) {
		t.Fatal("AppendTo overwrote dst")
	}
	if !bytes.Equal(out2[len("prefix"):], build(t, 0, second)) {
		t.Fatal("reused Builder writes different bytes than a fresh one")
	}
	var p Parser
	f, got := parseAll(&p, out1)
	if f != Aggregated {
		t.Fatalf("first aggregate: Parse = %v", f)
	}
	checkRecords(t, got, first)
	if b.MaxSize() != DefaultMaxSize {
		t.Fatalf("MaxSize() = %d after Reset", b.MaxSize())
	}
}

// Guards against a zero or negative maximum meaning "nothing fits" instead of the default.
func TestBuilderDefaultMaxSize(t *testing.T) {
	var zero Builder
	for name, b := range map[string]*Builder{"zero value": &zero, "NewBuilder(0)": NewBuilder(0), "NewBuilder(-1)": NewBuilder(-1)} {
		if b.MaxSize() != DefaultMaxSize {
			t.Errorf("%s: MaxSize() = %d, want %d", name, b.MaxSize(), DefaultMaxSize)
		}
		big := DefaultMaxSize - b.SizeWith("k", "", 0)
		for b.SizeWith("k", "", big) > DefaultMaxSize {
			big-- // the length varints grow with the data
		}
		if !b.Add("k", "", make([]byte, big)) || b.Size() != DefaultMaxSize {
			t.Errorf("%s: a record filling exactly DefaultMaxSize was refused or mis-sized (Size %d)", name, b.Size())
		}
		if b.Add("k", "", nil) {
			t.Errorf("%s: Add beyond DefaultMaxSize accepted", name)
		}
	}
}

// Guards against a negative length silently producing a wrong size.
func TestBuilderSizeWithNegativeLengthPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("SizeWith with a negative length did not panic")
		}
	}()
	NewBuilder(0).SizeWith("k", "", -1)
}

// Guards against per-record allocations in steady state (map re-creation, buffer regrowth, MD5
// state on the heap), which the producer's throughput depends on.
func TestBuilderSteadyStateAllocs(t *testing.T) {
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = key("user", i, 20)
	}
	data := make([]byte, 100)
	b := NewBuilder(50 << 10)
	var buf []byte
	i := 0
	fill := func() {
		for b.Add(keys[i%len(keys)], "", data) {
			i += 7
		}
		buf = b.AppendTo(buf[:0])
		b.Reset()
	}
	for range 3 {
		fill() // warm-up: grow buffers and maps
	}
	if allocs := testing.AllocsPerRun(20, fill); allocs != 0 {
		t.Fatalf("%.1f allocations per aggregate in steady state, want 0", allocs)
	}
}
