package examples_test

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/kinesis/aggregation"
	"github.com/shardline/kinesis/internal/shardmap"
	"github.com/shardline/kinesis/localstack"
	"github.com/shardline/kinesis/localstack/kinesisproxy"
)

// The fault matrix (issue 9): the shipped example programs, as separate processes, against
// real Kinesis limits and faults injected by localstack/kinesisproxy, a store that dies, a
// crash, a reshard and a poison record. Every row must lose nothing and stay within its
// duplicate bound, or the test fails. `make test` runs the short matrix (smaller counts, the
// same faults); `make reliability` the full one, printing the table and writing it as JSON:
//
//	go test -count=1 -timeout 30m -run TestReliability -v ./examples -args -reliability.full -reliability.json=reliability.json

var (
	reliabilityFull = flag.Bool("reliability.full", false, "run the full fault matrix (larger counts) rather than the short one")
	reliabilityJSON = flag.String("reliability.json", "", "write the fault matrix as JSON to this file")
)

// size picks the short or the full count.
func size(short, full int) int {
	if *reliabilityFull {
		return full
	}
	return short
}

// matrixRow is one line of the fault matrix.
type matrixRow struct {
	Case string `json:"case"`
	What string `json:"what"`
	// Expected user records; Unique of them delivered (consumer rows: in some -out file;
	// producer rows: readable in the stream); Lost = expected, neither delivered nor reported
	// failed.
	Expected int `json:"expected"`
	Unique   int `json:"unique"`
	Lost     int `json:"lost"`
	// Duplicates beyond the first delivery, and the most the guarantee allows; BoundIs says
	// what the bound counts.
	Duplicates int    `json:"duplicates"`
	Bound      int    `json:"duplicate_bound"`
	BoundIs    string `json:"duplicate_bound_is"`
	// Order counts per-key order violations (within a process's tenure, and of first
	// deliveries across processes; producer rows: of the stream itself).
	Order int `json:"order_violations"`
	// Failed counts records the producer reported failed (each with its error).
	Failed int `json:"reported_failed"`
	// Recover is the time from the fault's end to the first progress after it, in seconds; -1
	// when the case has no fault that ends.
	Recover float64 `json:"recover_seconds"`
	// Wall is the run's duration and Minimum what the Kinesis limits allow at best (0: none).
	Wall    float64 `json:"wall_seconds"`
	Minimum float64 `json:"minimum_seconds"`
	Pass    bool    `json:"pass"`
}

var matrix struct {
	mu   sync.Mutex
	rows []matrixRow
}

func TestReliability(t *testing.T) {
	localstack.Require(t)
	cases := []struct {
		name, what string
		run        func(t *testing.T) matrixRow
	}{
		{"P1a", "producer at the real limits, 100 B aggregated, 4 shards", p1(100, true)},
		{"P1b", "producer at the real limits, 1 KiB plain, 4 shards", p1(1024, false)},
		{"P2", "20% entry InternalFailure, 5% 503, 3% resets, half of them after the write", p2},
		{"P3", "200 ms latency and a 5 s blackout mid-run", p3},
		{"C1", "3 consumer processes, Redis leases, one kill -9, a replacement started", c1},
		{"C2", "consumers' GetRecords: 5% 503, 3% resets, a 5 s blackout of every call", c2},
		{"C3a", "Redis (AOF, fsync always) killed -9 and restarted mid-consumption", c3(true)},
		{"C3b", "Redis without persistence killed -9 and restarted: checkpoints and leases gone", c3(false)},
		{"C4", "DynamoDB store (dynalite) unreachable for 10 s mid-run", c4},
		{"C5", "SplitShard then MergeShards during consumption, 3 workers", c5},
		{"C6a", "a poison record, policy RetryShard (default): the fix deployed after 5 s", c6("retry")},
		{"C6b", "a poison record, policy DeadLetterOnFailure", c6("dead-letter")},
		{"C6c", "a poison record, policy StopOnFailure, restarted with the fix", c6("stop")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.run(t)
			r.Case, r.What = c.name, c.what
			if r.Lost > 0 {
				t.Errorf("%d records lost", r.Lost)
			}
			if r.Duplicates > r.Bound {
				t.Errorf("%d duplicates, over the bound of %d (%s)", r.Duplicates, r.Bound, r.BoundIs)
			}
			r.Pass = !t.Failed()
			matrix.mu.Lock()
			matrix.rows = append(matrix.rows, r)
			matrix.mu.Unlock()
		})
	}
	table := renderMatrix(matrix.rows)
	fmt.Print(table)
	if *reliabilityJSON != "" {
		b, err := json.MarshalIndent(map[string]any{"full": *reliabilityFull, "rows": matrix.rows}, "", "  ")
		if err == nil {
			err = os.WriteFile(*reliabilityJSON, append(b, '\n'), 0o644)
		}
		if err != nil {
			t.Errorf("write %s: %v", *reliabilityJSON, err)
		}
	}
}

func renderMatrix(rows []matrixRow) string {
	var b strings.Builder
	kind := "short"
	if *reliabilityFull {
		kind = "full"
	}
	fmt.Fprintf(&b, "\nfault matrix (%s)\n", kind)
	fmt.Fprintf(&b, "| case | what | expected | unique | lost | duplicates (bound) | order violations | reported failed | recover s | wall s (minimum) | pass |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		rec := "-"
		if r.Recover >= 0 {
			rec = fmt.Sprintf("%.1f", r.Recover)
		}
		wall := fmt.Sprintf("%.1f", r.Wall)
		if r.Minimum > 0 {
			wall += fmt.Sprintf(" (%.1f)", r.Minimum)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d (%d %s) | %d | %d | %s | %s | %v |\n",
			r.Case, r.What, r.Expected, r.Unique, r.Lost, r.Duplicates, r.Bound, r.BoundIs, r.Order, r.Failed, rec, wall, r.Pass)
	}
	return b.String()
}

// producerRun is one producer case: examples/producer through a kinesisproxy with the real
// per-shard limits in front of a kinesalite of the test's own (kinesis-mock takes about 1,000
// records/s, too few to meet the limits of 4 shards).
type producerRun struct {
	n, keys, size int
	aggregate     bool
	rate          float64 // records/s offered, 0 for as fast as possible
	faults        []kinesisproxy.Fault
	faultEnd      time.Duration // when the last fault window ends, since the start; 0 for none
}

func runProducer(t *testing.T, pr producerRun) matrixRow {
	stack := localstack.Require(t)
	upstream := localstack.Kinesalite(t)
	direct := kinesis.NewFromConfig(stack.AWS, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(upstream) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	stream := localstack.UniqueName(t, "reliability-")
	if err := localstack.CreateStream(ctx, direct, stream, 4); err != nil {
		t.Fatal(err)
	}
	proxy, err := kinesisproxy.Start(ctx, kinesisproxy.Config{Upstream: upstream, Limits: kinesisproxy.DefaultLimits(), Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close(context.Background()) })
	env := append(processEnv(stack), "AWS_ENDPOINT_URL_KINESIS="+proxy.URL())
	args := []string{"-stream", stream, "-shards", "4", "-n", fmt.Sprint(pr.n), "-keys", fmt.Sprint(pr.keys),
		"-size", fmt.Sprint(pr.size), "-aggregate=" + strconv.FormatBool(pr.aggregate), "-rate", fmt.Sprint(pr.rate)}
	if err := proxy.SetFaults(pr.faults); err != nil { // windows count from here
		t.Fatal(err)
	}
	began := time.Now()
	recovered := watchRecovery(proxy, began.Add(pr.faultEnd), pr.faultEnd > 0)
	prod := startProcess(t, runDir(t), "producer", binary(t, "producer"), env, args...)
	select {
	case <-prod.exited:
	case <-time.After(8 * time.Minute):
		t.Fatalf("the producer did not finish within 8 minutes")
	}
	sum, err := producerSummary(prod.stdout)
	if err != nil {
		t.Fatalf("producer (%s): %v\n%s", prod.status(), err, fileTail(prod.stderr, 2000))
	}
	counters := proxy.Counters().Operations["PutRecords"]
	copies, misrouted, err := scanStream(ctx, direct, stream)
	if err != nil {
		t.Fatal(err)
	}
	r := matrixRow{Expected: pr.n, Failed: sum.failed, Wall: sum.elapsed.Seconds(), Recover: -1,
		Bound: int(counters.WrittenButFailed), BoundIs: "Kinesis records stored but reported failed"}
	want := expected(pr.n, pr.keys)
	again := map[position]bool{} // Kinesis records that are writes again of stored records
	for id, cs := range copies {
		if !want[id] {
			t.Errorf("the stream holds a record the producer never wrote: %s", id)
			continue
		}
		for _, c := range cs[1:] {
			again[position{c.shard, c.seq, 0}] = true
		}
	}
	r.Unique, r.Duplicates = len(copies), len(again)
	r.Lost = max(0, pr.n-r.Unique-r.Failed)
	r.Order = streamOrderViolations(copies)
	if misrouted > 0 {
		t.Errorf("%d user records stored on a shard their key does not map to", misrouted)
	}
	if prod.exitCode() != 0 && sum.failed == 0 {
		t.Errorf("the producer exited with %s", prod.status())
	}
	// What the limits allow at best: every shard busy at 1 MiB/s and 1,000 Kinesis records/s
	// once its one-second burst is spent.
	bytes := float64(pr.n) * float64(pr.size+len("key-000"))
	records := float64(pr.n)
	if pr.aggregate {
		records = bytes / 51200 // aggregates of up to the KPL size, the producer's default
	}
	r.Minimum = max((bytes-4<<20)/(4<<20), (records-4000)/4000, 0)
	if pr.rate > 0 {
		r.Minimum = max(r.Minimum, float64(pr.n)/pr.rate)
	}
	if d, ok := recovered(); ok {
		r.Recover = d.Seconds()
	}
	t.Logf("producer: %s; proxy PutRecords counters: %+v", sum.line, counters)
	return r
}

// watchRecovery polls the proxy until PutRecords forwards again after end; the returned
// function reports how long after end that was.
func watchRecovery(p *kinesisproxy.Proxy, end time.Time, on bool) func() (time.Duration, bool) {
	if !on {
		return func() (time.Duration, bool) { return 0, false }
	}
	var mu sync.Mutex
	var at time.Time
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var before int64 = -1
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			n := p.Counters().Operations["PutRecords"].Forwarded
			now := time.Now()
			if now.Before(end) {
				before = n
				continue
			}
			if before >= 0 && n > before {
				mu.Lock()
				at = now
				mu.Unlock()
				return
			}
			before = max(before, n)
		}
	}()
	return func() (time.Duration, bool) {
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		if at.IsZero() {
			return 0, false
		}
		return at.Sub(end), true
	}
}

type producerResult struct {
	line    string
	failed  int
	elapsed time.Duration
}

var summaryRE = regexp.MustCompile(`^done: .* (\d+) failed, (\d+) refused by Put; .* elapsed (\S+)$`)

// producerSummary reads the "done:" line examples/producer prints.
func producerSummary(path string) (producerResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return producerResult{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := summaryRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		failed, _ := strconv.Atoi(m[1])
		refused, _ := strconv.Atoi(m[2])
		elapsed, err := time.ParseDuration(m[3])
		if err != nil {
			return producerResult{}, err
		}
		return producerResult{line: sc.Text(), failed: failed + refused, elapsed: elapsed}, nil
	}
	return producerResult{}, fmt.Errorf("no summary line in %s", path)
}

// storedCopy is one readable copy of a produced record in the stream.
type storedCopy struct {
	shard, seq string
	sub        int
}

// scanStream reads every shard from its start and returns every readable copy of each
// record of examples/producer, in stream order per shard, and how many user records sit on a
// shard whose hash-key range does not hold their key.
func scanStream(ctx context.Context, client *kinesis.Client, stream string) (map[string][]storedCopy, int, error) {
	shards, err := shardmap.List(ctx, client, stream, nil)
	if err != nil {
		return nil, 0, err
	}
	copies := make(map[string][]storedCopy)
	misrouted := 0
	var parser aggregation.Parser
	for _, s := range shards {
		rng, err := shardmap.ShardRange(s)
		if err != nil {
			return nil, 0, err
		}
		it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(stream), ShardId: s.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			return nil, 0, err
		}
		for iter := it.ShardIterator; iter != nil; {
			out, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				return nil, 0, err
			}
			for _, r := range out.Records {
				parser.Parse(r.Data)
				for i := range parser.Len() {
					ur := parser.Record(i)
					key := aws.ToString(r.PartitionKey)
					h := shardmap.HashKey(key)
					if parser.Format() == aggregation.Aggregated {
						key = string(ur.PartitionKey)
						h = shardmap.HashKeyBytes(ur.PartitionKey)
						if len(ur.ExplicitHashKey) > 0 {
							h, _ = shardmap.ParseHash(string(ur.ExplicitHashKey))
						}
					}
					if !rng.Contains(h) {
						misrouted++
						continue
					}
					if k, n, ok := recordID(ur.Data, key); ok {
						id := idString(k, n)
						copies[id] = append(copies[id], storedCopy{aws.ToString(s.ShardId), aws.ToString(r.SequenceNumber), ur.SubSequence})
					}
				}
			}
			iter = out.NextShardIterator
			if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
				break
			}
		}
	}
	return copies, misrouted, nil
}

// streamOrderViolations counts keys whose records are stored out of their counters' order:
// the first copy of counter c+1 before the first copy of counter c on their shard.
func streamOrderViolations(copies map[string][]storedCopy) int {
	type first struct {
		counter int
		at      storedCopy
	}
	byKey := map[string][]first{}
	for id, cs := range copies {
		key, n, _ := strings.Cut(id, ":")
		c, _ := strconv.Atoi(n)
		byKey[key] = append(byKey[key], first{c, cs[0]})
	}
	violations := 0
	for _, fs := range byKey {
		for i := range fs {
			for j := range fs {
				a, b := fs[i], fs[j]
				if a.counter < b.counter && a.at.shard == b.at.shard && seqAfter(a.at, b.at) {
					violations++
				}
			}
		}
	}
	return violations
}

// seqAfter reports whether a is stored after b on their shard.
func seqAfter(a, b storedCopy) bool {
	if len(a.seq) != len(b.seq) {
		return len(a.seq) > len(b.seq)
	}
	if a.seq != b.seq {
		return a.seq > b.seq
	}
	return a.sub > b.sub
}

func p1(recordSize int, aggregate bool) func(t *testing.T) matrixRow {
	return func(t *testing.T) matrixRow {
		n := size(4000, 40000)
		if aggregate {
			n = size(40000, 400000)
		}
		return runProducer(t, producerRun{n: n, keys: 1000, size: recordSize, aggregate: aggregate})
	}
}

func p2(t *testing.T) matrixRow {
	op := "PutRecords"
	return runProducer(t, producerRun{n: size(20000, 100000), keys: 1000, size: 100, aggregate: true,
		faults: []kinesisproxy.Fault{
			{Op: op, Kind: kinesisproxy.EntryInternalFailure, Rate: 0.10},
			{Op: op, Kind: kinesisproxy.EntryInternalFailure, Rate: 0.10, After: true},
			{Op: op, Kind: kinesisproxy.HTTP503, Rate: 0.025},
			{Op: op, Kind: kinesisproxy.HTTP503, Rate: 0.025, After: true},
			{Op: op, Kind: kinesisproxy.Reset, Rate: 0.015},
			{Op: op, Kind: kinesisproxy.Reset, Rate: 0.015, After: true},
		}})
}

func p3(t *testing.T) matrixRow {
	const blackoutAt, blackout = 3 * time.Second, 5 * time.Second
	return runProducer(t, producerRun{n: size(16000, 40000), keys: 1000, size: 100, aggregate: true, rate: float64(size(2000, 4000)),
		faultEnd: blackoutAt + blackout,
		faults: []kinesisproxy.Fault{
			{Kind: kinesisproxy.Latency, Latency: 200 * time.Millisecond, Jitter: 50 * time.Millisecond},
			{Kind: kinesisproxy.Blackout, Start: blackoutAt, Duration: blackout},
		}})
}
