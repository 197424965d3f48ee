package checkpoint_test

import (
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/shardline/kinesis/checkpoint"
)

func seq(n string, sub int64) checkpoint.Position {
	return checkpoint.Position{SequenceNumber: n, SubSequenceNumber: sub}
}

// ordered lists valid positions from first to last.
var ordered = []checkpoint.Position{
	{},
	seq("0", 0),
	seq("1", 0),
	seq("9", 0),
	seq("9", 1),
	seq("9", 2),
	seq("9", 10), // after 2 as a number, before as a string
	seq("10", 0), // after "9" as a number, before as a string
	seq("99", 1<<62),
	seq("100", 0),
	seq("49590338271490256608559692538361571095921575989136588898", 0),
	seq("49590338271490256608559692538361571095921575989136588898", 1),
	seq("49590338271490256608559692538361571095921575989136588899", 0),
	seq(strings.Repeat("9", 128), 0),
	seq("1"+strings.Repeat("0", 128), 0),
	seq("1"+strings.Repeat("0", 127)+"1", 0), // differs in the 129th digit only
	seq(strings.Repeat("9", 129), 1<<63-1),
	{ShardEnd: true},
}

// TestPositionCompare guards against comparing sequence numbers or sub-sequence numbers as
// strings or as floats, and against a zero Position or shard end out of place: any of these
// would let a checkpoint move backwards or refuse one that moves forwards.
func TestPositionCompare(t *testing.T) {
	for i, p := range ordered {
		if err := p.Validate(); err != nil {
			t.Fatalf("test bug: %v", err)
		}
		for j, q := range ordered {
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if got := p.Compare(q); got != want {
				t.Errorf("(%s).Compare(%s) = %d, want %d", p, q, got, want)
			}
			// Stores compare OrderKeys inside their conditional writes.
			if got := strings.Compare(p.OrderKey(), q.OrderKey()); got != want {
				t.Errorf("OrderKey %q vs %q compares %d, want %d", p.OrderKey(), q.OrderKey(), got, want)
			}
		}
	}
}

// TestPositionShardEndIgnoresSequence guards against a shard end that carries a sequence
// number comparing differently from a bare one.
func TestPositionShardEndIgnoresSequence(t *testing.T) {
	end := checkpoint.Position{ShardEnd: true, SequenceNumber: "5", SubSequenceNumber: 2}
	if c := end.Compare(checkpoint.Position{ShardEnd: true}); c != 0 {
		t.Errorf("shard ends with and without a sequence number compare %d, want 0", c)
	}
	if c := end.Compare(seq(strings.Repeat("9", 129), 1<<63-1)); c != 1 {
		t.Errorf("shard end compares %d with the greatest sequence number, want 1", c)
	}
}

// TestPositionValidate guards against storing a position that Compare cannot order: with a
// leading zero, a sign or a non-digit, the integer order and the OrderKey order disagree.
func TestPositionValidate(t *testing.T) {
	valid := append([]checkpoint.Position{{ShardEnd: true, SequenceNumber: "anything"}}, ordered...)
	for _, p := range valid {
		if err := p.Validate(); err != nil {
			t.Errorf("(%q/%d).Validate() = %v, want nil", p.SequenceNumber, p.SubSequenceNumber, err)
		}
	}
	for _, p := range []checkpoint.Position{
		seq("", 1),
		seq("01", 0),
		seq("00", 0),
		seq("-1", 0),
		seq("+1", 0),
		seq("1a", 0),
		seq("1 ", 0),
		seq("1.0", 0),
		seq("١", 0),                          // an Arabic-Indic digit
		seq("1"+strings.Repeat("0", 129), 0), // 130 digits
		seq("1", -1),
	} {
		if err := p.Validate(); !errors.Is(err, checkpoint.ErrInvalid) {
			t.Errorf("(%q/%d).Validate() = %v, want an error matching ErrInvalid", p.SequenceNumber, p.SubSequenceNumber, err)
		}
	}
}

// TestPositionString guards against a String that hides the sub-sequence number or prints a
// zero Position like a real one in logs.
func TestPositionString(t *testing.T) {
	for _, c := range []struct {
		p    checkpoint.Position
		want string
	}{
		{checkpoint.Position{}, ""},
		{checkpoint.Position{ShardEnd: true, SequenceNumber: "5"}, "SHARD_END"},
		{seq("5", 0), "5/0"},
		{seq("5", 12), "5/12"},
	} {
		if got := c.p.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
	}
}

// FuzzPositionCompare checks Compare and OrderKey against integer arithmetic for every pair of
// valid positions: a second, independent statement of the order.
func FuzzPositionCompare(f *testing.F) {
	for i := 1; i < len(ordered)-1; i++ {
		f.Add(ordered[i].SequenceNumber, ordered[i].SubSequenceNumber, ordered[i+1].SequenceNumber, ordered[i+1].SubSequenceNumber)
	}
	f.Fuzz(func(t *testing.T, a string, asub int64, b string, bsub int64) {
		p, q := seq(a, asub), seq(b, bsub)
		if p.Validate() != nil || q.Validate() != nil || p.IsZero() || q.IsZero() {
			return
		}
		x, _ := new(big.Int).SetString(a, 10)
		y, _ := new(big.Int).SetString(b, 10)
		want := x.Cmp(y)
		if want == 0 {
			want = big.NewInt(asub).Cmp(big.NewInt(bsub))
		}
		if got := p.Compare(q); got != want {
			t.Errorf("(%s).Compare(%s) = %d, want %d", p, q, got, want)
		}
		if got := strings.Compare(p.OrderKey(), q.OrderKey()); got != want {
			t.Errorf("OrderKeys of %s and %s compare %d, want %d", p, q, got, want)
		}
	})
}

// BenchmarkPositionCompare shows that comparing positions, done on every checkpoint, does not
// allocate.
func BenchmarkPositionCompare(b *testing.B) {
	p := seq("49590338271490256608559692538361571095921575989136588898", 3)
	q := seq("49590338271490256608559692538361571095921575989136588898", 4)
	b.ReportAllocs()
	for b.Loop() {
		if p.Compare(q) != -1 {
			b.Fatal("wrong order")
		}
	}
}
