package examples_test

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/kinesis/checkpoint"
	ddbstore "github.com/shardline/kinesis/checkpoint/dynamodb"
	redisstore "github.com/shardline/kinesis/checkpoint/redis"
	"github.com/shardline/kinesis/localstack"
)

// Issue 8: a consumer process killed with SIGKILL loses nothing. A producer process writes
// 3,000 plain records over 200 keys in about 10 s to a 4-shard stream; three consumer
// processes of one group (default worker IDs, 3 s leases, a checkpoint after every batch of
// at most 10 records) read it; after 3 s the one holding the most leases is killed with
// SIGKILL and a fourth process started. Every record must reach some -out file, in per-key
// order; no record may be checkpointed before it is in a file; the only duplicates allowed
// are the killed process's last batch of each shard it held, so at most 10 per shard (see
// check). Records are not aggregated so that a batch, and with it that bound, counts user
// records. The examples/consumer of before issue 8 failed here: it checkpointed batches
// still sitting in an unflushed buffer.
func TestKillNineConsumer(t *testing.T) {
	for _, store := range []string{"redis", "dynamodb"} {
		t.Run(store, func(t *testing.T) {
			s := newScenario(t, store, 4, 3*time.Second)
			const n, keys = 3000, 200
			args := []string{"-lease", s.lease.String(), "-max-records", "10"}
			for i := 1; i <= 3; i++ {
				s.startConsumer(fmt.Sprintf("consumer-%d", i), args...)
			}
			prod := s.startProducer(n, keys, 300, "-aggregate=false")
			s.sleepUntil(3 * time.Second)
			if victim := s.mostLoaded(5 * time.Second); victim != nil {
				s.kill(victim)
			}
			s.startConsumer("consumer-4", args...)
			s.finish(prod, n, keys, 90*time.Second)
		})
	}
}

// reshardRun is one timing of TestReshardAndKill, in time since the producer started.
type reshardRun struct {
	store              string
	split, kill, merge time.Duration
}

// Issue 14: resharding while a worker dies loses nothing and keeps per-key order. A producer
// process writes 6,000 records over 200 keys at 400 records/s to a 2-shard stream; three
// consumer processes (w1-w3, 4 s leases) read it. Shard 0 is split (children: the lower and
// the upper half); the process holding the upper child's lease is killed with SIGKILL and a
// fourth (w4) started; then the upper child is merged with shard 1, its neighbour. Every
// record must be delivered; first deliveries must keep per-key order across workers and
// shards (a child read before its parents finished breaks it); duplicates only from the
// killed process's last batches. Each run uses different times; -short runs one per store.
func TestReshardAndKill(t *testing.T) {
	runs := []reshardRun{
		{"redis", 3 * time.Second, 7 * time.Second, 10 * time.Second},
		{"dynamodb", 3 * time.Second, 7 * time.Second, 10 * time.Second},
		{"redis", 2500 * time.Millisecond, 6 * time.Second, 9500 * time.Millisecond},
		{"redis", 3500 * time.Millisecond, 8 * time.Second, 11 * time.Second},
		{"redis", 2 * time.Second, 5 * time.Second, 8 * time.Second},
		{"redis", 4 * time.Second, 7500 * time.Millisecond, 12 * time.Second},
	}
	if testing.Short() {
		runs = runs[:2]
	}
	count := map[string]int{}
	for _, r := range runs {
		count[r.store]++
		t.Run(fmt.Sprintf("%s-%d", r.store, count[r.store]), func(t *testing.T) {
			t.Logf("split at %v, kill at %v, merge at %v", r.split, r.kill, r.merge)
			reshardAndKill(t, r)
		})
	}
}

func reshardAndKill(t *testing.T, r reshardRun) {
	s := newScenario(t, r.store, 2, 4*time.Second)
	const n, keys = 6000, 200
	args := []string{"-lease", s.lease.String(), "-max-records", "10"}
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("w%d", i)
		s.startConsumer(id, slices.Concat(args, []string{"-id", id})...)
	}
	prod := s.startProducer(n, keys, 400)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	s.sleepUntil(r.split)
	_, upper, err := split(ctx, s.kinesis, s.stream, shardID(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%5.1fs: split %s; upper child %s", s.since(), shardID(0), upper)

	// The upper child is ready once shard 0 is finished, a second or so after the split, and
	// a worker with room for it takes it at its next balancing run (every half lease). Ten
	// seconds after the kill time is at least twelve after the split.
	s.sleepUntil(r.kill)
	if victim := s.owner(upper, 10*time.Second); victim != nil {
		s.kill(victim)
	} else {
		t.Errorf("%5.1fs: no worker took the lease of %s within 10s of the kill time", s.since(), upper)
	}
	s.startConsumer("w4", slices.Concat(args, []string{"-id", "w4"})...)

	s.sleepUntil(r.merge)
	child, err := merge(ctx, s.kinesis, s.stream, upper, shardID(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%5.1fs: merged %s and %s into %s", s.since(), upper, shardID(1), child)
	s.finish(prod, n, keys, 90*time.Second)
}

func shardID(i int) string { return fmt.Sprintf("shardId-%012d", i) }

// scenario is example processes working on one fresh stream, consumer group and store.
type scenario struct {
	t             *testing.T
	kinesis       *kinesis.Client
	store         checkpoint.Store // the test's view of the lease table
	storeArgs     []string         // how the consumer processes reach the same store
	stream, group string
	env           []string
	dir           string
	consumers     []*consumerProcess
	lease         time.Duration    // the consumers' lease duration
	began         time.Time        // when the producer started
	killed        *consumerProcess // killed with SIGKILL, or nil
	heldAtKill    map[string]bool  // the shards whose leases it held when it died
	failover      *failover
	// consumerEnv, when set, is the consumers' environment instead of env (a fault proxy in
	// front of Kinesis or the store for them, while the producer writes directly).
	consumerEnv []string
	// dupLimit, when at least 0, replaces the kill rule for duplicates: any duplicate is
	// allowed up to dupLimit in all (an outage of the store re-delivers the last batch of every
	// shard whose lease moved, whichever process held it).
	dupLimit int
	// rewound, when set, is when the store lost every lease and checkpoint (see
	// outcome.rewoundNs).
	rewound time.Time
}

type consumerProcess struct {
	*process
	out *outFile
	id  string // worker ID, as the process printed it
}

func newScenario(t *testing.T, store string, shards int, lease time.Duration) *scenario {
	stack := localstack.Require(t)
	s := &scenario{t: t, kinesis: localstack.Kinesis(t), env: processEnv(stack), dir: runDir(t), lease: lease, began: time.Now(), dupLimit: -1}
	s.stream = localstack.NewStream(t, s.kinesis, shards)
	s.group = localstack.UniqueName(t, "group-")
	switch store {
	case "redis":
		rdb := localstack.Redis(t)
		prefix := localstack.RedisPrefix(t, rdb)
		st, err := redisstore.New(rdb, redisstore.WithPrefix(prefix))
		if err != nil {
			t.Fatal(err)
		}
		s.store, s.storeArgs = st, []string{"-store", "redis", "-redis-prefix", prefix}
	case "dynamodb":
		ddb := localstack.DynamoDB(t)
		table := localstack.NewTable(t, ddb, func(ctx context.Context, name string) error {
			return ddbstore.CreateTable(ctx, ddb, name)
		})
		st, err := ddbstore.New(ddb, table)
		if err != nil {
			t.Fatal(err)
		}
		s.store, s.storeArgs = st, []string{"-store", "dynamodb", "-table", table}
	default:
		t.Fatalf("unknown store %q", store)
	}
	return s
}

// since is the time since the producer started, in seconds.
func (s *scenario) since() float64 { return time.Since(s.began).Seconds() }

func (s *scenario) sleepUntil(d time.Duration) { time.Sleep(time.Until(s.began.Add(d))) }

func (s *scenario) startConsumer(name string, extra ...string) *consumerProcess {
	s.t.Helper()
	out := filepath.Join(s.dir, name+".jsonl")
	args := slices.Concat([]string{"-stream", s.stream, "-group", s.group, "-out", out, "-v"}, s.storeArgs, extra)
	env := s.env
	if s.consumerEnv != nil {
		env = s.consumerEnv
	}
	p := startProcess(s.t, s.dir, name, binary(s.t, "consumer"), env, args...)
	line, err := p.stdoutLine("worker ", 30*time.Second)
	if err != nil {
		s.t.Fatal(err)
	}
	c := &consumerProcess{process: p, out: &outFile{path: out}, id: strings.Fields(line)[1]}
	s.consumers = append(s.consumers, c)
	return c
}

func (s *scenario) startProducer(n, keys int, rate float64, extra ...string) *process {
	s.t.Helper()
	args := slices.Concat([]string{"-stream", s.stream, "-n", fmt.Sprint(n), "-keys", fmt.Sprint(keys), "-rate", fmt.Sprint(rate)}, extra)
	p := startProcess(s.t, s.dir, "producer", binary(s.t, "producer"), s.env, args...)
	s.began = time.Now()
	return p
}

// leases reads the lease table.
func (s *scenario) leases() ([]checkpoint.Lease, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.store.ListLeases(ctx, s.group, s.stream)
}

// byID returns the running consumer process with worker ID id.
func (s *scenario) byID(id string) *consumerProcess {
	for _, c := range s.consumers {
		if c.id == id && !c.done() {
			return c
		}
	}
	return nil
}

// mostLoaded waits up to d for a running consumer process to hold a lease and returns the one
// holding the most.
func (s *scenario) mostLoaded(d time.Duration) *consumerProcess {
	deadline := time.Now().Add(d)
	for {
		rows, err := s.leases()
		held := map[*consumerProcess]int{}
		for _, l := range rows {
			if c := s.byID(l.Owner); c != nil && !l.Checkpoint.ShardEnd {
				held[c]++
			}
		}
		var best *consumerProcess
		for _, c := range s.consumers {
			if held[c] > held[best] {
				best = c
			}
		}
		if best != nil {
			return best
		}
		if time.Now().After(deadline) {
			s.t.Errorf("%5.1fs: no consumer process held a lease within %v (last error %v)", s.since(), d, err)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// owner waits up to d for a running consumer process to hold the lease of shard and returns
// it.
func (s *scenario) owner(shard string, d time.Duration) *consumerProcess {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		rows, _ := s.leases()
		for _, l := range rows {
			if l.Shard == shard {
				if c := s.byID(l.Owner); c != nil {
					return c
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// kill kills c with SIGKILL and notes the shards whose leases it held when it died (no other
// worker can take them for a lease duration, so the table read right after shows them).
func (s *scenario) kill(c *consumerProcess) {
	c.kill9()
	rows, err := s.leases()
	if err != nil {
		s.t.Fatalf("read the lease table after the kill: %v", err)
	}
	s.killed, s.heldAtKill = c, map[string]bool{}
	var held []string
	for _, l := range rows {
		if l.Owner == c.id {
			s.heldAtKill[l.Shard] = true
			held = append(held, l.Shard)
		}
	}
	slices.Sort(held)
	s.t.Logf("%5.1fs: killed %s (worker %s, pid %d) with SIGKILL; it held %v", s.since(), c.name, c.id, c.pid(), held)
	s.failover = s.watchFailover(c.id, held)
}

// failover records when each shard a killed worker held moved on: another worker took its
// lease (or finished it). The dead worker cannot change its rows, so any change is that.
type failover struct {
	killedAt time.Time
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	mu       sync.Mutex
	moved    map[string]time.Duration // shard -> time after the kill
}

// watchFailover polls the lease table until every shard in held moved on or stop is closed.
func (s *scenario) watchFailover(dead string, held []string) *failover {
	f := &failover{killedAt: time.Now(), stop: make(chan struct{}), done: make(chan struct{}), moved: map[string]time.Duration{}}
	go func() {
		defer close(f.done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			rows, err := s.leases()
			f.mu.Lock()
			for _, l := range rows {
				if _, seen := f.moved[l.Shard]; !seen && slices.Contains(held, l.Shard) && err == nil && l.Owner != dead {
					f.moved[l.Shard] = time.Since(f.killedAt)
				}
			}
			all := len(f.moved) == len(held)
			f.mu.Unlock()
			if all {
				return
			}
			select {
			case <-f.stop:
				return
			case <-tick.C:
			}
		}
	}()
	s.t.Cleanup(f.halt)
	return f
}

// halt stops the watcher and waits for it.
func (f *failover) halt() {
	f.stopOnce.Do(func() { close(f.stop) })
	<-f.done
}

// check stops the watcher and reports every shard that did not move on within bound.
func (f *failover) check(held map[string]bool, bound time.Duration) []string {
	f.halt()
	f.mu.Lock()
	defer f.mu.Unlock()
	var late []string
	for shard := range held {
		if d, ok := f.moved[shard]; !ok {
			late = append(late, shard+" never")
		} else if d > bound {
			late = append(late, fmt.Sprintf("%s after %.1fs", shard, d.Seconds()))
		}
	}
	slices.Sort(late)
	return late
}

// waitResult is how waiting for the records ended.
type waitResult struct {
	complete bool
	after    time.Duration // since the producer started
	note     string        // why waiting ended without every record
	// behind and unreached split the records missing at the end: behind their shard's
	// checkpoint (acknowledged, so no worker will read them again: lost), or not.
	behind, unreached []string
	// acked are the records that some poll found behind their shard's checkpoint while no
	// -out file held them, with when: acknowledged before their output was written. They
	// may have appeared later (a buffered writer) or never (lost).
	acked map[string]time.Duration
}

// await polls the -out files until they hold every record, the producer failed, or bound
// passed since the producer finished. Once the producer is done it locates every record in
// the stream and, at every poll, compares what is missing from the files with the
// checkpoints: a record behind its shard's checkpoint must be in a file already. When every
// missing record is behind its checkpoint, waiting longer cannot help and await returns.
func (s *scenario) await(prod *process, n, keys int, bound time.Duration) waitResult {
	want := expected(n, keys)
	got := make(map[string]bool, n)
	counted := make([]int, len(s.consumers))
	var located map[string]stored
	var producerDone time.Time
	res := waitResult{acked: make(map[string]time.Duration)}
	behindBefore := -1
	for {
		// The lease table first: a record checkpointed by then was written by then, so the
		// files read next hold it.
		rows, leaseErr := s.leases()
		for i, c := range s.consumers {
			if err := c.out.poll(); err != nil {
				s.t.Errorf("read %s: %v", c.out.path, err)
			}
			for _, d := range c.out.lines[counted[i]:] {
				if k, ctr, ok := recordID(d.Data, d.PartitionKey); ok && want[idString(k, ctr)] {
					got[idString(k, ctr)] = true
				}
			}
			counted[i] = len(c.out.lines)
		}
		res.after = time.Since(s.began)
		if len(got) == n {
			res.complete = true
			return res
		}
		if prod.done() && producerDone.IsZero() {
			producerDone = time.Now()
			if code := prod.exitCode(); code != 0 {
				res.note = fmt.Sprintf("the producer failed (%s)", prod.status())
				return res
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			var err error
			located, err = locate(ctx, s.kinesis, s.stream)
			cancel()
			if err != nil {
				s.t.Logf("locate the records in the stream: %v", err)
			}
		}
		if located != nil && leaseErr == nil {
			checkpoints := make(map[string]checkpoint.Position)
			for _, l := range rows {
				checkpoints[l.Shard] = l.Checkpoint
			}
			res.behind, res.unreached = res.behind[:0], res.unreached[:0]
			for id := range want {
				if got[id] {
					continue
				}
				at, ok := located[id]
				cp := checkpoints[at.shard]
				if ok && (cp.ShardEnd || (!cp.IsZero() && at.pos.Compare(cp) <= 0)) {
					res.behind = append(res.behind, id)
					if _, seen := res.acked[id]; !seen {
						res.acked[id] = res.after
					}
				} else {
					res.unreached = append(res.unreached, id)
				}
			}
			// Positions never move back, so what is behind stays behind; two polls in a
			// row agreeing leave no doubt.
			if len(res.unreached) == 0 && len(res.behind) == behindBefore {
				res.note = "every missing record is behind its shard's checkpoint"
				return res
			}
			behindBefore = len(res.behind)
		}
		if !producerDone.IsZero() && time.Since(producerDone) > bound {
			res.note = fmt.Sprintf("gave up %v after the producer finished", bound)
			return res
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// finished is what finish found.
type finished struct {
	v    *verdict
	wait waitResult
}

// finish waits for the records, stops the consumers gracefully, and checks what they wrote.
func (s *scenario) finish(prod *process, n, keys int, bound time.Duration) finished {
	t := s.t
	t.Helper()
	res := s.await(prod, n, keys, bound)
	if res.complete {
		// Go on a while: a consumer that re-reads what it finished, or hands a shard over
		// without its last checkpoint, shows it within a few balancing runs (every half
		// lease).
		settle := s.lease * 3 / 2
		t.Logf("%5.1fs: every record delivered; letting the consumers run %v more", res.after.Seconds(), settle)
		time.Sleep(settle)
	} else {
		slices.Sort(res.behind)
		slices.Sort(res.unreached)
		t.Errorf("%5.1fs: %s; %d records missing: %d behind their shard's checkpoint (acknowledged, never delivered: lost), e.g. %v; %d not reached, e.g. %v",
			res.after.Seconds(), res.note, len(res.behind)+len(res.unreached), len(res.behind), res.behind[:min(5, len(res.behind))],
			len(res.unreached), res.unreached[:min(5, len(res.unreached))])
	}
	if len(res.acked) > 0 {
		ids := slices.Sorted(maps.Keys(res.acked))
		first := slices.MinFunc(ids, func(a, b string) int { return cmp.Compare(res.acked[a], res.acked[b]) })
		t.Errorf("%d records were acknowledged before any -out file held them (their shard's checkpoint passed them), the first seen at %.1fs: e.g. %v",
			len(ids), res.acked[first].Seconds(), ids[:min(5, len(ids))])
	}

	// Stop every running consumer at once; each must shut down cleanly and exit 0.
	var wg sync.WaitGroup
	for _, c := range s.consumers {
		if c == s.killed {
			continue
		}
		wg.Go(func() {
			if err := c.stop(45 * time.Second); err != nil {
				t.Error(err)
			} else if code := c.exitCode(); code != 0 {
				t.Errorf("%s exited with status %d after SIGTERM", c.name, code)
			}
		})
	}
	wg.Wait()
	if !prod.done() {
		if err := prod.stop(10 * time.Second); err != nil {
			t.Error(err)
		}
	}
	if code := prod.exitCode(); code != 0 {
		t.Errorf("producer exited with status %d: %s", code, strings.TrimSpace(fileTail(prod.stdout, 400)))
	}

	o := outcome{n: n, keys: keys, killed: -1, heldAtKill: s.heldAtKill}
	if !s.rewound.IsZero() {
		o.rewoundNs = s.rewound.UnixNano()
	}
	for i, c := range s.consumers {
		if err := c.out.poll(); err != nil {
			t.Errorf("read %s: %v", c.out.path, err)
		}
		if len(c.out.bad) > 0 {
			t.Errorf("%s: %d lines that do not parse, e.g. %s", c.name, len(c.out.bad), c.out.bad[0])
		}
		if len(c.out.partial) > 0 {
			if c == s.killed {
				// A write cut short by SIGKILL: the batch was not acknowledged.
				t.Logf("%s: last line cut short by the kill (%d bytes)", c.name, len(c.out.partial))
			} else {
				t.Errorf("%s: file ends with an incomplete line: %.80q", c.name, c.out.partial)
			}
		}
		o.files = append(o.files, c.out.lines)
		o.names = append(o.names, c.name)
		if c == s.killed {
			o.killed = i
		}
	}
	v := check(o)
	t.Logf("run: %.1fs; %s", res.after.Seconds(), v)
	for _, f := range v.failures() {
		if s.dupLimit >= 0 && strings.Contains(f, "duplicates the kill does not explain") {
			continue // judged by count below
		}
		t.Error(f)
	}
	if s.dupLimit >= 0 && v.duplicates > s.dupLimit {
		t.Errorf("%d duplicates, want at most %d", v.duplicates, s.dupLimit)
	}
	if s.failover != nil {
		// A crashed worker's shards stay unread for at most about a lease duration: others
		// see its lease counter stand still for a lease duration, measured from when they
		// first read it (up to a balancing run, half a lease, after the last renewal), and
		// take the lease at their next balancing run (another half lease). Three lease
		// durations leave room for a loaded machine.
		bound := 3 * s.lease
		if late := s.failover.check(s.heldAtKill, bound); len(late) > 0 {
			t.Errorf("shards of the killed worker not taken over within %v (3 lease durations): %s", bound, strings.Join(late, ", "))
		}
	}
	if t.Failed() {
		s.logLeases()
	}
	return finished{v: v, wait: res}
}

// logLeases logs the lease table, for failures.
func (s *scenario) logLeases() {
	rows, err := s.leases()
	if err != nil {
		s.t.Logf("lease table: %v", err)
		return
	}
	slices.SortFunc(rows, func(a, b checkpoint.Lease) int { return strings.Compare(a.Shard, b.Shard) })
	var b strings.Builder
	for _, l := range rows {
		fmt.Fprintf(&b, "\n  %s owner=%q counter=%d checkpoint=%s", l.Shard, l.Owner, l.Counter, l.Checkpoint)
	}
	s.t.Logf("lease table at the end:%s", b.String())
}
