// Command orders is a request/response service in front of a Kinesis stream: POST /orders
// puts an order on the stream and answers once Kinesis has stored it, 202 Accepted with the
// shard and sequence number, or with a status that says what the client should do.
//
//	eval "$(localstack/up)"   # or real AWS: the usual AWS configuration, no endpoint
//	go run ./examples/orders -addr 127.0.0.1:8080
//	curl -i -d '{"order_id":"o-1","customer_id":"c-42","amount_cents":1999}' http://127.0.0.1:8080/orders
//
// It is the README's request/response recipe as a program:
//
//   - TryPut, not Put: a full buffer means Kinesis does not keep up, and a request that waits
//     for room only adds latency and holds a connection. TryPut refuses at once with
//     ErrBufferFull, answered 503 with Retry-After, so clients and load balancers back off.
//   - Result.Wait, bounded by -wait and the request's context: the order is acknowledged
//     only once stored. The producer batches what concurrent requests put, so many requests
//     share one PutRecords call.
//   - -linger (10 ms here, 100 ms by default): how long a record waits for others to share
//     its request. Under load batches fill and leave at once; at low load each request waits
//     up to the linger time, so a latency-sensitive service lowers it.
//   - Shutdown order on SIGTERM or SIGINT: http.Server.Shutdown first (no new requests; the
//     requests in flight finish, each waiting for its order's outcome), then Producer.Close
//     (sends what is left and stops). Closing the producer first would fail the requests
//     still arriving with ErrClosed.
//
// The status mapping is statusFor. The AWS configuration is config.LoadDefaultConfig's
// (AWS_ENDPOINT_URL_KINESIS points it at the local stack); the stream is created with
// -shards shards if missing. The program prints "listening on http://ADDR/" once it serves,
// and exits 0 after a clean shutdown.
package main

import (
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
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/kinesis/health"
	"github.com/shardline/kinesis/producer"
	"github.com/shardline/kinesis/streams"
)

func main() {
	var (
		addr     = flag.String("addr", "127.0.0.1:8080", "listen address")
		stream   = flag.String("stream", "shardline-orders", "stream name")
		shards   = flag.Int("shards", 2, "shards to create the stream with if it does not exist")
		linger   = flag.Duration("linger", 10*time.Millisecond, "producer linger: how long a record waits for others to share its request")
		buffer   = flag.Int("buffer", 10_000, "producer buffer, in records: beyond it requests are refused with 503")
		wait     = flag.Duration("wait", 5*time.Second, "how long a request waits for its order to be stored before answering 504")
		shutdown = flag.Duration("shutdown-timeout", 30*time.Second, "bound on the graceful shutdown")
	)
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := run(*addr, *stream, *shards, *linger, *buffer, *wait, *shutdown, logger); err != nil {
		fmt.Fprintln(os.Stderr, "orders:", err)
		os.Exit(1)
	}
}

func run(addr, stream string, shards int, linger time.Duration, buffer int, wait, shutdownTimeout time.Duration, logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("load AWS config: %w", err)
	}
	client := kinesis.NewFromConfig(cfg)
	setup, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := streams.Ensure(setup, client, stream, shards); err != nil {
		return err
	}
	p, err := producer.New(client, stream,
		producer.WithLinger(linger),
		producer.WithBufferLimits(buffer, 64<<20),
		producer.WithLogger(logger))
	if err != nil {
		return err
	}
	if err := p.Ready(setup); err != nil { // fail at start, not at the first order
		_ = p.Close(context.Background())
		return err
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = p.Close(context.Background())
		return err
	}
	srv := &http.Server{
		Handler:           (&service{p: p, wait: wait, log: logger}).routes(),
		ReadHeaderTimeout: 5 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Printf("listening on http://%s/\n", ln.Addr())

	select {
	case <-ctx.Done():
	case err := <-served: // the server failed on its own
		_ = p.Close(context.Background())
		return err
	}
	stop() // a second signal kills the process the default way

	// 1. Stop taking requests and let those in flight finish: each waits for its order.
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	shutdownErr := srv.Shutdown(sctx)
	// 2. Only then close the producer: it sends whatever is still buffered and stops.
	closeErr := p.Close(sctx)
	st := p.Stats()
	fmt.Printf("shut down: %d orders accepted, %d stored, %d failed\n", st.Accepted, st.Delivered, st.Failed)
	return errors.Join(shutdownErr, closeErr)
}

// service answers the HTTP API.
type service struct {
	p    *producer.Producer
	wait time.Duration
	log  *slog.Logger
}

func (s *service) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders", s.postOrder)
	mux.Handle("GET /healthz", health.LivenessHandler(s.p))
	mux.Handle("GET /readyz", health.ReadinessHandler(s.p))
	return mux
}

// order is what a client posts. The customer is the partition key: one customer's orders are
// stored in the order they were accepted.
type order struct {
	OrderID     string `json:"order_id"`
	CustomerID  string `json:"customer_id"`
	AmountCents int64  `json:"amount_cents"`
}

// stored is the answer to an order Kinesis stored.
type stored struct {
	OrderID        string `json:"order_id"`
	ShardID        string `json:"shard_id"`
	SequenceNumber string `json:"sequence_number"`
	SubSequence    int    `json:"sub_sequence"`
}

func (s *service) postOrder(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, producer.DefaultMaxRecordSize))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			reply(w, http.StatusRequestEntityTooLarge, "order too large")
			return
		}
		reply(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	var o order
	if err := json.Unmarshal(body, &o); err != nil || o.OrderID == "" || o.CustomerID == "" {
		reply(w, http.StatusBadRequest, `want JSON with "order_id" and "customer_id"`)
		return
	}

	res, err := s.p.TryPut(o.CustomerID, body)
	if err == nil {
		ctx, cancel := context.WithTimeout(r.Context(), s.wait)
		defer cancel()
		var out producer.Outcome
		if out, err = res.Wait(ctx); err == nil {
			writeJSON(w, http.StatusAccepted, stored{OrderID: o.OrderID, ShardID: out.ShardID,
				SequenceNumber: out.SequenceNumber, SubSequence: out.SubSequence})
			return
		}
	}
	code := statusFor(err)
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if code >= 500 {
		s.log.Warn("order not stored", "order", o.OrderID, "status", code, "err", err)
	}
	reply(w, code, err.Error())
}

// statusFor maps an error of TryPut or Result.Wait to an HTTP status. The order of the cases
// matters, because one error can match several of them: an abandoned wait matches the
// request context's error, and a record that Close gave up on matches ErrClosed and Close's
// context error too.
func statusFor(err error) int {
	var budget *producer.RetryBudgetError
	switch {
	case errors.Is(err, producer.ErrWaitAbandoned):
		// We stopped waiting (-wait, or the client left): the order may still be stored.
		// Clients retry with the same order_id and the consumer de-duplicates.
		return http.StatusGatewayTimeout
	case errors.Is(err, producer.ErrBufferFull):
		// Overload: Kinesis does not keep up with what clients send. Back off and retry.
		return http.StatusServiceUnavailable
	case errors.Is(err, producer.ErrClosed):
		// Shutting down: retry, reaching another instance.
		return http.StatusServiceUnavailable
	case errors.Is(err, producer.ErrRecordTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, producer.ErrEmptyPartitionKey), errors.Is(err, producer.ErrPartitionKeyTooLong),
		errors.Is(err, producer.ErrInvalidPartitionKey), errors.Is(err, producer.ErrInvalidExplicitHashKey):
		return http.StatusBadRequest
	case errors.Is(err, producer.ErrMaybeWritten):
		// Failed, but an attempt's result is unknown: Kinesis may hold the order. Like an
		// abandoned wait, the client retries with the same order_id.
		return http.StatusGatewayTimeout
	case errors.As(err, &budget):
		// Retried (throttling, service errors) until the retry budget ran out, and surely not
		// written: the stream is overloaded or failing. Retry later.
		return http.StatusServiceUnavailable
	}
	// Refused for good (an entry error code, a missing stream, denied access): not the
	// client's fault, and retrying will not help until someone fixes it.
	return http.StatusBadGateway
}

func reply(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
