package hashkey

import "testing"

// TestEven guards the shard ranges every placement check relies on: they must be the ones
// CreateStream gives (these are the boundaries of a 4-shard stream on Kinesis and
// kinesalite), cover the whole key space and not overlap.
func TestEven(t *testing.T) {
	want := []struct{ start, end string }{
		{"0", "85070591730234615865843651857942052863"},
		{"85070591730234615865843651857942052864", "170141183460469231731687303715884105727"},
		{"170141183460469231731687303715884105728", "255211775190703847597530955573826158591"},
		{"255211775190703847597530955573826158592", "340282366920938463463374607431768211455"},
	}
	got := Even(4)
	for i, w := range want {
		if got[i].Start.String() != w.start || got[i].End.String() != w.end {
			t.Errorf("shard %d: [%s, %s], want [%s, %s]", i, got[i].Start, got[i].End, w.start, w.end)
		}
	}
	if got[3].End != Max {
		t.Errorf("last shard ends at %s, want 2^128-1", got[3].End)
	}
}

// TestOf guards the partition-key hash: MD5 read big-endian, as Kinesis routes.
func TestOf(t *testing.T) {
	// MD5("a") = 0cc175b9c0f1b6a831c399e269772661.
	h := Of("a")
	if h.Hi != 0x0cc175b9c0f1b6a8 || h.Lo != 0x31c399e269772661 {
		t.Fatalf("Of(a) = %x %x", h.Hi, h.Lo)
	}
	p, err := Parse(h.String())
	if err != nil || p != h {
		t.Fatalf("Parse(String()) = %v, %v; want %v", p, err, h)
	}
	if i := Find(Even(4), h); i != 0 {
		t.Fatalf("key a on shard %d, want 0", i)
	}
	if _, err := Parse("340282366920938463463374607431768211456"); err == nil {
		t.Fatal("2^128 parsed as a hash key")
	}
}
