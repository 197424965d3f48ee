package kinesisproxy

import (
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func newShard(l Limits) *shardLimits { return newLimiter(l).shard(shardKey{"s", "shardId-0"}, t0) }

// Guards against a bucket that starts empty, refills past its burst, or admits a record
// whose bytes do not fit (the record token must then stay in the bucket).
func TestWriteBuckets(t *testing.T) {
	s := newShard(DefaultLimits())
	n := 0
	for s.takeWrite(t0, 10) {
		n++
	}
	if n != 1000 {
		t.Fatalf("burst admitted %d records, want 1000", n)
	}
	// 100 ms earns 100 records.
	n = 0
	for s.takeWrite(t0.Add(100*time.Millisecond), 10) {
		n++
	}
	if n != 100 {
		t.Fatalf("100 ms admitted %d records, want 100", n)
	}
	// An idle hour earns one second's worth, no more.
	n = 0
	for s.takeWrite(t0.Add(time.Hour), 1) {
		n++
	}
	if n != 1000 {
		t.Fatalf("after an hour %d records, want 1000 (the burst)", n)
	}

	// Bytes: a 1 MiB record takes the whole byte bucket; the next small record is refused
	// and costs no record token.
	s = newShard(DefaultLimits())
	if !s.takeWrite(t0, 1<<20) {
		t.Fatal("a 1 MiB record was refused by a full bucket")
	}
	if s.takeWrite(t0, 1) {
		t.Fatal("a record was admitted with the byte bucket empty")
	}
	if s.writeRecords.tokens != 999 {
		t.Fatalf("record tokens %v after one admitted and one refused record, want 999", s.writeRecords.tokens)
	}
	if !s.takeWrite(t0.Add(time.Second/2), 1<<19) {
		t.Fatal("half a second did not earn half a MiB")
	}
}

// Guards against reads that ignore a large response: after 10 MiB against a 2 MiB/s
// bucket, the shard must refuse reads for 4 s, as Kinesis does, though calls are left.
func TestReadBuckets(t *testing.T) {
	s := newShard(DefaultLimits())
	for i := range 5 {
		if !s.takeRead(t0) {
			t.Fatalf("call %d of the burst refused", i+1)
		}
	}
	if s.takeRead(t0) {
		t.Fatal("sixth call within the same instant admitted")
	}
	if !s.takeRead(t0.Add(200 * time.Millisecond)) {
		t.Fatal("200 ms did not earn a call")
	}

	s = newShard(DefaultLimits())
	s.chargeRead(t0, 10<<20)
	if got := s.readBytes.tokens; got != -(8 << 20) {
		t.Fatalf("byte tokens %v after a 10 MiB read, want -8 MiB", got)
	}
	if s.takeRead(t0.Add(3900 * time.Millisecond)) {
		t.Fatal("read admitted while the shard still owes bytes")
	}
	if !s.takeRead(t0.Add(4100 * time.Millisecond)) {
		t.Fatal("read refused after the debt was repaid")
	}
}

// Guards against buckets shared between shards or between streams (shard IDs repeat
// across streams).
func TestShardsHaveOwnBuckets(t *testing.T) {
	l := newLimiter(Limits{Enabled: true, WriteRecords: 1, WriteBytes: 100, ReadCalls: 1, ReadBytes: 100})
	for _, k := range []shardKey{{"a", "shardId-0"}, {"a", "shardId-1"}, {"b", "shardId-0"}} {
		if !l.shard(k, t0).takeWrite(t0, 1) {
			t.Fatalf("%v: first record refused", k)
		}
		if l.shard(k, t0).takeWrite(t0, 1) {
			t.Fatalf("%v: second record admitted", k)
		}
	}
}
