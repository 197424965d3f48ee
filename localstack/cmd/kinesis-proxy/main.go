// Command kinesis-proxy runs the Kinesis limits-and-faults proxy (package
// localstack/kinesisproxy) in front of a Kinesis endpoint, so that an application tested
// against LocalStack, kinesis-mock or kinesalite meets the service's per-shard throttling
// and the failures it must survive.
//
//	go run ./localstack/cmd/kinesis-proxy -upstream http://127.0.0.1:4566 \
//	    -fault 'op=PutRecords,kind=entry-internal-failure,rate=0.05' \
//	    -fault 'kind=blackout,start=30s,duration=10s'
//
// It prints the line to point clients at it (export AWS_ENDPOINT_URL_KINESIS=...), logs a
// summary line every -summary, serves its counters as JSON at /_proxy/counters, and runs
// until SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/shardline/kinesis/localstack/kinesisproxy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "kinesis-proxy:", err)
		}
		os.Exit(2)
	}
}

// faultFlags collects repeated -fault flags.
type faultFlags []kinesisproxy.Fault

func (f *faultFlags) String() string { return fmt.Sprint(len(*f), " faults") }
func (f *faultFlags) Set(s string) error {
	fault, err := kinesisproxy.ParseFault(s)
	if err != nil {
		return err
	}
	*f = append(*f, fault)
	return nil
}

// defaultUpstream is the endpoint the AWS SDKs would use for Kinesis here, else LocalStack's.
func defaultUpstream() string {
	for _, name := range []string{"AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL"} {
		if v := os.Getenv(name); v != "" {
			return v
		}
	}
	return "http://127.0.0.1:4566"
}

// run parses args, starts the proxy and serves until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kinesis-proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := kinesisproxy.DefaultLimits()
	var (
		faults     faultFlags
		upstream   = fs.String("upstream", defaultUpstream(), "Kinesis endpoint to forward to (default: $AWS_ENDPOINT_URL_KINESIS, $AWS_ENDPOINT_URL, else LocalStack's)")
		listen     = fs.String("listen", "127.0.0.1:4580", "address to listen on; keep it on loopback unless you mean to share it")
		limits     = fs.Bool("limits", true, "enforce the per-shard limits")
		wRecords   = fs.Float64("write-records", def.WriteRecords, "records written per second and shard")
		wBytes     = fs.Float64("write-bytes", def.WriteBytes, "bytes (data + partition key) written per second and shard")
		rCalls     = fs.Float64("read-calls", def.ReadCalls, "GetRecords calls per second and shard")
		rBytes     = fs.Float64("read-bytes", def.ReadBytes, "bytes read per second and shard")
		seed       = fs.Uint64("seed", 0, "seed of the fault draws; a serial client sees the same faults each run")
		summary    = fs.Duration("summary", 10*time.Second, "interval of the summary log line (0: none)")
		maxBody    = fs.Int64("max-body", 16<<20, "largest request or response body the proxy reads into memory")
		resign     = fs.Bool("resign", false, "sign forwarded requests anew with the default AWS credentials (an AWS upstream needs it)")
		region     = fs.String("region", "", "region to sign for with -resign (default: the AWS configuration's)")
		jsonLog    = fs.Bool("json-log", false, "log JSON lines instead of text")
		printFault = fs.Bool("faults-help", false, "describe the -fault syntax and exit")
	)
	fs.Var(&faults, "fault", "a fault to inject, repeatable: comma-separated op=, kind=, rate=, after, latency=, jitter=, start=, duration=, hang (see -faults-help)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *printFault {
		_, err := io.WriteString(stdout, faultHelp)
		return err
	}

	var h slog.Handler = slog.NewTextHandler(stderr, nil)
	if *jsonLog {
		h = slog.NewJSONHandler(stderr, nil)
	}
	log := slog.New(h)
	cfg := kinesisproxy.Config{
		Upstream:     *upstream,
		Addr:         *listen,
		Faults:       faults,
		Seed:         *seed,
		MaxBody:      *maxBody,
		SummaryEvery: *summary,
		Logger:       log,
	}
	if *limits {
		cfg.Limits = kinesisproxy.Limits{Enabled: true, WriteRecords: *wRecords, WriteBytes: *wBytes, ReadCalls: *rCalls, ReadBytes: *rBytes}
	}
	if *resign {
		aws, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return fmt.Errorf("-resign: load the AWS configuration: %w", err)
		}
		if *region != "" {
			aws.Region = *region
		}
		cfg.Resign = &kinesisproxy.ResignConfig{Credentials: aws.Credentials, Region: aws.Region}
	}

	p, err := kinesisproxy.Start(ctx, cfg)
	if err != nil {
		return err
	}
	log.Info("kinesis-proxy: serving", "url", p.URL(), "upstream", cfg.Upstream, "limits", *limits,
		"faults", len(faults), "resign", *resign, "counters", p.URL()+kinesisproxy.CountersPath)
	fmt.Fprintf(stdout, "export AWS_ENDPOINT_URL_KINESIS=%s\n", p.URL())

	<-ctx.Done()
	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = p.Close(closeCtx)
	c := p.Counters().Total
	log.Info("kinesis-proxy: stopped", "requests", c.Requests, "forwarded", c.Forwarded,
		"throttled_entries", c.ThrottledEntries, "throttled_calls", c.ThrottledCalls,
		"faults", sumFaults(c.Faults), "upstream_errors", c.UpstreamErrors)
	return err
}

func sumFaults(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

var faultHelp = strings.TrimLeft(`
-fault takes comma-separated keys; kind is required:

  op=NAME         Kinesis operation (PutRecords, GetRecords, ...); default: all
  kind=KIND       entry-internal-failure  PutRecords entries answered InternalFailure
                  http-500                HTTP 500 InternalFailure
                  http-503                HTTP 503 ServiceUnavailable
                  reset                   TCP reset, no response
                  latency                 delay by latency ± jitter
                  blackout                fail with 503 (or hang) while the window is open
  rate=P          probability per call (per entry for entry-internal-failure); 0 or unset: all
  after           forward first, then fail: the write happened, the client sees a failure
  latency=D       latency=200ms; jitter=D spreads it uniformly by ± D
  start=D         window start after the proxy starts; duration=D its length (unset: for good)
  hang            blackout only: hold calls until the window closes instead of failing them

Examples:
  -fault 'op=PutRecords,kind=entry-internal-failure,rate=0.2'
  -fault 'op=GetRecords,kind=reset,rate=0.01,after'
  -fault 'kind=latency,latency=150ms,jitter=50ms'
  -fault 'kind=blackout,start=1m,duration=15s,hang'
`, "\n")
