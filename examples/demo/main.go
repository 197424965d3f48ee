// Command demo runs Shardline end to end against the local stack: it creates a stream,
// produces records with the aggregating producer, and consumes them with a fleet of two
// workers that share the shards through leases in Redis. It prints progress and the lease
// table while it runs, then checks that every record arrived in per-key order and prints a
// metrics summary.
//
//	make demo        # starts the stack (localstack/up) and runs this
//
// Delivery is at least once, so the check counts a record delivered again as a duplicate and
// judges order on first deliveries only: each key's records must first arrive as 1, 2, 3, ...
// The demo exits 1 when a record is missing after -timeout, when a first delivery is out of
// its key's order, or when the producer or a consumer fails. Duplicates are printed, not
// failed: the guarantee allows them after a crash (this demo has none, so expect 0).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	goredis "github.com/redis/go-redis/v9"

	"github.com/shardline/kinesis/checkpoint"
	redisstore "github.com/shardline/kinesis/checkpoint/redis"
	"github.com/shardline/kinesis/consumer"
	"github.com/shardline/kinesis/metrics"
	"github.com/shardline/kinesis/producer"
	"github.com/shardline/kinesis/streams"
)

func main() {
	records := flag.Int("n", 20000, "records to produce")
	keys := flag.Int("keys", 500, "distinct partition keys")
	shards := flag.Int("shards", 4, "shards of the demo stream")
	workers := flag.Int("workers", 2, "consumer workers sharing the shards")
	keep := flag.Bool("keep", false, "keep the stream and the Redis keys afterwards")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up waiting for missing records after this long")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *records, *keys, *shards, *workers, *keep, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// tally checks what the fleet delivers. Its handler is shared by every worker, so its lock
// orders deliveries across shards and workers.
type tally struct {
	mu         sync.Mutex
	last       map[string]int  // highest counter first delivered per key
	seen       map[string]bool // "key:counter" of every record delivered
	dups       int             // deliveries of a record seen before
	outOfOrder int             // first deliveries that were not their key's next counter
}

func (t *tally) handle(_ context.Context, b *consumer.Batch) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range b.Records {
		id, _, _ := strings.Cut(string(r.Data), "|")
		if t.seen[id] {
			t.dups++
			continue
		}
		t.seen[id] = true
		key, count, _ := strings.Cut(id, ":")
		i, _ := strconv.Atoi(count)
		if i != t.last[key]+1 {
			t.outOfOrder++
		}
		t.last[key] = max(t.last[key], i)
	}
	return nil
}

func (t *tally) unique() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.seen)
}

func run(ctx context.Context, n, keys, shards, nworkers int, keep bool, timeout time.Duration) error {
	cfg, err := config.LoadDefaultConfig(ctx) // honours AWS_ENDPOINT_URL_KINESIS (the local stack)
	if err != nil {
		return fmt.Errorf("load AWS config: %w", err)
	}
	redisURL := os.Getenv("SHARDLINE_REDIS_URL")
	if redisURL == "" {
		redisURL = "redis://127.0.0.1:6379/0"
	}
	redisOpts, err := goredis.ParseURL(redisURL)
	if err != nil {
		return err
	}
	endpoint := os.Getenv("AWS_ENDPOINT_URL_KINESIS")
	if endpoint == "" {
		endpoint = os.Getenv("AWS_ENDPOINT_URL")
	}
	if endpoint == "" {
		return errors.New(`no Kinesis endpoint: run "make demo", or eval "$(localstack/up)" first`)
	}

	client := kinesis.NewFromConfig(cfg)
	stream := fmt.Sprintf("shardline-demo-%d", time.Now().Unix())
	prefix := "shardline-demo:" + stream
	fmt.Printf("== Shardline demo: %d records over %d keys, stream %s (%d shards) at %s, leases in Redis at %s\n\n",
		n, keys, stream, shards, endpoint, redisOpts.Addr)
	if err := streams.Ensure(ctx, client, stream, shards); err != nil {
		return err
	}
	rdb := goredis.NewClient(redisOpts)
	defer rdb.Close()
	if !keep {
		defer cleanup(client, rdb, stream, prefix)
	}

	mem := metrics.NewMemory()

	// The consumer fleet: each worker with its own Kinesis and Redis clients, as separate
	// processes would have.
	group := "demo"
	t := &tally{last: map[string]int{}, seen: map[string]bool{}}
	cctx, stopConsumers := context.WithCancel(ctx)
	defer stopConsumers()
	var wg sync.WaitGroup
	errs := make(chan error, nworkers)
	var observer checkpoint.Store
	for i := 1; i <= nworkers; i++ {
		wrdb := goredis.NewClient(redisOpts)
		defer wrdb.Close()
		store, err := redisstore.New(wrdb, redisstore.WithPrefix(prefix))
		if err != nil {
			return err
		}
		if observer == nil {
			observer = store
		}
		// No WithWorkerID: the default (host, process ID, random suffix) is unique per worker.
		c, err := consumer.New(kinesis.NewFromConfig(cfg), stream, store, consumer.WithGroup(group),
			consumer.WithLeaseDuration(4*time.Second), consumer.WithMetrics(mem))
		if err != nil {
			return err
		}
		wg.Go(func() { errs <- c.Run(cctx, t.handle) })
	}

	// The producer: aggregation per predicted shard, every record confirmed.
	p, err := producer.New(client, stream, producer.WithMetrics(mem))
	if err != nil {
		return err
	}
	began := time.Now()
	pctx, stopProducing := context.WithCancel(ctx)
	defer stopProducing()
	produced := make(chan error, 1) // the producer's outcome, once it closed
	go func() {
		var err error
		counter := map[string]int{}
		for i := 0; i < n && err == nil; i++ {
			key := "user-" + strconv.Itoa(i%keys)
			counter[key]++
			data := fmt.Appendf(nil, "%s:%d|%s", key, counter[key], strings.Repeat("x", 64))
			_, err = p.Put(pctx, key, data)
		}
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		produced <- errors.Join(err, p.Close(cctx))
	}()

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	deadline := time.After(timeout)
	var produceErr error
	producing := true
wait:
	for producing || t.unique() < n {
		select {
		case produceErr = <-produced:
			producing = false
			if produceErr != nil {
				break wait
			}
		case <-tick.C:
			st := p.Stats()
			fmt.Printf("%5.1fs  produced %6d (%4d Kinesis records, %d failed)  consumed %6d  leases %s\n",
				time.Since(began).Seconds(), st.Delivered, st.KinesisRecords, st.Failed, t.unique(),
				leaseTable(ctx, observer, group, stream))
		case <-deadline:
			fmt.Printf("gave up waiting after %v\n", timeout)
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	if producing {
		stopProducing()
		produceErr = <-produced
	}
	elapsed := time.Since(began)
	fmt.Printf("%5.1fs  consumed %d\n\nleases when done: %s\n", elapsed.Seconds(), t.unique(), leaseTable(ctx, observer, group, stream))
	stopConsumers()
	wg.Wait()
	close(errs)
	var runErr error
	for err := range errs {
		runErr = errors.Join(runErr, err)
	}
	fmt.Printf("leases after shutdown: %s\n", leaseTable(context.Background(), observer, group, stream))

	st := p.Stats()
	fmt.Printf("\n== producer: %d delivered, %d failed, %d Kinesis records (%.1f user records each), %d PutRecords requests, %d retries\n",
		st.Delivered, st.Failed, st.KinesisRecords, float64(st.Delivered)/max(1, float64(st.KinesisRecords)), st.Requests, st.Retries)
	t.mu.Lock()
	unique, dups, outOfOrder := len(t.seen), t.dups, t.outOfOrder
	t.mu.Unlock()
	fmt.Printf("== consumer: %d of %d records delivered (%d missing), %d duplicate deliveries, %d first deliveries out of per-key order, in %.1fs\n",
		unique, n, n-unique, dups, outOfOrder, elapsed.Seconds())
	printMetrics(mem.Snapshot())
	var problems []error
	if err := errors.Join(produceErr, runErr); err != nil {
		problems = append(problems, err)
	}
	if st.Failed > 0 {
		problems = append(problems, fmt.Errorf("%d records failed to produce", st.Failed))
	}
	if unique < n {
		problems = append(problems, fmt.Errorf("%d of %d records never delivered", n-unique, n))
	}
	if outOfOrder > 0 {
		problems = append(problems, fmt.Errorf("%d records first delivered out of per-key order", outOfOrder))
	}
	if err := errors.Join(problems...); err != nil {
		return err
	}
	fmt.Printf("\nOK: every record produced and delivered in per-key order; %d delivered twice.\n", dups)
	return nil
}

// leaseTable renders who holds which shard and each shard's checkpoint state.
func leaseTable(ctx context.Context, store checkpoint.Store, group, stream string) string {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	rows, err := store.ListLeases(cctx, group, stream)
	if err != nil {
		return err.Error()
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Shard < rows[j].Shard })
	var b strings.Builder
	for _, l := range rows {
		owner := l.Owner
		if owner == "" {
			owner = "free"
		}
		fmt.Fprintf(&b, "%s=%s ", shortShard(l.Shard), owner)
	}
	if len(rows) == 0 {
		return "(none yet)"
	}
	return strings.TrimSpace(b.String())
}

func printMetrics(s metrics.Snapshot) {
	fmt.Println("\n== metrics (summed over shards)")
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
		fmt.Printf("  %-42s %10.0f\n", n, sum[n])
	}
	for k, h := range s.Histograms {
		if strings.HasPrefix(k, string(metrics.ProducerPutLatency)) && h.Count > 0 {
			fmt.Printf("  %-42s p50 %.0fms p95 %.0fms p99 %.0fms\n", "producer put latency", h.P50*1e3, h.P95*1e3, h.P99*1e3)
		}
	}
}

func cleanup(client *kinesis.Client, rdb *goredis.Client, stream, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = client.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(stream)})
	iter := rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
	for iter.Next(ctx) {
		rdb.Del(ctx, iter.Val())
	}
}

// shortShard turns "shardId-000000000003" into "3".
func shortShard(id string) string {
	if n := strings.TrimLeft(strings.TrimPrefix(id, "shardId-"), "0"); n != "" {
		return n
	}
	return "0"
}
