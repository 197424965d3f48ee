package kinesisproxy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/shardline/kinesis/localstack"
	"github.com/shardline/kinesis/localstack/kinesisproxy"
)

// Guards against a configuration mistake that starts a proxy doing something else than
// asked: each is refused with an error naming the field.
func TestConfigValidation(t *testing.T) {
	creds := credentials.NewStaticCredentialsProvider("a", "b", "")
	ok := kinesisproxy.Config{Upstream: "http://127.0.0.1:4568"}
	for _, tc := range []struct {
		field  string
		change func(*kinesisproxy.Config)
	}{
		{"Upstream", func(c *kinesisproxy.Config) { c.Upstream = "" }},
		{"Upstream", func(c *kinesisproxy.Config) { c.Upstream = "127.0.0.1:4568" }},
		{"Upstream", func(c *kinesisproxy.Config) { c.Upstream = "ftp://127.0.0.1" }},
		{"Upstream", func(c *kinesisproxy.Config) { c.Upstream = "http://h/?x=1" }},
		{"Limits.WriteRecords", func(c *kinesisproxy.Config) { c.Limits = limits(func(l *kinesisproxy.Limits) { l.WriteRecords = 0 }) }},
		{"Limits.ReadBytes", func(c *kinesisproxy.Config) { c.Limits = limits(func(l *kinesisproxy.Limits) { l.ReadBytes = -1 }) }},
		{"MaxBody", func(c *kinesisproxy.Config) { c.MaxBody = 1000 }},
		{"SummaryEvery", func(c *kinesisproxy.Config) { c.SummaryEvery = -time.Second }},
		{"Resign.Credentials", func(c *kinesisproxy.Config) { c.Resign = &kinesisproxy.ResignConfig{Region: "us-east-1"} }},
		{"Resign.Region", func(c *kinesisproxy.Config) { c.Resign = &kinesisproxy.ResignConfig{Credentials: creds} }},
		{"Faults[1].Op", func(c *kinesisproxy.Config) {
			c.Faults = []kinesisproxy.Fault{{Kind: kinesisproxy.Reset}, {Op: "PutRecordz", Kind: kinesisproxy.Reset}}
		}},
		{"Faults[0].Kind", func(c *kinesisproxy.Config) { c.Faults = []kinesisproxy.Fault{{}} }},
		{"Faults[0].Rate", func(c *kinesisproxy.Config) { c.Faults = []kinesisproxy.Fault{{Kind: kinesisproxy.HTTP500, Rate: 2}} }},
		{"Faults[0].Hang", func(c *kinesisproxy.Config) {
			c.Faults = []kinesisproxy.Fault{{Kind: kinesisproxy.HTTP503, Hang: true}}
		}},
		{"Faults[0].Start", func(c *kinesisproxy.Config) {
			c.Faults = []kinesisproxy.Fault{{Kind: kinesisproxy.Blackout, Start: -time.Second}}
		}},
	} {
		cfg := ok
		tc.change(&cfg)
		p, err := kinesisproxy.Start(context.Background(), cfg)
		var ce *kinesisproxy.ConfigError
		if !errors.Is(err, kinesisproxy.ErrInvalidConfig) || !errors.As(err, &ce) || ce.Option != tc.field {
			if p != nil {
				_ = p.Close(context.Background())
			}
			t.Fatalf("%s: Start error %v, want a ConfigError for %s", tc.field, err, tc.field)
		}
	}
	// Limits off: their values do not matter.
	p, err := kinesisproxy.Start(context.Background(), kinesisproxy.Config{Upstream: ok.Upstream, Limits: kinesisproxy.Limits{WriteRecords: -1}})
	if err != nil {
		t.Fatalf("disabled limits refused: %v", err)
	}
	defer p.Close(context.Background())
	if !strings.HasPrefix(p.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL %s: the default address must be loopback", p.URL())
	}
	// SetFaults refuses bad faults and keeps the old ones.
	if err := p.SetFaults([]kinesisproxy.Fault{{Kind: kinesisproxy.Latency}}); !errors.Is(err, kinesisproxy.ErrInvalidConfig) {
		t.Fatalf("SetFaults with a latency fault without latency: %v", err)
	}
}

// captured is a slog handler that keeps its records.
type captured struct {
	mu      sync.Mutex
	records []slog.Record
}

func (c *captured) Enabled(context.Context, slog.Level) bool { return true }
func (c *captured) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.records = append(c.records, r.Clone())
	return nil
}
func (c *captured) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *captured) WithGroup(string) slog.Handler      { return c }

// Guards against counters that disagree with what clients saw, a counters endpoint that
// serves something else than Counters, and a summary that is not logged.
func TestCounters(t *testing.T) {
	d := direct(t)
	stream := localstack.NewStream(t, d, 1)
	logs := &captured{}
	p := startProxy(t, kinesisproxy.Config{Limits: limits(func(l *kinesisproxy.Limits) { l.WriteRecords = 5 }),
		SummaryEvery: 50 * time.Millisecond, Logger: slog.New(logs)})
	c := via(t, p, false)
	ctx := ctxFor(t, 30*time.Second)
	out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries("k", 8, 100)})
	if err != nil || aws.ToInt32(out.FailedRecordCount) != 3 {
		t.Fatalf("PutRecords: %v, %d failed (want 3 of 8 at 5 records/s)", err, aws.ToInt32(out.FailedRecordCount))
	}
	time.Sleep(120 * time.Millisecond)

	resp, err := ownedHTTP(t).Get(p.URL() + kinesisproxy.CountersPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got kinesisproxy.Counters
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d, %v", kinesisproxy.CountersPath, resp.StatusCode, err)
	}
	pr := got.Operations["PutRecords"]
	if pr.Requests != 1 || pr.Forwarded != 1 || pr.Entries != 8 || pr.ThrottledEntries != 3 || pr.BytesIn == 0 || pr.BytesOut == 0 {
		t.Fatalf("PutRecords counters %+v", pr)
	}
	if got.ShardMapRefreshes != 1 || got.Total.Requests != 1 || got.Started.IsZero() {
		t.Fatalf("counters %+v", got)
	}
	if post, err := ownedHTTP(t).Post(p.URL()+kinesisproxy.CountersPath, "application/json", nil); err != nil || post.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST %s: %v %v", kinesisproxy.CountersPath, post.Status, err)
	} else {
		post.Body.Close()
	}

	logs.mu.Lock()
	lines := len(logs.records)
	logs.mu.Unlock()
	time.Sleep(150 * time.Millisecond) // three idle intervals
	logs.mu.Lock()
	defer logs.mu.Unlock()
	var requests, throttled int64
	for _, r := range logs.records {
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "requests":
				requests += a.Value.Int64()
			case "throttled_entries":
				throttled += a.Value.Int64()
			}
			return true
		})
	}
	// One call: one line, or more when ticks fell between its arrival and its answer; the
	// lines sum to the call's counts, and idle intervals log nothing.
	if n := len(logs.records); n < 1 || n != lines || requests != 1 || throttled != 3 {
		t.Fatalf("%d summary lines (%d before three idle intervals) summing %d requests and %d throttled entries, want 1 and 3", n, lines, requests, throttled)
	}
}

// Guards against unbounded memory: a PutRecords body over MaxBody is refused with HTTP 413
// and never forwarded.
func TestMaxBody(t *testing.T) {
	d := direct(t)
	stream := localstack.NewStream(t, d, 1)
	p := startProxy(t, kinesisproxy.Config{MaxBody: 1 << 20})
	c := via(t, p, false)
	_, err := c.PutRecords(ctxFor(t, 30*time.Second), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries("k", 2, 600<<10)})
	var api smithy.APIError
	if statusOf(err) != http.StatusRequestEntityTooLarge || !errors.As(err, &api) || api.ErrorCode() != "ValidationException" {
		t.Fatalf("1.6 MiB body through a 1 MiB proxy: %v", err)
	}
	if cs := p.Counters().Operations["PutRecords"]; cs.Forwarded != 0 || cs.Requests != 1 {
		t.Fatalf("counters %+v", cs)
	}
}

// Guards against calls the proxy only relays being changed or lost: control-plane calls
// through the SDK and a CBOR call (the Java SDK's protocol) reach the engine and come back.
func TestRelay(t *testing.T) {
	d := direct(t)
	stream := localstack.NewStream(t, d, 2)
	p := startProxy(t, kinesisproxy.Config{Limits: kinesisproxy.DefaultLimits()})
	c := via(t, p, false)
	ctx := ctxFor(t, 30*time.Second)
	sum, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil || aws.ToInt32(sum.StreamDescriptionSummary.OpenShardCount) != 2 {
		t.Fatalf("DescribeStreamSummary: %+v, %v", sum, err)
	}
	_, err = c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream + "-missing")})
	var notFound *types.ResourceNotFoundException
	if !errors.As(err, &notFound) {
		t.Fatalf("missing stream: %v, want ResourceNotFoundException", err)
	}

	// CBOR ListStreams: the empty map (0xa0) as body. Relayed unscanned; the engine
	// answers CBOR.
	req, _ := http.NewRequest(http.MethodPost, p.URL()+"/", bytes.NewReader([]byte{0xa0}))
	req.Header.Set("Content-Type", "application/x-amz-cbor-1.1")
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.ListStreams")
	req.Header.Set("X-Amz-Date", time.Now().UTC().Format("20060102T150405Z"))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := ownedHTTP(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "cbor") || !bytes.Contains(body, []byte(stream)) {
		t.Fatalf("CBOR ListStreams: %s %q %q", resp.Status, resp.Header.Get("Content-Type"), body)
	}
	if got := p.Counters().Operations["ListStreams"]; got.Unscanned != 1 || got.Forwarded != 1 {
		t.Fatalf("CBOR counters %+v", got)
	}
}

// Guards against a proxy that forwards to itself forever (AWS_ENDPOINT_URL_KINESIS pointing
// at the proxy when it starts).
func TestLoopRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p, err := kinesisproxy.Start(context.Background(), kinesisproxy.Config{Upstream: "http://" + addr, Addr: addr})
	if err != nil {
		t.Skipf("port %s taken again: %v", addr, err)
	}
	defer p.Close(context.Background())
	c := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(p.URL()), HTTPClient: ownedHTTP(t),
		Credentials: credentials.NewStaticCredentialsProvider("a", "b", ""), Retryer: aws.NopRetryer{}})
	_, err = c.ListStreams(ctxFor(t, 10*time.Second), &kinesis.ListStreamsInput{})
	if statusOf(err) != http.StatusLoopDetected {
		t.Fatalf("a call to a proxy that is its own upstream: %v, want 508", err)
	}
}

// Guards against re-signing that AWS would refuse: the upstream must receive a SigV4
// signature, by the proxy's credentials, for its own host and for the body it receives (a
// body the proxy changed). No AWS here, so the upstream is a loopback server that checks
// the signature the way AWS does: it signs the request it received again with the same
// key and time and compares.
func TestResign(t *testing.T) {
	creds := credentials.NewStaticCredentialsProvider("AKIDPROXY", "proxy-secret", "")
	type seen struct {
		host, access string
		entries      int
		err          error
	}
	var mu sync.Mutex
	var got []seen
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	upstream := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s := seen{host: r.Host, err: verifySigV4(r, body, creds)}
		if _, rest, ok := strings.Cut(r.Header.Get("Authorization"), "Credential="); ok {
			s.access, _, _ = strings.Cut(rest, "/")
		}
		var req struct{ Records []json.RawMessage }
		_ = json.Unmarshal(body, &req)
		s.entries = len(req.Records)
		mu.Lock()
		got = append(got, s)
		mu.Unlock()
		var out strings.Builder
		out.WriteString(`{"FailedRecordCount":0,"Records":[`)
		for i := range req.Records {
			if i > 0 {
				out.WriteString(",")
			}
			fmt.Fprintf(&out, `{"SequenceNumber":"%d","ShardId":"shardId-000000000000"}`, i)
		}
		out.WriteString(`]}`)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = io.WriteString(w, out.String())
	})}
	go upstream.Serve(ln)
	defer upstream.Close()

	p, err := kinesisproxy.Start(context.Background(), kinesisproxy.Config{
		Upstream: "http://" + ln.Addr().String(), Seed: 1,
		Resign: &kinesisproxy.ResignConfig{Credentials: creds, Region: "eu-west-1"},
		Faults: []kinesisproxy.Fault{{Kind: kinesisproxy.EntryInternalFailure, Rate: 0.5}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	c := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(p.URL()), HTTPClient: ownedHTTP(t),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDCLIENT", "client-secret", ""), Retryer: aws.NopRetryer{}})
	out, err := c.PutRecords(ctxFor(t, 10*time.Second), &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: entries("k", 20, 10)})
	if err != nil {
		t.Fatal(err)
	}
	failed := int(aws.ToInt32(out.FailedRecordCount))
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("upstream saw %d calls", len(got))
	}
	s := got[0]
	if s.err != nil || s.access != "AKIDPROXY" || s.host != ln.Addr().String() || s.entries != 20-failed || failed == 0 {
		t.Fatalf("upstream saw %+v (%d of 20 entries failed before forwarding)", s, failed)
	}
}

// verifySigV4 checks r's SigV4 signature as AWS would: it signs a copy holding only the
// signed headers with the same credentials, scope and time, and compares.
func verifySigV4(r *http.Request, body []byte, creds aws.CredentialsProvider) error {
	auth := r.Header.Get("Authorization")
	var scope, signed, sig string
	for _, part := range strings.Split(strings.TrimPrefix(auth, "AWS4-HMAC-SHA256 "), ", ") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "Credential":
			scope = v
		case "SignedHeaders":
			signed = v
		case "Signature":
			sig = v
		}
	}
	parts := strings.Split(scope, "/")
	if len(parts) != 5 {
		return fmt.Errorf("credential scope %q", scope)
	}
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return err
	}
	cp, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	for _, h := range strings.Split(signed, ";") {
		if h != "host" {
			cp.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	cp.Header.Del("Authorization")
	c, err := creds.Retrieve(context.Background())
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), c, cp, hex.EncodeToString(sum[:]), parts[3], parts[2], when); err != nil {
		return err
	}
	if !strings.HasSuffix(cp.Header.Get("Authorization"), "Signature="+sig) {
		return fmt.Errorf("signature mismatch: got %s, computed %s", auth, cp.Header.Get("Authorization"))
	}
	return nil
}
