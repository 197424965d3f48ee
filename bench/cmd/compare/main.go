// Command compare runs Shardline's producer and consumer side by side with
// github.com/a8m/kinesis-producer and github.com/harlow/kinesis-consumer on the same workloads,
// against an in-memory fake Kinesis endpoint and against kinesalite, and prints one markdown
// table per comparison.
//
//	go run ./cmd/compare -target fake
//	go run ./cmd/compare -target kinesalite -kinesalite-endpoint http://127.0.0.1:4570
//
// See README.md for what every number means.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/kinesis/bench/compare"
	"github.com/shardline/kinesis/bench/fake"
	"github.com/shardline/kinesis/bench/hashkey"
	"github.com/shardline/kinesis/bench/workload"
)

type options struct {
	records, kinesaliteRecords int
	sizes                      []int
	shards, keys               int
	target, only               string
	kinesaliteEndpoint         string
	kinesalitePID              int
	fakeProcess                bool
	runs                       int
	timeout                    time.Duration
	poll                       time.Duration
	maxRecords                 int
	cpuprofile                 string
	libs                       []string
}

// selected reports whether a library named name runs: -libs lists name prefixes.
func (o *options) selected(name string) bool {
	if len(o.libs) == 0 {
		return true
	}
	for _, p := range o.libs {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// defaultKinesalite is where users' kinesalite listens: the endpoint localstack/up exported
// when it started kinesalite (eval "$(localstack/up --kinesis kinesalite)" binds :4568),
// otherwise a private one on :4570 (the port to use next to a running kinesis-mock).
func defaultKinesalite() string {
	if os.Getenv("SHARDLINE_KINESIS_ENGINE") == "kinesalite" {
		if ep := os.Getenv("AWS_ENDPOINT_URL_KINESIS"); ep != "" {
			return ep
		}
	}
	return "http://127.0.0.1:4570"
}

func main() {
	var o options
	var sizes string
	serve := flag.Bool("serve-fake", false, "internal: serve the fake endpoint, print its URL, exit when stdin closes")
	flag.IntVar(&o.records, "records", 200000, "user records per run against the fake endpoint")
	flag.IntVar(&o.kinesaliteRecords, "kinesalite-records", 100000, "user records per run against kinesalite")
	flag.StringVar(&sizes, "size", "100,1024", "comma-separated record sizes in bytes")
	flag.IntVar(&o.shards, "shards", 4, "shards per stream")
	flag.IntVar(&o.keys, "keys", 1000, "distinct partition keys")
	flag.StringVar(&o.target, "target", "both", "fake, kinesalite or both")
	flag.StringVar(&o.only, "only", "all", "producer, consumer or all")
	flag.StringVar(&o.kinesaliteEndpoint, "kinesalite-endpoint", defaultKinesalite(),
		"kinesalite URL (default: $AWS_ENDPOINT_URL_KINESIS when $SHARDLINE_KINESIS_ENGINE=kinesalite, else http://127.0.0.1:4570)")
	flag.IntVar(&o.kinesalitePID, "kinesalite-pid", 0, "kinesalite's process ID, to report its CPU time per record (optional)")
	flag.BoolVar(&o.fakeProcess, "fake-process", true, "serve the fake endpoint from a child process, so its CPU and allocations are not charged to the libraries")
	flag.IntVar(&o.runs, "runs", 1, "runs per library and workload, interleaved; the table shows the run with the median CPU per record")
	flag.DurationVar(&o.timeout, "timeout", 3*time.Minute, "bound on every single run")
	flag.DurationVar(&o.poll, "poll", 200*time.Millisecond, "consumers' least time between GetRecords calls per shard")
	flag.IntVar(&o.maxRecords, "max-records", 10000, "consumers' GetRecords limit")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "directory to write a CPU profile of every run into (go tool pprof)")
	libs := flag.String("libs", "", "comma-separated prefixes of the library names to run (default: all), e.g. shardline,a8m")
	flag.Parse()
	if *libs != "" {
		o.libs = strings.Split(*libs, ",")
	}
	if *serve {
		serveFake()
		return
	}
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fatalf("bad -size %q", s)
		}
		o.sizes = append(o.sizes, n)
	}
	if !slices.Contains([]string{"fake", "kinesalite", "both"}, o.target) {
		fatalf("-target must be fake, kinesalite or both")
	}
	if !slices.Contains([]string{"producer", "consumer", "all"}, o.only) {
		fatalf("-only must be producer, consumer or all")
	}
	if o.runs < 1 || o.records < 1 || o.kinesaliteRecords < 1 || o.shards < 1 || o.keys < 1 {
		fatalf("-runs, -records, -kinesalite-records, -shards and -keys must be positive")
	}
	if o.cpuprofile != "" {
		if err := os.MkdirAll(o.cpuprofile, 0o755); err != nil {
			fatalf("%v", err)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if o.target != "fake" {
		if err := compare.CheckKinesalite(ctx, o.kinesaliteEndpoint); err != nil {
			fatalf("%v\nstart one with: node --require localstack/loopback.cjs localstack/node_modules/kinesalite/cli.js --port 4570 --createStreamMs 0 --deleteStreamMs 0 --updateStreamMs 0\nor run with -target fake", err)
		}
	}

	fmt.Printf("## Shardline vs peers, %s\n\n%s", time.Now().UTC().Format("2006-01-02 15:04 UTC"), compare.Machine())
	fmt.Printf("- command: %s\n\n", strings.Join(os.Args, " "))
	if o.target != "kinesalite" {
		if err := runTarget(ctx, &o, "fake"); err != nil {
			fatalf("fake endpoint: %v", err)
		}
	}
	if o.target != "fake" {
		if err := runTarget(ctx, &o, "kinesalite"); err != nil {
			fatalf("kinesalite: %v", err)
		}
	}
	fmt.Printf("load average at end: %s\n", compare.LoadAverage())
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "compare: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "compare: "+format+"\n", args...)
}

// target is an endpoint the comparisons run against.
type target struct {
	name     string
	endpoint string
	records  int
	fake     fake.Control // nil for kinesalite
	cpu      func() time.Duration
	close    func()
}

func runTarget(ctx context.Context, o *options, name string) error {
	t, err := openTarget(ctx, o, name)
	if err != nil {
		return err
	}
	defer t.close()
	if o.only != "producer" {
		if err := consumerTables(ctx, o, t); err != nil {
			return err
		}
	}
	if o.only != "consumer" {
		if err := producerTables(ctx, o, t); err != nil {
			return err
		}
	}
	return nil
}

func openTarget(ctx context.Context, o *options, name string) (*target, error) {
	if name == "kinesalite" {
		t := &target{name: name, endpoint: o.kinesaliteEndpoint, records: o.kinesaliteRecords, close: func() {}}
		if o.kinesalitePID > 0 {
			pid := o.kinesalitePID
			t.cpu = func() time.Duration { return procCPU(pid) }
		}
		return t, nil
	}
	if !o.fakeProcess {
		srv := fake.New()
		return &target{name: name, endpoint: srv.Start(), records: o.records, fake: srv, close: srv.Close}, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-serve-fake")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("fake endpoint process: %w", err)
	}
	url := strings.TrimSpace(line)
	remote := &fake.Remote{Base: url}
	return &target{
		name: name, endpoint: url, records: o.records, fake: remote,
		cpu: func() time.Duration {
			d, err := remote.CPU(ctx)
			if err != nil {
				return 0
			}
			return d
		},
		close: func() {
			stdin.Close()
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		},
	}, nil
}

// serveFake is the child process: it serves the fake until its stdin closes.
func serveFake() {
	srv := fake.New()
	fmt.Println(srv.Start())
	_, _ = io.Copy(io.Discard, os.Stdin)
	srv.Close()
}

// procCPU reads a process's user + system CPU time from /proc/<pid>/stat (clock ticks of
// 10 ms, the Linux USER_HZ).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// median returns the run with the median CPU per record among those that counted every
// record, or the first failed run when none did.
func median(runs []compare.Result) compare.Result {
	var ok []compare.Result
	for _, r := range runs {
		if r.Err == nil && r.Errors == 0 {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return runs[0]
	}
	slices.SortFunc(ok, func(a, b compare.Result) int {
		switch x, y := a.CPUPerRecord(), b.CPUPerRecord(); {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	})
	return ok[len(ok)/2]
}

// profiled runs f under a CPU profile written to o.cpuprofile/name.pprof when profiling is
// on. The profile covers the whole run, set-up and shutdown included.
func profiled(o *options, name string, f func() compare.Result) compare.Result {
	if o.cpuprofile == "" {
		return f()
	}
	file, err := os.Create(filepath.Join(o.cpuprofile, name+".pprof"))
	if err != nil {
		logf("profile: %v", err)
		return f()
	}
	defer file.Close()
	if err := pprof.StartCPUProfile(file); err != nil {
		logf("profile: %v", err)
		return f()
	}
	defer pprof.StopCPUProfile()
	return f()
}

// fileName turns a library name into a file name part: "shardline (no rate limit)" becomes
// "shardline-no-rate-limit".
func fileName(lib string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(lib) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

func sizeTag(size int) string { return strconv.Itoa(size) + "B" }

// consumerTables reads the same streams with every consumer and prints one table.
func consumerTables(ctx context.Context, o *options, t *target) error {
	settings := compare.ConsumerSettings{PollInterval: o.poll, MaxRecords: o.maxRecords, Timeout: o.timeout}
	table := &compare.Table{
		Title:    fmt.Sprintf("Consumers on %s: %d user records over %d shards, %d keys", t.name, t.records, o.shards, o.keys),
		Endpoint: t.cpu != nil,
		Notes:    consumerNotes(o, t),
	}
	var admin clientFunc
	if t.fake == nil {
		admin = adminClient(ctx, t.endpoint)
	}
	for _, size := range o.sizes {
		for _, agg := range []bool{false, true} {
			spec := workload.Spec{Records: t.records, Size: size, Keys: o.keys}
			if err := spec.Validate(); err != nil {
				return err
			}
			kind := "plain"
			if agg {
				kind = "aggregated"
			}
			wl := kind + " " + workload.SizeName(size)
			stream := fmt.Sprintf("bench-consumer-%s-%s-%d", kind, sizeTag(size), time.Now().UnixNano())
			started := time.Now()
			if t.fake != nil {
				info, err := t.fake.Load(ctx, fake.LoadRequest{Stream: stream, Shards: o.shards, Spec: spec, Aggregate: agg})
				if err != nil {
					return err
				}
				logf("%s: loaded %s (%d Kinesis records) in %v", t.name, wl, info.KinesisRecords, time.Since(started).Round(time.Millisecond))
			} else {
				client, err := admin()
				if err != nil {
					return err
				}
				ranges, err := compare.CreateStream(ctx, client, stream, o.shards)
				if err != nil {
					return err
				}
				n, err := compare.Preload(ctx, client, stream, ranges, spec, agg)
				if err != nil {
					return err
				}
				logf("%s: preloaded %s (%d Kinesis records) in %v", t.name, wl, n, time.Since(started).Round(time.Millisecond))
			}
			libs := slices.DeleteFunc(compare.ConsumerLibs(), func(l compare.ConsumerLib) bool { return !o.selected(l.Name) })
			runs := make([][]compare.Result, len(libs))
			for r := range o.runs {
				for i, lib := range libs {
					run := compare.ConsumerRun{Endpoint: t.endpoint, Stream: stream, Records: t.records, Aggregated: agg,
						Workload: wl, Settings: settings, EndpointCPU: t.cpu}
					res := profiled(o, fmt.Sprintf("consumer-%s-%s-%s-%s-%d", t.name, fileName(lib.Name), kind, sizeTag(size), r), func() compare.Result {
						return compare.RunConsumer(ctx, lib, run)
					})
					logf("%s: %s %s run %d: %.0f records/s, %.2f µs CPU/record, %.2f allocs/record, %s %v",
						t.name, lib.Name, wl, r+1, res.RecordsPerSec(), res.CPUPerRecord(), res.AllocsPerRecord(), res.Check, errOrEmpty(res.Err))
					runs[i] = append(runs[i], res)
					if ctx.Err() != nil {
						return ctx.Err()
					}
				}
			}
			for i := range libs {
				table.Rows = append(table.Rows, median(runs[i]))
			}
			if t.fake != nil {
				_ = t.fake.Delete(ctx, stream)
			} else if client, err := admin(); err == nil {
				_ = compare.DeleteStream(ctx, client, stream)
			}
		}
	}
	table.Markdown(os.Stdout)
	return nil
}

func errOrEmpty(err error) any {
	if err == nil {
		return ""
	}
	return err
}

func consumerNotes(o *options, t *target) []string {
	notes := []string{
		fmt.Sprintf("Both read from TRIM_HORIZON with GetRecords limit %d and at most one GetRecords per shard per %v (Shardline WithPollInterval, harlow WithScanInterval).", o.maxRecords, o.poll),
		"Shardline: one worker, leases and checkpoints in checkpoint.NewMemory(), checkpoint after every batch (default), deaggregation always on, its own GetRecords codec (default; the \"(SDK codec)\" row: WithWireCodec(false)). " +
			"harlow v0.5.0: AllGroup over every shard, checkpoint (SetCheckpoint) after every record into its memory store, or none with its no-op store; " +
			"WithAggregation(true) (AWS deaggregator) only on aggregated streams.",
		"The floor row is a bare GetRecords loop per shard on the same SDK client (no leases, no checkpoints): the SDK's own cost, which every library pays; a library's overhead is its CPU/record minus the floor's.",
		"Handler on every side: every user record's data is counted once in a shared tally (one atomic add); `check` compares the tally with the stream's records.",
		"Measured from the library's construction until the handler counted every record: wall time, process CPU (getrusage, all threads, GC included), heap allocations (MemStats.Mallocs).",
	}
	if t.fake != nil && o.fakeProcess {
		notes = append(notes, "The fake endpoint runs in a child process: its CPU is the `endpoint` column, not charged to the libraries.")
	} else if t.fake != nil {
		notes = append(notes, "The fake endpoint runs in this process: its CPU and allocations are charged to every library alike.")
	}
	if t.fake == nil && t.cpu == nil {
		notes = append(notes, "kinesalite runs in its own process; pass -kinesalite-pid to see its CPU per record.")
	}
	return notes
}

// clientFunc returns a Kinesis client for stream administration (create, preload, delete,
// read back), made once.
type clientFunc func() (*kinesis.Client, error)

func adminClient(ctx context.Context, endpoint string) clientFunc {
	var (
		client *kinesis.Client
		err    error
	)
	return func() (*kinesis.Client, error) {
		if client == nil && err == nil {
			client, err = compare.NewClient(ctx, endpoint)
		}
		return client, err
	}
}

// producerTables puts the same records with every producer, each into a fresh stream, and
// prints one table.
func producerTables(ctx context.Context, o *options, t *target) error {
	table := &compare.Table{
		Title:    fmt.Sprintf("Producers on %s: %d user records over %d shards, %d keys, aggregation on", t.name, t.records, o.shards, o.keys),
		Endpoint: t.cpu != nil,
		Notes:    producerNotes(o, t),
	}
	admin := adminClient(ctx, t.endpoint)
	for _, size := range o.sizes {
		spec := workload.Spec{Records: t.records, Size: size, Keys: o.keys}
		ds, err := compare.NewDataset(spec)
		if err != nil {
			return err
		}
		wl := workload.SizeName(size)
		libs := slices.DeleteFunc(compare.ProducerLibs(), func(l compare.ProducerLib) bool { return !o.selected(l.Name) })
		runs := make([][]compare.Result, len(libs))
		for r := range o.runs {
			for i, lib := range libs {
				stream := fmt.Sprintf("bench-producer-%s-%d-%d", sizeTag(size), i, time.Now().UnixNano())
				run := compare.ProducerRun{Endpoint: t.endpoint, Stream: stream, Data: ds, Workload: wl, Timeout: o.timeout, EndpointCPU: t.cpu}
				var cleanup func()
				if t.fake != nil {
					if err := t.fake.Create(ctx, fake.CreateRequest{Stream: stream, Shards: o.shards, Expect: t.records}); err != nil {
						return err
					}
					run.Ranges = hashkey.Even(o.shards)
					run.Verify = func(ctx context.Context) (compare.Placement, error) {
						st, err := t.fake.Stats(ctx, stream)
						return compare.Placement{
							KinesisRecords: st.Entries, UserRecords: st.UserRecords, Misplaced: st.Misplaced, KeyChanged: st.KeyChanged,
							Missing: st.Missing, Duplicates: st.Duplicates, Foreign: st.Foreign + st.Malformed,
						}, err
					}
					cleanup = func() { _ = t.fake.Delete(ctx, stream) }
				} else {
					client, err := admin()
					if err != nil {
						return err
					}
					ranges, err := compare.CreateStream(ctx, client, stream, o.shards)
					if err != nil {
						return err
					}
					run.Ranges = ranges
					run.Verify = func(ctx context.Context) (compare.Placement, error) {
						return compare.ReadBack(ctx, client, stream, ranges, t.records)
					}
					cleanup = func() { _ = compare.DeleteStream(ctx, client, stream) }
				}
				res := profiled(o, fmt.Sprintf("producer-%s-%s-%s-%d", t.name, fileName(lib.Name), sizeTag(size), r), func() compare.Result {
					return compare.RunProducer(ctx, lib, run)
				})
				cleanup()
				logf("%s: %s %s run %d: %.0f records/s, %.2f µs CPU/record, %.2f allocs/record, %d errors, %d misplaced; %s %v",
					t.name, lib.Name, wl, r+1, res.RecordsPerSec(), res.CPUPerRecord(), res.AllocsPerRecord(), res.Errors, res.Misplaced, res.Check, errOrEmpty(res.Err))
				runs[i] = append(runs[i], res)
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
		}
		for i := range libs {
			table.Rows = append(table.Rows, median(runs[i]))
		}
	}
	table.Markdown(os.Stdout)
	return nil
}

func producerNotes(o *options, t *target) []string {
	notes := []string{
		"Each run puts the same pre-built records (data built before the clock starts; partition key user-<i mod keys>) into a fresh stream from one goroutine, aggregation on for both libraries.",
		"shardline: producer.New defaults (aggregation per predicted shard, 51,200-byte aggregates, linger 100 ms, 8 requests in flight, ordering on, 1,000 records/s and 1 MiB/s per shard), " +
			"then without the rate limits, then without rate limits and ordering, then without rate limits and with the SDK's codec instead of Shardline's (WithWireCodec(false)). Confirmed = Close returned nil (every accepted record has its outcome), the OnFailure hook saw no failure and Stats counts every record delivered; the *Result futures are dropped, as a bulk producer relying on the hook does.",
		"a8m: defaults (one aggregator for all keys, drained near 1 MiB; 24 requests in flight; flush every 5 s), logger discarded. Confirmed = Stop returned (every request returned; a8m retries failed entries until they succeed) and its failure channel, drained throughout, yielded nothing.",
		"The floor row is not a library: the same records pre-aggregated per shard before the clock starts, sent with raw PutRecords (500 entries / 5 MiB, 8 in flight): the SDK's cost of carrying them.",
		"Measured from the library's construction until every record is confirmed: wall time, process CPU (getrusage, all threads, GC included), heap allocations (MemStats.Mallocs).",
		"Then, not measured, the stream is read back and every user record is checked, independently of both libraries (AWS deaggregator; key and index read from the record's data): `misplaced` = user records on a shard other than the one their own partition key maps to (MD5 in the shard's hash-key range); `another key` = user records whose partition key as a consumer reads it is not their own.",
	}
	if t.fake != nil && o.fakeProcess {
		notes = append(notes, "The fake endpoint runs in a child process: its CPU (including the check of every entry) is the `endpoint` column, not charged to the libraries.")
	} else if t.fake != nil {
		notes = append(notes, "The fake endpoint runs in this process: its CPU and allocations (including the check of every entry) are charged to every library alike.")
	}
	return notes
}
