package shardmap

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

var two128 = new(big.Int).Lsh(big.NewInt(1), 128)

func bigOf(h Hash) *big.Int {
	b := new(big.Int).SetUint64(h.Hi)
	b.Lsh(b, 64)
	return b.Or(b, new(big.Int).SetUint64(h.Lo))
}

// Guards against decimal conversion bugs at the 10¹⁹ limb boundaries, which would put records
// on the wrong shard or write explicit hash keys Kinesis rejects.
func TestDecimalRoundTrip(t *testing.T) {
	cases := []Hash{{}, {Lo: 1}, {Lo: 9}, {Lo: 10}, {Lo: pow19 - 1}, {Lo: pow19}, {Lo: ^uint64(0)},
		{Hi: 1}, {Hi: 5, Lo: pow19}, MaxHash}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		cases = append(cases, Hash{Hi: r.Uint64() >> r.IntN(64), Lo: r.Uint64()})
	}
	for _, h := range cases {
		s := h.String()
		if want := bigOf(h).String(); s != want {
			t.Fatalf("String(%#v) = %s, want %s", h, s, want)
		}
		back, err := ParseHash(s)
		if err != nil || back != h {
			t.Fatalf("ParseHash(%s) = %#v, %v; want %#v", s, back, err, h)
		}
	}
}

// Guards against accepting hash keys Kinesis would reject (overflow past 2¹²⁸−1, signs, junk).
func TestParseHashRejects(t *testing.T) {
	for _, s := range []string{"", "-1", "1a", " 1", new(big.Int).Set(two128).String(), "1" + MaxHash.String()} {
		if _, err := ParseHash(s); !errors.Is(err, ErrBadHash) {
			t.Errorf("ParseHash(%q) error = %v, want ErrBadHash", s, err)
		}
	}
}

// Guards against a hash that differs from the one Kinesis computes (MD5, big-endian).
func TestHashKeyIsMD5(t *testing.T) {
	for _, key := range []string{"", "a", "user-42", string(make([]byte, 256)), string(make([]byte, 300))} {
		sum := md5.Sum([]byte(key))
		want := new(big.Int).SetBytes(sum[:])
		if got := bigOf(HashKey(key)); got.Cmp(want) != 0 {
			t.Fatalf("HashKey(%q) = %s, want %s", key, got, want)
		}
		if HashKeyBytes([]byte(key)) != HashKey(key) {
			t.Fatalf("HashKeyBytes and HashKey disagree for %q", key)
		}
	}
}

// evenShards splits the hash space into n open shards the way CreateStream does.
func evenShards(n int) []types.Shard {
	step := new(big.Int).Div(two128, big.NewInt(int64(n)))
	var out []types.Shard
	for i := 0; i < n; i++ {
		start := new(big.Int).Mul(step, big.NewInt(int64(i)))
		end := new(big.Int).Sub(new(big.Int).Add(start, step), big.NewInt(1))
		if i == n-1 {
			end = new(big.Int).Sub(two128, big.NewInt(1))
		}
		out = append(out, types.Shard{
			ShardId:             aws.String(fmt.Sprintf("shardId-%012d", i)),
			HashKeyRange:        &types.HashKeyRange{StartingHashKey: aws.String(start.String()), EndingHashKey: aws.String(end.String())},
			SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")},
		})
	}
	return out
}

// Guards against off-by-one lookups at range edges and against closed shards being predicted.
func TestLookup(t *testing.T) {
	shards := evenShards(4)
	closed := types.Shard{ShardId: aws.String("closed"), HashKeyRange: shards[0].HashKeyRange,
		SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1"), EndingSequenceNumber: aws.String("2")}}
	m, err := New(append([]types.Shard{closed}, shards...))
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != 4 {
		t.Fatalf("Len = %d, want 4 (closed shard ignored)", m.Len())
	}
	for i, s := range shards {
		r, _ := ShardRange(s)
		for _, h := range []Hash{r.Start, r.End} {
			e, ok := m.Lookup(h)
			if !ok || e.ID != aws.ToString(s.ShardId) || m.Index(h) != i {
				t.Fatalf("Lookup(%s) = %v %v, want %s", h, e.ID, ok, aws.ToString(s.ShardId))
			}
		}
	}
	// Compare with a brute-force scan for random keys.
	for i := range 2000 {
		h := HashKey("k" + strconv.Itoa(i))
		e, ok := m.Lookup(h)
		if !ok || !e.Range.Contains(h) {
			t.Fatalf("Lookup(%s) = %+v %v", h, e, ok)
		}
	}
}

// Guards against a map built from a gap in the hash space silently predicting a shard.
func TestLookupGap(t *testing.T) {
	shards := evenShards(4)
	m, err := New([]types.Shard{shards[0], shards[2]})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := ShardRange(shards[1])
	if _, ok := m.Lookup(r.Start); ok {
		t.Fatal("Lookup in a gap succeeded")
	}
	if _, err := New(nil); err == nil {
		t.Fatal("New(nil) succeeded")
	}
	if _, err := New([]types.Shard{shards[0], shards[0]}); err == nil {
		t.Fatal("New with overlapping shards succeeded")
	}
}

type pagedLister struct {
	pages [][]types.Shard
	calls []*kinesis.ListShardsInput
}

func (p *pagedLister) ListShards(_ context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	p.calls = append(p.calls, in)
	i := 0
	if in.NextToken != nil {
		i, _ = strconv.Atoi(*in.NextToken)
	}
	out := &kinesis.ListShardsOutput{Shards: p.pages[i]}
	if i+1 < len(p.pages) {
		out.NextToken = aws.String(strconv.Itoa(i + 1))
	}
	return out, nil
}

// Guards against reading only the first ListShards page (streams with many shards) and
// against sending StreamName with NextToken, which Kinesis rejects.
func TestListPaginates(t *testing.T) {
	shards := evenShards(5)
	p := &pagedLister{pages: [][]types.Shard{shards[:2], shards[2:4], shards[4:]}}
	got, err := List(context.Background(), p, "s", nil)
	if err != nil || len(got) != 5 {
		t.Fatalf("List = %d shards, %v; want 5", len(got), err)
	}
	for _, in := range p.calls[1:] {
		if in.StreamName != nil || in.ShardFilter != nil {
			t.Fatalf("paged call sent StreamName or ShardFilter: %+v", in)
		}
	}
}

func BenchmarkHashKey(b *testing.B) {
	key := "user-0000000042-abcdefgh"
	b.ReportAllocs()
	for b.Loop() {
		_ = HashKey(key)
	}
}

func BenchmarkLookup(b *testing.B) {
	m, _ := New(evenShards(64))
	h := HashKey("user-42")
	b.ReportAllocs()
	for b.Loop() {
		_, _ = m.Lookup(h)
	}
}
