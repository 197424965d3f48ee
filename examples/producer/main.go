// Command producer writes records to a Kinesis stream with Shardline's producer and reports
// what happened. Each record's data begins with its partition key and a per-key counter
// ("key-17:000042:"), padded to -size bytes, so a reader can check that every key's records
// arrive complete and in order: record i (from 0) has key key-(i mod -keys) and counter
// i div -keys, so -n and -keys alone say which records a reader must see. Records are put in
// that order with the producer's per-key ordering on, so each key's counters are stored in
// increasing order.
//
// With the local stack running (eval "$(localstack/up)"), the defaults work as they are:
//
//	go run ./examples/producer -n 20000 -keys 1000 -shards 4
//
// The AWS configuration is config.LoadDefaultConfig's: region, credentials and the endpoint
// from the environment (AWS_ENDPOINT_URL_KINESIS, which localstack/up exports, points it at
// the local stack), so the same program runs against AWS; -endpoint overrides the endpoint.
// The stream is created with -shards shards if it does not exist (streams.Ensure), and the
// producer checks that it can write to it (Ready) before putting anything. The exit status is 1 if any record failed.
// -metrics-addr serves /metrics (Prometheus), /healthz and /readyz; -events prints every
// lifecycle event as a JSON line on stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/shardline/kinesis/events"
	"github.com/shardline/kinesis/health"
	shardprom "github.com/shardline/kinesis/metrics/prometheus"
	"github.com/shardline/kinesis/producer"
	"github.com/shardline/kinesis/streams"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		stream    = flag.String("stream", "shardline-example", "stream name")
		shards    = flag.Int("shards", 4, "shards to create the stream with if it does not exist")
		n         = flag.Int("n", 10_000, "records to put")
		size      = flag.Int("size", 100, "bytes of data per record (at least the key and counter prefix)")
		keys      = flag.Int("keys", 1000, "distinct partition keys")
		perSec    = flag.Float64("rate", 0, "records per second (0: as fast as possible)")
		aggregate = flag.Bool("aggregate", true, "KPL-aggregate small records")
		endpoint  = flag.String("endpoint", "", "Kinesis endpoint URL; empty: AWS_ENDPOINT_URL_KINESIS, AWS_ENDPOINT_URL or AWS")
		addr      = flag.String("metrics-addr", "", "serve /metrics (Prometheus), /healthz and /readyz on this address, e.g. 127.0.0.1:9465")
		evts      = flag.Bool("events", false, "print every lifecycle event as a JSON line on stderr")
	)
	flag.Parse()
	if *n < 0 || *keys < 1 || *size < 0 || *perSec < 0 || *shards < 1 {
		fmt.Fprintln(os.Stderr, "producer: -n, -size and -rate must not be negative; -keys and -shards must be at least 1")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	client, err := newClient(ctx, *endpoint)
	if err != nil {
		fmt.Fprintln(os.Stderr, "producer:", err)
		return 1
	}
	setup, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err = streams.Ensure(setup, client, *stream, *shards)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "producer:", err)
		return 1
	}

	var hookFailures atomic.Int64
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts := []producer.Option{
		producer.WithAggregation(*aggregate),
		producer.WithLogger(logger),
		producer.WithOnFailure(func(rec producer.Record, o producer.Outcome) {
			// Runs on the producer's hook goroutine, one call at a time.
			if hookFailures.Add(1) <= 5 {
				fmt.Fprintf(os.Stderr, "record of key %s failed after %d attempts: %v\n", rec.PartitionKey, o.Attempts, o.Err)
			}
		}),
	}
	if *evts {
		opts = append(opts, producer.WithListener(events.NewLogger(slog.New(slog.NewJSONHandler(os.Stderr, nil)), slog.LevelInfo)))
	}
	reg := prometheus.NewRegistry()
	if *addr != "" {
		pc, err := shardprom.New(reg, shardprom.WithNamespace("shardline"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "producer:", err)
			return 1
		}
		opts = append(opts, producer.WithMetrics(pc))
	}
	p, err := producer.New(client, *stream, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "producer:", err)
		return 1
	}
	if *addr != "" {
		stopServer, err := serve(*addr, reg, p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "producer:", err)
			return 1
		}
		defer stopServer()
	}
	// Fail at start rather than at the first record when the stream cannot be written.
	readyCtx, cancelReady := context.WithTimeout(ctx, time.Minute)
	err = p.Ready(readyCtx)
	cancelReady()
	if err != nil {
		fmt.Fprintln(os.Stderr, "producer:", err)
		return 1
	}

	fmt.Printf("stream %s, %d records of %d bytes over %d keys, aggregation %v, rate %s\n",
		*stream, *n, *size, *keys, *aggregate, rateString(*perSec))
	start := time.Now()
	done := make(chan struct{})
	go progress(p, start, done)

	var limiter *rate.Limiter
	if *perSec > 0 {
		// A burst of 10 ms worth: sleeping once per record would be limited by timer precision.
		limiter = rate.NewLimiter(rate.Limit(*perSec), max(1, int(*perSec/100)))
	}
	counters := make([]int, *keys)
	putErrors := 0
	var dataBytes int64
	for i := 0; i < *n && ctx.Err() == nil; i++ {
		if limiter != nil && limiter.Wait(ctx) != nil {
			break
		}
		k := i % *keys
		key := fmt.Sprintf("key-%d", k)
		data := fmt.Sprintf("%s:%06d:", key, counters[k])
		if pad := *size - len(data); pad > 0 {
			data += strings.Repeat("x", pad)
		}
		counters[k]++
		if _, err := p.Put(ctx, key, []byte(data)); err != nil {
			if !errors.Is(err, context.Canceled) {
				putErrors++
				fmt.Fprintln(os.Stderr, "put:", err)
			}
			continue
		}
		dataBytes += int64(len(data))
	}

	closeCtx, cancelClose := context.WithTimeout(context.Background(), time.Minute)
	closeErr := p.Close(closeCtx)
	cancelClose()
	elapsed := time.Since(start)
	close(done)
	st := p.Stats()
	if closeErr != nil {
		fmt.Fprintln(os.Stderr, "close:", closeErr)
	}
	fmt.Printf("done: %d records (%d bytes) accepted, %d delivered in %d Kinesis records (%d requests), "+
		"%d retries, %d failed, %d refused by Put; %.0f records/s, elapsed %v\n",
		st.Accepted, dataBytes, st.Delivered, st.KinesisRecords, st.Requests,
		st.Retries, st.Failed, putErrors, float64(st.Delivered)/elapsed.Seconds(), elapsed.Round(time.Millisecond))
	if st.Failed > 0 || putErrors > 0 || closeErr != nil || st.Delivered != int64(*n) {
		return 1
	}
	return 0
}

// newClient loads the AWS configuration the SDK's way (environment, shared files, roles) and
// returns a Kinesis client, for endpoint if one is given.
func newClient(ctx context.Context, endpoint string) (*kinesis.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	return kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}

// progress prints the producer's counters every second until done is closed.
func progress(p *producer.Producer, start time.Time, done <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			st := p.Stats()
			fmt.Printf("%6.1fs: %d accepted, %d delivered, %d buffered, %d Kinesis records, %d retries, %d failed, %.0f records/s\n",
				time.Since(start).Seconds(), st.Accepted, st.Delivered, st.Buffered, st.KinesisRecords,
				st.Retries, st.Failed, float64(st.Delivered)/time.Since(start).Seconds())
		}
	}
}

func rateString(perSec float64) string {
	if perSec == 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%.0f/s", perSec)
}

// serve answers /metrics (Prometheus), /healthz and /readyz (Kubernetes probes) on addr until
// the returned function is called.
func serve(addr string, reg *prometheus.Registry, p *producer.Producer) (func(), error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/healthz", health.LivenessHandler(p))
	mux.Handle("/readyz", health.ReadinessHandler(p))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-metrics-addr: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "producer: metrics server:", err)
		}
	}()
	fmt.Printf("metrics and health on http://%s/{metrics,healthz,readyz}\n", ln.Addr())
	return func() { _ = srv.Close() }, nil
}
