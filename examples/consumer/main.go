// Command consumer reads a Kinesis stream with Shardline's consumer and reports what it read.
//
// Its AWS configuration is config.LoadDefaultConfig's, so it runs against the local stack
// once the environment points there (eval "$(localstack/up)" first), and against AWS as it is:
//
//	go run ./examples/consumer -stream demo -store redis -expect 10000 -out records.jsonl
//
// With -workers N it runs N workers of the group in this process, each with its own Kinesis
// and store clients as separate processes would have, and prints the lease table as they
// balance. -metrics-addr serves the workers' metrics for Prometheus (/metrics), Kubernetes
// probes (/healthz, /readyz) and their status as JSON (/status); -events prints every
// lifecycle event as a JSON line on stderr.
//
// # Worker IDs
//
// Every worker of a group needs its own ID. Without -id each worker takes the consumer's
// default, host name, process ID and a random suffix, so any number of processes on any
// number of hosts can join one group. -id names the worker instead; with -workers N, -id w
// names them w-1 to w-N.
//
// # Output and acknowledgement
//
// -out writes one JSON line per record: shard, sequence and sub-sequence number, partition
// key, data (base64), the worker that handled it and when its batch reached the handler
// (delivered_ns, Unix nanoseconds; every record of a batch has the same value). The records of
// a batch are written with one write, before the handler returns nil: returning nil is what
// lets the consumer checkpoint the batch, so a record is never acknowledged before it is in
// the file. That survives the process being killed (kill -9): the data is in the kernel.
// Surviving a machine crash needs -fsync, which also syncs the file to disk before the handler
// returns, at the cost of one fsync per batch. After a crash, what was written but not yet
// checkpointed is delivered again and appears twice: the last batch of each shard (at most
// -max-records Kinesis records) with the default checkpoint after every batch, up to one
// -checkpoint-interval of records with that flag.
//
// The exit status is 1 when Run fails (a handler error that outlived its retries included, so
// an -out file that cannot be written stops the consumer), when -out cannot be written or
// closed, or when -expect records did not arrive.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	goredis "github.com/redis/go-redis/v9"

	"github.com/shardline/kinesis/checkpoint"
	ddbstore "github.com/shardline/kinesis/checkpoint/dynamodb"
	redisstore "github.com/shardline/kinesis/checkpoint/redis"
	"github.com/shardline/kinesis/consumer"
	"github.com/shardline/kinesis/events"
	"github.com/shardline/kinesis/health"
	"github.com/shardline/kinesis/metrics"
	shardprom "github.com/shardline/kinesis/metrics/prometheus"
)

type options struct {
	stream, group, store, from, out string
	id, redisURL, redisPrefix       string
	table, metricsAddr              string
	events                          bool
	expect                          int64
	idle, lease, checkpointInterval time.Duration
	workers, maxRecords             int
	fsync, verbose                  bool
}

func main() {
	var o options
	flag.StringVar(&o.stream, "stream", "shardline-demo", "stream to read")
	flag.StringVar(&o.group, "group", "shardline-example", "consumer group")
	flag.StringVar(&o.store, "store", "redis", "checkpoint store: memory, redis or dynamodb")
	flag.StringVar(&o.from, "from", "trim_horizon", "start position of shards without a checkpoint: trim_horizon or latest")
	flag.StringVar(&o.out, "out", "", "write one JSON line per record to this file, before the record is checkpointed")
	flag.BoolVar(&o.fsync, "fsync", false, "sync -out to disk before each batch is checkpointed (survives a machine crash, not only kill -9)")
	flag.Int64Var(&o.expect, "expect", 0, "exit after this many records, duplicates included (0: run until interrupted or idle)")
	flag.DurationVar(&o.idle, "idle", 0, "exit after this long without records (0: never)")
	flag.IntVar(&o.workers, "workers", 1, "workers of the group to run in this process")
	flag.StringVar(&o.id, "id", "", "worker ID (with -workers N: ID-1 to ID-N); default: host name, process ID and a random suffix per worker")
	flag.DurationVar(&o.lease, "lease", 10*time.Second, "lease duration")
	flag.IntVar(&o.maxRecords, "max-records", 10000, "GetRecords limit: Kinesis records per batch, 1 to 10000 (an aggregate counts as one)")
	flag.DurationVar(&o.checkpointInterval, "checkpoint-interval", 0, "checkpoint at most once per interval (0: after every batch); a crash re-delivers up to one interval")
	flag.StringVar(&o.redisURL, "redis-url", envOr("SHARDLINE_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis URL for -store redis")
	flag.StringVar(&o.redisPrefix, "redis-prefix", redisstore.DefaultPrefix, "key prefix for -store redis")
	flag.StringVar(&o.table, "table", "shardline-checkpoints", "DynamoDB table for -store dynamodb (created if missing)")
	flag.StringVar(&o.metricsAddr, "metrics-addr", "", "serve /metrics (Prometheus), /healthz, /readyz and /status on this address, e.g. 127.0.0.1:9464")
	flag.BoolVar(&o.events, "events", false, "print every lifecycle event as a JSON line on stderr")
	flag.BoolVar(&o.verbose, "v", false, "log lease changes")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// newStore opens one store client: each worker gets its own, as separate processes would.
func newStore(ctx context.Context, o options, cfg aws.Config, shared checkpoint.Store) (checkpoint.Store, func(), error) {
	switch o.store {
	case "memory":
		return shared, func() {}, nil
	case "redis":
		opt, err := goredis.ParseURL(o.redisURL)
		if err != nil {
			return nil, nil, fmt.Errorf("-redis-url: %w", err)
		}
		client := goredis.NewClient(opt)
		s, err := redisstore.New(client, redisstore.WithPrefix(o.redisPrefix))
		return s, func() { _ = client.Close() }, err
	case "dynamodb":
		client := dynamodb.NewFromConfig(cfg)
		if err := ddbstore.CreateTable(ctx, client, o.table); err != nil {
			return nil, nil, err
		}
		s, err := ddbstore.New(client, o.table)
		return s, func() {}, err
	}
	return nil, nil, fmt.Errorf("-store must be memory, redis or dynamodb, not %q", o.store)
}

// line is one record of -out.
type line struct {
	Shard        string `json:"shard"`
	Sequence     string `json:"sequence"`
	SubSequence  int64  `json:"subsequence"`
	PartitionKey string `json:"partition_key"`
	Data         []byte `json:"data"` // base64
	Worker       string `json:"worker"`
	Delivered    int64  `json:"delivered_ns"` // when the batch reached the handler, Unix ns
}

// output is the -out file, shared by the workers of this process.
type output struct {
	mu   sync.Mutex
	f    *os.File
	size int64 // bytes of whole batches written so far
	sync bool
	buf  bytes.Buffer
	err  error // first error that left the file unusable; every later write fails with it
}

// write appends the records of one batch with one write and, with -fsync, syncs the file. It
// returns only once the batch is in the file, so the handler may then return nil and let the
// consumer checkpoint it. A failed write is cut off again, so a retry of the batch never
// leaves half a line behind.
func (o *output) write(worker string, delivered time.Time, b *consumer.Batch) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return o.err
	}
	o.buf.Reset()
	enc := json.NewEncoder(&o.buf)
	for _, r := range b.Records {
		l := line{r.ShardID, r.SequenceNumber, r.SubSequenceNumber, r.PartitionKey, r.Data, worker, delivered.UnixNano()}
		if err := enc.Encode(l); err != nil {
			return err
		}
	}
	n, err := o.f.Write(o.buf.Bytes())
	if err == nil && o.sync {
		err = o.f.Sync()
	}
	if err != nil {
		if n > 0 {
			if terr := o.f.Truncate(o.size); terr != nil {
				o.err = fmt.Errorf("-out: %w; cutting off the partial batch: %w", err, terr)
				return o.err
			}
			if _, serr := o.f.Seek(o.size, io.SeekStart); serr != nil {
				o.err = fmt.Errorf("-out: %w; %w", err, serr)
				return o.err
			}
		}
		return fmt.Errorf("-out: %w", err)
	}
	o.size += int64(n)
	return nil
}

// close syncs (with -fsync) and closes the file.
func (o *output) close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	var err error
	if o.sync {
		err = o.f.Sync()
	}
	if cerr := o.f.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return fmt.Errorf("-out: %w", err)
	}
	return nil
}

// workerID returns the ID of worker i of n: "" (the consumer's unique default) unless -id is
// set.
func workerID(id string, i, n int) string {
	switch {
	case id == "":
		return ""
	case n == 1:
		return id
	}
	return fmt.Sprintf("%s-%d", id, i+1)
}

func run(ctx context.Context, o options) (err error) {
	var start consumer.StartPosition
	switch o.from {
	case "trim_horizon":
		start = consumer.TrimHorizon
	case "latest":
		start = consumer.Latest
	default:
		return fmt.Errorf("-from must be trim_horizon or latest, not %q", o.from)
	}
	if o.workers < 1 {
		return errors.New("-workers must be at least 1")
	}
	cfg, err := config.LoadDefaultConfig(ctx) // AWS_ENDPOINT_URL_KINESIS and _DYNAMODB point it at the local stack
	if err != nil {
		return fmt.Errorf("load AWS config: %w", err)
	}

	mem := metrics.NewMemory()
	var collector metrics.Collector = mem
	reg := prometheus.NewRegistry()
	if o.metricsAddr != "" {
		pc, err := shardprom.New(reg, shardprom.WithNamespace("shardline"))
		if err != nil {
			return err
		}
		collector = metrics.Fanout(mem, pc)
	}

	var out *output
	if o.out != "" {
		f, err := os.Create(o.out)
		if err != nil {
			return err
		}
		out = &output{f: f, sync: o.fsync}
		defer func() { err = errors.Join(err, out.close()) }()
	}

	logLevel := slog.LevelWarn
	if o.verbose {
		logLevel = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel}))
	eventLog := slog.New(slog.NewJSONHandler(os.Stderr, nil))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	shared := checkpoint.NewMemory()
	var workers []*consumer.Consumer
	var observer checkpoint.Store
	for i := 0; i < o.workers; i++ {
		store, closeStore, err := newStore(ctx, o, cfg, shared)
		if err != nil {
			return err
		}
		defer closeStore()
		if observer == nil {
			observer = store
		}
		copts := []consumer.Option{
			consumer.WithGroup(o.group), consumer.WithStartPosition(start),
			consumer.WithLeaseDuration(o.lease), consumer.WithMaxRecords(o.maxRecords),
			consumer.WithMetrics(collector), consumer.WithLogger(logger),
		}
		if o.events {
			// Every lifecycle event as one JSON line on stderr.
			copts = append(copts, consumer.WithListener(events.NewLogger(eventLog, slog.LevelInfo)))
		}
		if id := workerID(o.id, i, o.workers); id != "" {
			copts = append(copts, consumer.WithWorkerID(id))
		}
		if o.checkpointInterval > 0 {
			copts = append(copts, consumer.WithCheckpointInterval(o.checkpointInterval))
		}
		c, err := consumer.New(kinesis.NewFromConfig(cfg), o.stream, store, copts...)
		if err != nil {
			return err
		}
		workers = append(workers, c)
		fmt.Printf("worker %s of group %s on %s\n", c.WorkerID(), o.group, o.stream)
	}

	if o.metricsAddr != "" {
		// /metrics for Prometheus; /healthz and /readyz for Kubernetes probes (liveness fails
		// once a worker stopped; readiness while one is failing); /status for people.
		reporters := make([]health.Reporter, len(workers))
		for i, c := range workers {
			reporters[i] = c
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.Handle("/healthz", health.LivenessHandler(reporters...))
		mux.Handle("/readyz", health.ReadinessHandler(reporters...))
		mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
			statuses := make([]consumer.Status, len(workers))
			for i, c := range workers {
				statuses[i] = c.Status()
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(statuses)
		})
		srv := &http.Server{Addr: o.metricsAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		ln, err := net.Listen("tcp", o.metricsAddr)
		if err != nil {
			return fmt.Errorf("-metrics-addr: %w", err)
		}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				fmt.Fprintln(os.Stderr, "consumer: metrics server:", err)
			}
		}()
		defer srv.Close()
		fmt.Printf("metrics, health and status on http://%s/{metrics,healthz,readyz,status}\n", ln.Addr())
	}

	var received atomic.Int64
	var lastRecord atomic.Int64
	lastRecord.Store(time.Now().UnixNano())
	var wg sync.WaitGroup
	errs := make(chan error, len(workers))
	for _, c := range workers {
		id := c.WorkerID()
		wg.Go(func() {
			err := c.Run(ctx, func(_ context.Context, b *consumer.Batch) error {
				delivered := time.Now()
				if out != nil {
					// Written before returning nil, which lets the consumer checkpoint
					// the batch. An error hands the batch again; past the handler
					// retries Run fails, and so does this program.
					if err := out.write(id, delivered, b); err != nil {
						return err
					}
				}
				n := received.Add(int64(len(b.Records)))
				lastRecord.Store(time.Now().UnixNano())
				if o.expect > 0 && n >= o.expect {
					cancel()
				}
				return nil
			})
			if err != nil {
				errs <- fmt.Errorf("worker %s: %w", id, err)
				cancel() // one failed worker fails the process: stop the others too
			}
		})
	}

	began := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var prev int64
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
loop:
	for {
		select {
		case <-done:
			break loop
		case <-tick.C:
			n := received.Load()
			fmt.Printf("%6.1fs  %9d records  %7d/s  %s\n", time.Since(began).Seconds(), n, n-prev, leaseTable(ctx, observer, o.group, o.stream, workers))
			prev = n
			if o.idle > 0 && time.Since(time.Unix(0, lastRecord.Load())) > o.idle {
				fmt.Printf("no record for %v: stopping\n", o.idle)
				cancel()
			}
		}
	}
	close(errs)
	var runErr error
	for err := range errs {
		runErr = errors.Join(runErr, err)
	}
	elapsed := time.Since(began)
	n := received.Load()
	fmt.Printf("\nsummary: %d records in %.1fs (%.0f records/s) by %d worker(s) of group %s on %s\n",
		n, elapsed.Seconds(), float64(n)/elapsed.Seconds(), o.workers, o.group, o.stream)
	printMetrics(mem.Snapshot())
	if o.expect > 0 && n < o.expect {
		runErr = errors.Join(runErr, fmt.Errorf("received %d records, expected %d", n, o.expect))
	}
	return runErr
}

// leaseTable renders who holds which shard, e.g. "w-1:[0 3] w-2:[1 2] finished:1 unacked:0".
func leaseTable(ctx context.Context, store checkpoint.Store, group, stream string, workers []*consumer.Consumer) string {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	rows, err := store.ListLeases(cctx, group, stream)
	if err != nil {
		return "leases: " + err.Error()
	}
	byOwner := map[string][]string{}
	finished := 0
	for _, l := range rows {
		switch {
		case l.Checkpoint.ShardEnd:
			finished++
		case l.Held():
			byOwner[l.Owner] = append(byOwner[l.Owner], shortShard(l.Shard))
		}
	}
	owners := make([]string, 0, len(byOwner))
	for o := range byOwner {
		owners = append(owners, o)
	}
	sort.Strings(owners)
	var b strings.Builder
	for _, o := range owners {
		sort.Strings(byOwner[o])
		fmt.Fprintf(&b, "%s:%v ", o, byOwner[o])
	}
	if finished > 0 {
		fmt.Fprintf(&b, "finished:%d ", finished)
	}
	lag := int64(0)
	for _, w := range workers {
		for _, s := range w.Status().Shards {
			lag += s.LagRecords
		}
	}
	fmt.Fprintf(&b, "unacked:%d", lag)
	return b.String()
}

// printMetrics prints the non-zero counters and the handler latency percentiles.
func printMetrics(s metrics.Snapshot) {
	fmt.Println("metrics:")
	sum := map[string]float64{}
	for k, v := range s.Counters {
		name, _, _ := strings.Cut(k, "{")
		sum[name] += v
	}
	names := make([]string, 0, len(sum))
	for n := range sum {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Printf("  %-40s %12.0f\n", n, sum[n])
	}
	var count uint64
	var p50, p99 float64
	for k, h := range s.Histograms {
		if strings.HasPrefix(k, string(metrics.ConsumerProcessingTime)) && h.Count > 0 {
			count += h.Count
			p50, p99 = max(p50, h.P50), max(p99, h.P99)
		}
	}
	if count > 0 {
		fmt.Printf("  handler time per batch: %d batches, p50 %.2fms, p99 %.2fms (worst shard)\n", count, p50*1e3, p99*1e3)
	}
}

// shortShard turns "shardId-000000000003" into "3".
func shortShard(id string) string {
	if n := strings.TrimLeft(strings.TrimPrefix(id, "shardId-"), "0"); n != "" {
		return n
	}
	return "0"
}
