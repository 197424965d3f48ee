package kinesisproxy_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"

	"github.com/shardline/kinesis/internal/awserr"
	"github.com/shardline/kinesis/localstack"
	"github.com/shardline/kinesis/localstack/kinesisproxy"
)

// putFailures puts n records through c and returns the indices of the entries answered
// InternalFailure; any other error code fails the test.
func putFailures(t *testing.T, c *kinesis.Client, stream string, n int) []int {
	t.Helper()
	out, err := c.PutRecords(ctxFor(t, 30*time.Second), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries("k", n, 8)})
	if err != nil {
		t.Fatal(err)
	}
	var failed []int
	for i, r := range out.Records {
		switch aws.ToString(r.ErrorCode) {
		case "":
		case "InternalFailure":
			if aws.ToString(r.ErrorMessage) != "Internal service failure." {
				t.Fatalf("entry %d: message %q", i, aws.ToString(r.ErrorMessage))
			}
			failed = append(failed, i)
		default:
			t.Fatalf("entry %d: %s", i, aws.ToString(r.ErrorCode))
		}
	}
	if int(aws.ToInt32(out.FailedRecordCount)) != len(failed) {
		t.Fatalf("FailedRecordCount %d for %d failed entries", aws.ToInt32(out.FailedRecordCount), len(failed))
	}
	return failed
}

// Guards against entry faults that do not behave as Kinesis's partial failures: failed
// entries come back InternalFailure in place; before forwarding they are not written,
// after forwarding they are (a retry duplicates them); a seed repeats its pattern.
func TestEntryInternalFailure(t *testing.T) {
	d := direct(t)
	stream := localstack.NewStream(t, d, 1)

	before := startProxy(t, kinesisproxy.Config{Faults: []kinesisproxy.Fault{{Op: "PutRecords", Kind: kinesisproxy.EntryInternalFailure}}})
	if got := putFailures(t, via(t, before, false), stream, 10); len(got) != 10 {
		t.Fatalf("rate 0 (every entry): %d of 10 failed", len(got))
	}
	if n := len(readShard(t, d, stream, shard0)); n != 0 {
		t.Fatalf("%d records written by entries failed before forwarding", n)
	}
	if cs := before.Counters().Operations["PutRecords"]; cs.Forwarded != 0 || cs.Faults["entry-internal-failure"] != 10 {
		t.Fatalf("counters %+v", cs)
	}

	after := startProxy(t, kinesisproxy.Config{Faults: []kinesisproxy.Fault{{Kind: kinesisproxy.EntryInternalFailure, After: true}}})
	if got := putFailures(t, via(t, after, false), stream, 10); len(got) != 10 {
		t.Fatalf("after forwarding: %d of 10 failed", len(got))
	}
	if n := len(readShard(t, d, stream, shard0)); n != 10 {
		t.Fatalf("%d records written by entries failed after forwarding, want 10", n)
	}
	if cs := before.Counters().Operations["PutRecords"]; cs.WrittenButFailed != 0 {
		t.Errorf("written_but_failed = %d for faults before forwarding, want 0", cs.WrittenButFailed)
	}
	if cs := after.Counters().Operations["PutRecords"]; cs.WrittenButFailed != 10 {
		t.Errorf("written_but_failed = %d, want the 10 entries stored and reported failed", cs.WrittenButFailed)
	}

	// Rate 0.3 over 100 entries: the same seed fails the same entries.
	pattern := func(seed uint64) []int {
		p := startProxy(t, kinesisproxy.Config{Seed: seed, Faults: []kinesisproxy.Fault{{Kind: kinesisproxy.EntryInternalFailure, Rate: 0.3}}})
		return putFailures(t, via(t, p, false), stream, 100)
	}
	a, b, c := pattern(42), pattern(42), pattern(43)
	if !slices.Equal(a, b) || slices.Equal(a, c) {
		t.Fatalf("seed 42 failed %v then %v; seed 43 %v", a, b, c)
	}
	if len(a) < 12 || len(a) > 48 { // Binomial(100, 0.3): 30 ± 4 sd
		t.Fatalf("%d of 100 entries failed at rate 0.3", len(a))
	}
	if n := len(readShard(t, d, stream, shard0)); n != 10+3*100-len(a)-len(b)-len(c) {
		t.Fatalf("shard holds %d records, want the 10 earlier plus every entry not failed", n)
	}
}

// statusOf returns the HTTP status of an SDK error, 0 without one.
func statusOf(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// Guards against HTTP faults the SDK would not treat as AWS's: 500 InternalFailure and 503
// ServiceUnavailable are retried (three attempts by default) and typed; After leaves the
// write done.
func TestHTTPFaults(t *testing.T) {
	d := direct(t)
	stream := localstack.NewStream(t, d, 1)
	put := func(c *kinesis.Client) error {
		_, err := c.PutRecord(ctxFor(t, 30*time.Second), &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("k"), Data: []byte("x")})
		return err
	}
	for _, tc := range []struct {
		kind   kinesisproxy.FaultKind
		status int
		code   string
	}{{kinesisproxy.HTTP500, 500, "InternalFailure"}, {kinesisproxy.HTTP503, 503, "ServiceUnavailable"}} {
		p := startProxy(t, kinesisproxy.Config{Faults: []kinesisproxy.Fault{{Op: "PutRecord", Kind: tc.kind}}})
		err := put(via(t, p, true))
		var api smithy.APIError
		if !errors.As(err, &api) || api.ErrorCode() != tc.code || statusOf(err) != tc.status || !awserr.Retryable(err) {
			t.Fatalf("%s: %v (status %d)", tc.kind, err, statusOf(err))
		}
		if got := p.Counters().Operations["PutRecord"].Faults[tc.kind.String()]; got != 3 {
			t.Fatalf("%s: the SDK made %d attempts, want 3 (it retries these)", tc.kind, got)
		}
	}
	if n := len(readShard(t, d, stream, shard0)); n != 0 {
		t.Fatalf("%d records written by calls failed before forwarding", n)
	}

	p := startProxy(t, kinesisproxy.Config{Faults: []kinesisproxy.Fault{{Kind: kinesisproxy.HTTP500, After: true}}})
	if err := put(via(t, p, false)); statusOf(err) != 500 {
		t.Fatalf("After: %v", err)
	}
	if n := len(readShard(t, d, stream, shard0)); n != 1 {
		t.Fatalf("%d records after a call failed after forwarding, want 1", n)
	}
	if got := p.Counters().Operations["PutRecord"].WrittenButFailed; got != 1 {
		t.Errorf("written_but_failed = %d, want 1", got)
	}
}

// Guards against resets that are not connection errors to the client: no HTTP status, no
// AWS error code, retryable; After leaves the write done.
func TestReset(t *testing.T) {
	d := direct(t)
	stream := localstack.NewStream(t, d, 1)
	for _, after := range []bool{false, true} {
		p := startProxy(t, kinesisproxy.Config{Faults: []kinesisproxy.Fault{{Op: "PutRecord", Kind: kinesisproxy.Reset, After: after}}})
		c := via(t, p, false)
		// A first call that is not reset opens the connection, as a client's would be.
		if _, err := c.ListShards(ctxFor(t, 10*time.Second), &kinesis.ListShardsInput{StreamName: aws.String(stream)}); err != nil {
			t.Fatal(err)
		}
		_, err := c.PutRecord(ctxFor(t, 10*time.Second), &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("k"), Data: []byte("x")})
		var api smithy.APIError
		if err == nil || errors.As(err, &api) || statusOf(err) != 0 || awserr.Label(err) != "connection" || !awserr.Retryable(err) {
			t.Fatalf("after=%v: %v, want a retryable connection error", after, err)
		}
		t.Logf("after=%v: %v", after, err)
		if got := p.Counters().Operations["PutRecord"]; got.Faults["reset"] != 1 || got.Forwarded != map[bool]int64{false: 0, true: 1}[after] {
			t.Fatalf("after=%v: counters %+v", after, got)
		}
	}
	if n := len(readShard(t, d, stream, shard0)); n != 1 {
		t.Fatalf("%d records, want 1: the reset after forwarding", n)
	}
}

// Guards against latency that is not added, or not within Latency ± Jitter.
func TestLatency(t *testing.T) {
	d := direct(t)
	stream := localstack.NewStream(t, d, 1)
	p := startProxy(t, kinesisproxy.Config{})
	c := via(t, p, false)
	call := func() time.Duration {
		start := time.Now()
		if _, err := c.DescribeStreamSummary(ctxFor(t, 10*time.Second), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)}); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	base := call()
	if err := p.SetFaults([]kinesisproxy.Fault{
		{Op: "DescribeStreamSummary", Kind: kinesisproxy.Latency, Latency: 200 * time.Millisecond, Jitter: 50 * time.Millisecond},
	}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if got := call(); got < 150*time.Millisecond || got > base+250*time.Millisecond+200*time.Millisecond {
			t.Fatalf("call took %v (without the fault %v), want 150-250 ms more", got, base)
		}
	}
	if err := p.SetFaults([]kinesisproxy.Fault{{Kind: kinesisproxy.Latency, Latency: 300 * time.Millisecond, After: true}}); err != nil {
		t.Fatal(err)
	}
	if got := call(); got < 300*time.Millisecond {
		t.Fatalf("call with 300 ms after forwarding took %v", got)
	}
	if got := p.Counters().Operations["DescribeStreamSummary"].Faults["latency"]; got != 6 {
		t.Fatalf("latency faults counted %d, want 6", got)
	}
}

// Guards against blackouts that miss their window: failing ones answer 503 while open and
// nothing after; hanging ones hold a call until the window closes, or until the client
// gives up.
func TestBlackout(t *testing.T) {
	d := direct(t)
	stream := localstack.NewStream(t, d, 1)
	p := startProxy(t, kinesisproxy.Config{})
	c := via(t, p, false)
	describe := func(ctx context.Context) error {
		_, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		return err
	}

	if err := p.SetFaults([]kinesisproxy.Fault{{Kind: kinesisproxy.Blackout, Duration: 500 * time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	opened := time.Now()
	var api smithy.APIError
	if err := describe(ctxFor(t, 10*time.Second)); statusOf(err) != 503 || !errors.As(err, &api) || api.ErrorCode() != "ServiceUnavailable" {
		t.Fatalf("during the blackout: %v", err)
	}
	time.Sleep(time.Until(opened.Add(600 * time.Millisecond)))
	if err := describe(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatalf("after the blackout: %v", err)
	}

	if err := p.SetFaults([]kinesisproxy.Fault{{Kind: kinesisproxy.Blackout, Hang: true, Duration: time.Second}}); err != nil {
		t.Fatal(err)
	}
	opened = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := describe(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a client that gives up during a hang: %v", err)
	}
	if err := describe(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatalf("a client that waits out the hang: %v", err)
	}
	if waited := time.Since(opened); waited < time.Second {
		t.Fatalf("the hang ended after %v, before its 1 s window", waited)
	}
	if got := p.Counters().Operations["DescribeStreamSummary"].Faults["blackout"]; got != 3 {
		t.Fatalf("blackout faults counted %d, want 3", got)
	}
}

// Guards against Close waiting on (or leaking) a call held by a hang that never ends: the
// call is answered 503, Close returns at once, a second Close is a no-op, and TestMain's
// goleak check finds nothing left.
func TestCloseEndsHangs(t *testing.T) {
	localstack.Kinesis(t)
	s, _ := localstack.Get(context.Background())
	p, err := kinesisproxy.Start(context.Background(), kinesisproxy.Config{Upstream: s.Kinesis,
		Faults: []kinesisproxy.Fault{{Kind: kinesisproxy.Blackout, Hang: true}}})
	if err != nil {
		t.Fatal(err)
	}
	c := via(t, p, false)
	done := make(chan error, 1)
	go func() {
		_, err := c.ListStreams(context.Background(), &kinesis.ListStreamsInput{})
		done <- err
	}()
	for p.Counters().Total.Requests == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	ctx := ctxFor(t, 5*time.Second)
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Close took %v with a call hanging", took)
	}
	if err := <-done; statusOf(err) != http.StatusServiceUnavailable {
		t.Fatalf("the hanging call got %v, want 503", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := c.ListStreams(ctxFor(t, 5*time.Second), &kinesis.ListStreamsInput{}); err == nil {
		t.Fatal("a call after Close succeeded")
	}
}

// Guards against Close hanging on, or leaking, a call stuck upstream: when ctx ends first,
// Close cuts the call off, says so, and still leaves no goroutine behind.
func TestCloseCutsOffStuckCalls(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	accepted := make(chan struct{})
	go func() { // an upstream that accepts and never answers
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	defer func() {
		ln.Close()
		<-accepted
		for _, c := range conns {
			c.Close()
		}
	}()
	p, err := kinesisproxy.Start(context.Background(), kinesisproxy.Config{Upstream: "http://" + ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	c := via(t, p, false)
	done := make(chan error, 1)
	go func() {
		_, err := c.ListStreams(context.Background(), &kinesis.ListStreamsInput{})
		done <- err
	}()
	for p.Counters().Total.Forwarded == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with a stuck call: %v, want DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Close took %v", took)
	}
	if err := <-done; err == nil {
		t.Fatal("the stuck call succeeded")
	}
}
