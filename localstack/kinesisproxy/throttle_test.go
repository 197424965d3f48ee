package kinesisproxy_test

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/kinesis/internal/shardmap"
	"github.com/shardline/kinesis/localstack"
	"github.com/shardline/kinesis/localstack/kinesisproxy"
)

const throttled = "ProvisionedThroughputExceededException"

// Guards against a write limit that is not Kinesis's: at twice the per-shard record rate,
// the shard must take its burst plus 1,000 records a second, and every other entry must
// come back as a per-entry ProvisionedThroughputExceededException with Kinesis's message.
func TestPutRecordsAtTwiceTheLimit(t *testing.T) {
	d := direct(t)
	stream := localstack.NewStream(t, d, 1)
	p := startProxy(t, kinesisproxy.Config{Limits: kinesisproxy.DefaultLimits()})
	c := via(t, p, false)
	ctx := ctxFor(t, time.Minute)

	// 200 entries every 100 ms for 3 s: 2,000 records/s offered against 1,000/s.
	const (
		ticks   = 30
		perCall = 200
	)
	type result struct {
		sent               time.Time
		accepted, refused  int
		err                error
		wrongMessage, code string
	}
	results := make([]result, ticks)
	var wg sync.WaitGroup
	wantMsg := fmt.Sprintf("Rate exceeded for shard %s in stream %s under account 000000000000.", shard0, stream)
	start := time.Now()
	for i := range ticks {
		time.Sleep(time.Until(start.Add(time.Duration(i) * 100 * time.Millisecond)))
		results[i].sent = time.Now()
		wg.Go(func() {
			r := &results[i]
			out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries(fmt.Sprint(i), perCall, 10)})
			if err != nil {
				r.err = err
				return
			}
			for _, e := range out.Records {
				switch code := aws.ToString(e.ErrorCode); code {
				case "":
					r.accepted++
				case throttled:
					r.refused++
					if aws.ToString(e.ErrorMessage) != wantMsg {
						r.wrongMessage = aws.ToString(e.ErrorMessage)
					}
				default:
					r.code = code
				}
			}
			if int(aws.ToInt32(out.FailedRecordCount)) != r.refused {
				r.err = fmt.Errorf("FailedRecordCount %d, %d entries refused", aws.ToInt32(out.FailedRecordCount), r.refused)
			}
		})
	}
	wg.Wait()
	end := time.Now()

	accepted, refused, lateAccepted := 0, 0, 0
	for i, r := range results {
		if r.err != nil || r.code != "" || r.wrongMessage != "" {
			t.Fatalf("call %d: err %v, code %q, message %q (want %q)", i, r.err, r.code, r.wrongMessage, wantMsg)
		}
		accepted += r.accepted
		refused += r.refused
		if r.sent.Sub(start) >= time.Second {
			lateAccepted += r.accepted
		}
	}
	if accepted+refused != ticks*perCall {
		t.Fatalf("%d accepted + %d refused != %d entries", accepted, refused, ticks*perCall)
	}
	// Token-bucket bounds: the burst (1,000) plus 1,000/s over the span in which the calls
	// reached the proxy. That span is the span of the sends give or take how long a
	// request takes to get from the client to the proxy's handler (a dial at most; 250 ms
	// is generous on a loaded machine, and still catches a refill rate 10% off). Lower:
	// every call demands more than 100 ms earn, so the bucket ends nearly empty; less than
	// one call's worth may be left, plus scheduling slack.
	span := results[ticks-1].sent.Sub(results[0].sent).Seconds()
	upper := 1000 + 1000*min(span+0.25, end.Sub(results[0].sent).Seconds()) + 1
	lower := 1000 + 1000*span - perCall - 50
	t.Logf("2x load: %d accepted, %d refused in %.2fs (bounds %.0f..%.0f); after the burst %.0f records/s",
		accepted, refused, span, lower, upper, float64(lateAccepted)/results[ticks-1].sent.Sub(results[10].sent).Seconds())
	if float64(accepted) > upper || float64(accepted) < lower {
		t.Fatalf("%d accepted, want within [%.0f, %.0f]", accepted, lower, upper)
	}
	// What the client was told is what the upstream holds.
	if got := len(readShard(t, d, stream, shard0)); got != accepted {
		t.Fatalf("shard holds %d records, %d were reported accepted", got, accepted)
	}
	cs := p.Counters().Operations["PutRecords"]
	if cs.Requests != ticks || cs.Entries != ticks*perCall || cs.ThrottledEntries != int64(refused) {
		t.Fatalf("counters %+v, want %d requests, %d entries, %d throttled", cs, ticks, ticks*perCall, refused)
	}
}

// Guards against a byte limit that ignores data sizes or throttles entries out of order: at
// 64 KiB/s, 8 KiB entries fit eight to the burst, the first eight, and then 8 per second.
func TestPutRecordsByteLimit(t *testing.T) {
	d := direct(t)
	stream := localstack.NewStream(t, d, 1)
	p := startProxy(t, kinesisproxy.Config{Limits: limits(func(l *kinesisproxy.Limits) { l.WriteBytes = 64 << 10 })})
	c := via(t, p, false)
	ctx := ctxFor(t, time.Minute)

	put := func() []bool {
		// 8,190 bytes of data and a 2-byte key: 8 KiB as Kinesis counts it.
		es := make([]types.PutRecordsRequestEntry, 20)
		for i := range es {
			es[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("%02d", i)), Data: make([]byte, 8190)}
		}
		out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: es})
		if err != nil {
			t.Fatal(err)
		}
		ok := make([]bool, len(out.Records))
		for i, r := range out.Records {
			ok[i] = r.ErrorCode == nil
		}
		return ok
	}
	t1 := time.Now()
	first := put()
	t2 := time.Now()
	for i, ok := range first {
		if ok != (i < 8) {
			t.Fatalf("entry %d accepted=%v; want exactly entries 0-7 accepted: %v", i, ok, first)
		}
	}
	time.Sleep(500 * time.Millisecond)
	t3 := time.Now()
	second := put()
	t4 := time.Now()
	n := 0
	for _, ok := range second {
		if ok {
			n++
		}
	}
	// 8 KiB entries earn at 8/s between the first call's arrival and the second's.
	lo, hi := int(math.Floor(8*t3.Sub(t2).Seconds())), int(math.Floor(8*t4.Sub(t1).Seconds()))
	if n < lo || n > hi {
		t.Fatalf("second call: %d accepted, want %d..%d", n, lo, hi)
	}
}

// Guards against PutRecord (single) throttled in any other way than Kinesis does it: an
// HTTP 400 the SDK maps to *types.ProvisionedThroughputExceededException.
func TestPutRecordThrottled(t *testing.T) {
	d := direct(t)
	stream := localstack.NewStream(t, d, 1)
	p := startProxy(t, kinesisproxy.Config{Limits: limits(func(l *kinesisproxy.Limits) { l.WriteRecords = 10 })})
	c := via(t, p, false)
	ctx := ctxFor(t, time.Minute)

	start := time.Now()
	ok := 0
	var ptee *types.ProvisionedThroughputExceededException
	for i := range 15 {
		_, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String(fmt.Sprint(i)), Data: []byte("x")})
		switch {
		case err == nil:
			ok++
		case errors.As(err, &ptee):
			if !strings.HasPrefix(aws.ToString(ptee.Message), "Rate exceeded for shard "+shard0) {
				t.Fatalf("message %q", aws.ToString(ptee.Message))
			}
		default:
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if hi := 10 + int(10*time.Since(start).Seconds()); ok < 10 || ok > hi {
		t.Fatalf("%d of 15 calls accepted, want 10..%d", ok, hi)
	}
	cs := p.Counters().Operations["PutRecord"]
	if cs.ThrottledCalls != int64(15-ok) || cs.Forwarded != int64(ok) {
		t.Fatalf("counters %+v for %d accepted", cs, ok)
	}
}

// Guards against a shard map that does not follow a reshard: after a SplitShard, each
// child shard must get its own buckets, so twice what one shard takes goes through once the
// proxy has seen the upstream put a record on a child, whether a PutRecords entry or a
// PutRecord call showed it (two proxies, one for each).
func TestRoutingFollowsSplit(t *testing.T) {
	d := direct(t)
	stream := localstack.NewStream(t, d, 1)
	ctx := ctxFor(t, time.Minute)
	type side struct {
		p     *kinesisproxy.Proxy
		c     *kinesis.Client
		probe func(*kinesis.Client) error
	}
	var sides []side
	for _, probe := range []func(*kinesis.Client) error{
		func(c *kinesis.Client) error {
			_, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("probe"), Data: []byte("x")})
			return err
		},
		func(c *kinesis.Client) error {
			out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries("probe", 1, 1)})
			if err == nil && aws.ToInt32(out.FailedRecordCount) != 0 {
				err = fmt.Errorf("probe failed: %s", aws.ToString(out.Records[0].ErrorCode))
			}
			return err
		},
	} {
		p := startProxy(t, kinesisproxy.Config{Limits: limits(func(l *kinesisproxy.Limits) { l.WriteRecords = 100 })})
		sides = append(sides, side{p: p, c: via(t, p, false), probe: probe})
	}

	// 90 keys on each side of the split point (2^127).
	mid := new(big.Int).Lsh(big.NewInt(1), 127)
	var low, high []types.PutRecordsRequestEntry
	for i := 0; len(low) < 90 || len(high) < 90; i++ {
		key := fmt.Sprintf("k%d", i)
		h := shardmap.HashKey(key)
		e := types.PutRecordsRequestEntry{PartitionKey: aws.String(key), Data: []byte("x")}
		if h.Hi < 1<<63 && len(low) < 90 {
			low = append(low, e)
		} else if h.Hi >= 1<<63 && len(high) < 90 {
			high = append(high, e)
		}
	}
	batch := append(append([]types.PutRecordsRequestEntry{}, low...), high...)
	put := func(c *kinesis.Client) (accepted int, shards map[string]int) {
		out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: batch})
		if err != nil {
			t.Fatal(err)
		}
		shards = map[string]int{}
		for _, r := range out.Records {
			if r.ErrorCode == nil {
				accepted++
				shards[aws.ToString(r.ShardId)]++
			}
		}
		return accepted, shards
	}
	// One shard of 100 records/s: 100 of the 180 go through.
	for i, s := range sides {
		if n, _ := put(s.c); n < 100 || n > 102 {
			t.Fatalf("proxy %d before the split: %d of 180 accepted, want 100 (+ what a few ms earn)", i, n)
		}
	}

	// The split goes through a proxy too (a relayed control-plane call).
	if _, err := sides[0].c.SplitShard(ctx, &kinesis.SplitShardInput{
		StreamName: aws.String(stream), ShardToSplit: aws.String(shard0), NewStartingHashKey: aws.String(mid.String()),
	}); err != nil {
		t.Fatal(err)
	}
	if err := localstack.CreateStream(ctx, d, stream, 1); err != nil { // waits for ACTIVE
		t.Fatal(err)
	}
	// The proxies still predict the parent (whose bucket a second refills); the upstream's
	// answer names a child, and each proxy lists the shards again before its next call.
	time.Sleep(time.Second)
	for i, s := range sides {
		if err := s.probe(s.c); err != nil {
			t.Fatalf("proxy %d probe: %v", i, err)
		}
		if got := s.p.Counters().ShardMapRefreshes; got != 1 {
			t.Fatalf("proxy %d: %d shard map listings before the reshard was noticed, want 1", i, got)
		}
		n, shards := put(s.c)
		if n != 180 || len(shards) != 2 {
			t.Fatalf("proxy %d after the split: %d of 180 accepted on %v, want all 180 on the two children", i, n, shards)
		}
		for id, k := range shards {
			if id == shard0 || k != 90 {
				t.Fatalf("proxy %d: records per shard %v, want 90 on each child", i, shards)
			}
		}
		if got := s.p.Counters().ShardMapRefreshes; got != 2 {
			t.Fatalf("proxy %d: %d shard map listings, want 2 (first use, after the reshard)", i, got)
		}
	}
}

// Guards against a read limit that is not Kinesis's: five GetRecords calls a second per
// shard, then HTTP 400 ProvisionedThroughputExceededException, typed by the SDK; and the
// proxy's iterators still read the records.
func TestGetRecordsCallLimit(t *testing.T) {
	d := direct(t)
	stream := localstack.NewStream(t, d, 1)
	p := startProxy(t, kinesisproxy.Config{Limits: kinesisproxy.DefaultLimits()})
	c := via(t, p, false)
	ctx := ctxFor(t, time.Minute)

	if _, err := d.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("k"), Data: []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(stream), ShardId: aws.String(shard0), ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(aws.ToString(it.ShardIterator), "kpx1|"+stream+"|"+shard0+"|") {
		t.Fatalf("iterator %q is not the proxy's", aws.ToString(it.ShardIterator))
	}
	start := time.Now()
	ok := 0
	iter := it.ShardIterator
	var ptee *types.ProvisionedThroughputExceededException
	for i := range 10 {
		out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		switch {
		case err == nil:
			if i == 0 && (len(out.Records) != 1 || string(out.Records[0].Data) != "hello") {
				t.Fatalf("first read returned %+v", out.Records)
			}
			ok++
			iter = out.NextShardIterator
		case errors.As(err, &ptee):
			if i < 5 {
				t.Fatalf("call %d of the burst throttled", i+1)
			}
		default:
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if hi := 5 + int(5*time.Since(start).Seconds()); ok > hi {
		t.Fatalf("%d of 10 calls answered, want 5..%d", ok, hi)
	}
	time.Sleep(time.Second)
	if _, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter}); err != nil {
		t.Fatalf("after a second: %v", err)
	}
	if got := p.Counters().Operations["GetRecords"].ThrottledCalls; got != int64(10-ok) {
		t.Fatalf("ThrottledCalls %d, want %d", got, 10-ok)
	}
}

// Guards against reads that are not charged their bytes: a read larger than the byte
// bucket leaves the shard owing bytes, and it refuses reads until the debt is repaid.
func TestGetRecordsByteLimit(t *testing.T) {
	d := direct(t)
	stream := localstack.NewStream(t, d, 1)
	p := startProxy(t, kinesisproxy.Config{Limits: limits(func(l *kinesisproxy.Limits) { l.ReadBytes = 20 << 10 })})
	c := via(t, p, false)
	ctx := ctxFor(t, time.Minute)

	// 40 KiB as Kinesis counts it: 4 records of 10,239 bytes and a 1-byte key.
	if _, err := d.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries("", 4, 10239)}); err != nil {
		t.Fatal(err)
	}
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(stream), ShardId: aws.String(shard0), ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil || len(out.Records) != 4 {
		t.Fatalf("read: %d records, %v", len(out.Records), err)
	}
	read := time.Now()
	// Each record counts 10,239 + 2 bytes ("-0"...): the bucket is at 20 KiB - 40,964, which
	// takes just over a second to repay.
	var ptee *types.ProvisionedThroughputExceededException
	if _, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: out.NextShardIterator}); !errors.As(err, &ptee) {
		t.Fatalf("read right after 40 KiB: %v, want ProvisionedThroughputExceededException", err)
	}
	time.Sleep(time.Until(read.Add(700 * time.Millisecond)))
	if _, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: out.NextShardIterator}); !errors.As(err, &ptee) {
		t.Fatalf("read 0.7 s after 40 KiB: %v, want ProvisionedThroughputExceededException", err)
	}
	time.Sleep(time.Until(read.Add(1100 * time.Millisecond)))
	if _, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: out.NextShardIterator}); err != nil {
		t.Fatalf("read 1.1 s after 40 KiB: %v", err)
	}
}
