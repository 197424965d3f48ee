package kinesisproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// CountersPath is where the proxy serves its Counters as JSON (GET), on its own address.
const CountersPath = "/_proxy/counters"

// Proxy is a running Kinesis limits-and-faults proxy. Its methods are safe for concurrent
// use.
type Proxy struct {
	cfg       Config
	upstream  *url.URL
	log       *slog.Logger
	ln        net.Listener
	srv       *http.Server
	transport *http.Transport
	signer    *v4.Signer
	limits    *limiter // nil when Limits.Enabled is false
	maps      *shardMaps
	counters  *counters
	rnd       *source
	faults    atomic.Pointer[faultSet]

	closing   chan struct{} // closed by Close: ends hangs and delays
	cancel    context.CancelFunc
	wg        sync.WaitGroup // Serve and the summary loop
	calls     sync.WaitGroup // serveHTTP, which Shutdown stops waiting for when ctx ends
	closeOnce sync.Once
	closeErr  error
}

// Start validates cfg, listens on cfg.Addr and serves until Close. ctx bounds only the
// start-up; a bad configuration is a *ConfigError.
func Start(ctx context.Context, cfg Config) (*Proxy, error) {
	cfg = cfg.withDefaults()
	upstream, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("kinesisproxy: listen: %w", err)
	}
	now := time.Now()
	base, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		cfg:      cfg,
		upstream: upstream,
		log:      cfg.Logger,
		ln:       ln,
		transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			// Bodies the proxy reads must come back as the upstream wrote them; a client
			// that asks for compression gets it from the upstream on the calls the proxy
			// only relays.
			DisableCompression: true,
		},
		signer:   v4.NewSigner(),
		counters: newCounters(now),
		rnd:      newSource(cfg.Seed),
		closing:  make(chan struct{}),
		cancel:   cancel,
	}
	if cfg.Limits.Enabled {
		p.limits = newLimiter(cfg.Limits)
	}
	p.maps = &shardMaps{list: p.listShards, streams: make(map[string]*streamMap)}
	p.faults.Store(&faultSet{faults: cfg.Faults, base: now})
	p.srv = &http.Server{
		Handler:           http.HandlerFunc(p.serveHTTP),
		ReadHeaderTimeout: 30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	p.wg.Go(func() {
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("kinesis-proxy: serve", "err", err)
		}
	})
	if cfg.SummaryEvery > 0 {
		p.wg.Go(func() { p.summarize(base, cfg.SummaryEvery) })
	}
	return p, nil
}

// URL returns the proxy's base URL, such as http://127.0.0.1:41234: the endpoint clients
// use (AWS_ENDPOINT_URL_KINESIS, kinesis.Options.BaseEndpoint).
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// Counters returns a snapshot of the counters.
func (p *Proxy) Counters() Counters { return p.counters.snapshot() }

// SetFaults replaces the faults. Their windows count from this call, so a test can open a
// blackout now with Fault{Kind: Blackout, Duration: time.Second}. Calls already past their
// fault decisions keep them. Invalid faults are refused with a *ConfigError and the old
// ones stay.
func (p *Proxy) SetFaults(faults []Fault) error {
	if err := validateFaults(faults); err != nil {
		return err
	}
	p.faults.Store(&faultSet{faults: append([]Fault(nil), faults...), base: time.Now()})
	return nil
}

// Close stops the proxy: calls held by a hanging blackout or a latency fault are answered
// 503 at once, the listener closes, calls in flight may finish until ctx ends and are then
// cut off. Close waits for the proxy's goroutines and is safe to call more than once; it
// returns ctx's error when it had to cut calls off.
func (p *Proxy) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		close(p.closing)
		if err := p.srv.Shutdown(ctx); err != nil {
			p.closeErr = fmt.Errorf("kinesisproxy: close: %w", err)
			_ = p.srv.Close()
		}
		p.cancel() // ends what srv.Close cut off: upstream calls, body reads
		p.calls.Wait()
		p.wg.Wait()
		p.transport.CloseIdleConnections()
	})
	return p.closeErr
}

// serveHTTP serves Kinesis calls (POST / with X-Amz-Target) and GET CountersPath.
func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	p.calls.Add(1)
	defer p.calls.Done()
	if r.URL.Path == CountersPath {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
			return
		}
		p.serveCounters(w)
		return
	}
	c := &call{p: p, w: w, r: r, op: operation(r)}
	p.counters.update(c.op, func(o *OpCounters) { o.Requests++ })
	if r.Header.Get(loopHeader) != "" {
		c.discardBody()
		c.writeError(http.StatusLoopDetected, "InternalFailure", "kinesisproxy: the request came back to the proxy: its upstream is the proxy itself")
		return
	}
	c.serve()
}

// operation returns the Kinesis operation X-Amz-Target names, "Unknown" for none.
func operation(r *http.Request) string {
	_, op, ok := strings.Cut(r.Header.Get("X-Amz-Target"), ".")
	if !ok || op == "" {
		return "Unknown"
	}
	return op
}
