package producer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/goleak"

	"github.com/shardline/kinesis/aggregation"
	"github.com/shardline/kinesis/internal/shardmap"
	"github.com/shardline/kinesis/localstack"
	"github.com/shardline/kinesis/metrics"
	"github.com/shardline/kinesis/producer"
)

// leakOptions ignores the SDK's idle keep-alive connections, which outlive a test by design.
func leakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreCurrent(),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	}
}

// sent is what an integration test put: per key, the data in Put order.
type sent struct {
	want    map[string][]string
	results []*producer.Result
	datas   []string
}

// putRecords puts n records over nkeys keys, each "key-K:counter:" padded to size bytes.
func putRecords(t *testing.T, p *producer.Producer, n, nkeys, size int) *sent {
	t.Helper()
	s := &sent{want: map[string][]string{}}
	for i := range n {
		key := fmt.Sprintf("key-%d", i%nkeys)
		data := fmt.Sprintf("%s:%06d:", key, len(s.want[key]))
		data += strings.Repeat("x", max(0, size-len(data)))
		r, err := p.Put(context.Background(), key, []byte(data))
		if err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
		s.want[key] = append(s.want[key], data)
		s.results = append(s.results, r)
		s.datas = append(s.datas, data)
	}
	return s
}

type readRecord struct {
	shard, seq, key, data string
	sub                   int
}

// readStream reads every shard from TRIM_HORIZON with the raw SDK and deaggregates with
// aggregation.Parser, dropping (and counting) user records outside their shard's range as the
// KCL does.
func readStream(t *testing.T, client *kinesis.Client, stream string, want int) (recs []readRecord, ranges map[string]shardmap.Range) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	shards, err := shardmap.List(ctx, client, stream, nil)
	if err != nil {
		t.Fatal(err)
	}
	ranges = map[string]shardmap.Range{}
	var p aggregation.Parser
	dropped := 0
	for _, sh := range shards {
		id := aws.ToString(sh.ShardId)
		rng, err := shardmap.ShardRange(sh)
		if err != nil {
			t.Fatal(err)
		}
		ranges[id] = rng
		it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for range 10_000 {
			out, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10_000)})
			if err != nil {
				t.Fatalf("GetRecords on %s: %v", id, err)
			}
			for _, r := range out.Records {
				seq := aws.ToString(r.SequenceNumber)
				switch p.Parse(r.Data) {
				case aggregation.Plain:
					recs = append(recs, readRecord{shard: id, seq: seq, key: aws.ToString(r.PartitionKey), data: string(r.Data)})
				case aggregation.Aggregated:
					for i := range p.Len() {
						u := p.Record(i)
						if !rng.Contains(shardmap.HashKeyBytes(u.PartitionKey)) {
							dropped++
							continue
						}
						recs = append(recs, readRecord{shard: id, seq: seq, sub: u.SubSequence, key: string(u.PartitionKey), data: string(u.Data)})
					}
				default:
					t.Fatalf("malformed aggregate at %s/%s: %v", id, seq, p.Err())
				}
			}
			iter = out.NextShardIterator
			if iter == nil || (len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0) {
				break
			}
		}
	}
	if dropped > 0 {
		t.Errorf("a consumer drops %d records stored outside their shard's range", dropped)
	}
	if len(recs) != want {
		t.Errorf("read %d records, want %d", len(recs), want)
	}
	return recs, ranges
}

// checkStream asserts every record is read exactly once, on the shard whose range holds its
// key's MD5, each key's records in Put order, and that each outcome names where it was read.
func checkStream(t *testing.T, client *kinesis.Client, stream string, s *sent) {
	t.Helper()
	recs, ranges := readStream(t, client, stream, len(s.datas))
	got := map[string][]string{}
	at := map[string]readRecord{}
	for _, r := range recs {
		if !ranges[r.shard].Contains(shardmap.HashKey(r.key)) {
			t.Errorf("record %.20s of key %s on shard %s, outside its range", r.data, r.key, r.shard)
		}
		if !strings.HasPrefix(r.data, r.key+":") {
			t.Errorf("record %.20s read under key %s", r.data, r.key)
		}
		got[r.key] = append(got[r.key], r.data)
		at[r.seq+"/"+strconv.Itoa(r.sub)] = r
	}
	for key, datas := range s.want {
		g := got[key]
		if len(g) != len(datas) {
			t.Errorf("key %s: read %d records, want %d", key, len(g), len(datas))
			continue
		}
		for i := range datas {
			if g[i] != datas[i] {
				t.Errorf("key %s: record %d is %.20s, want %.20s (order or duplicates)", key, i, g[i], datas[i])
				break
			}
		}
	}
	for i, r := range s.results {
		o, ok := r.Outcome()
		if !ok || o.Err != nil {
			t.Fatalf("record %d: outcome %+v (known %v)", i, o, ok)
		}
		if rr, ok := at[o.SequenceNumber+"/"+strconv.Itoa(o.SubSequence)]; !ok || rr.data != s.datas[i] || rr.shard != o.ShardID {
			t.Fatalf("record %d: outcome %+v does not point at it", i, o)
		}
	}
}

func produce(t *testing.T, client *kinesis.Client, stream string, n, keys, size int, opts ...producer.Option) (*sent, producer.Stats) {
	t.Helper()
	p, err := producer.New(client, stream, opts...)
	if err != nil {
		t.Fatal(err)
	}
	s := putRecords(t, p, n, keys, size)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return s, p.Stats()
}

// Guards against anything lost, duplicated, reordered or stored where a KCL consumer would
// drop it, against the real Kinesis engine: 20,000 records over 1,000 keys on 4 shards.
func TestIntegrationAggregated(t *testing.T) {
	client := localstack.Kinesis(t)
	defer goleak.VerifyNone(t, leakOptions()...)
	stream := localstack.NewStream(t, client, 4)
	start := time.Now()
	s, st := produce(t, client, stream, 20_000, 1000, 60)
	t.Logf("20000 records in %v: %+v", time.Since(start), st)
	if st.Delivered != 20_000 || st.KinesisRecords > 200 || st.Resent != 0 {
		t.Errorf("stats %+v: want every record delivered in aggregates, none resent", st)
	}
	checkStream(t, client, stream, s)
}

// The same without aggregation: each record is its own Kinesis record.
func TestIntegrationPlain(t *testing.T) {
	client := localstack.Kinesis(t)
	defer goleak.VerifyNone(t, leakOptions()...)
	stream := localstack.NewStream(t, client, 4)
	s, st := produce(t, client, stream, 1500, 100, 60, producer.WithAggregation(false))
	if st.Delivered != 1500 || st.KinesisRecords != 1500 {
		t.Errorf("stats %+v", st)
	}
	checkStream(t, client, stream, s)
}

// The SDK's own codec (WithWireCodec(false)) gives the same outcomes as Shardline's, which
// every other integration test uses: shard and sequence number of every record as stored.
func TestIntegrationSDKCodec(t *testing.T) {
	client := localstack.Kinesis(t)
	defer goleak.VerifyNone(t, leakOptions()...)
	stream := localstack.NewStream(t, client, 2)
	s, st := produce(t, client, stream, 2000, 100, 60, producer.WithWireCodec(false))
	if st.Delivered != 2000 {
		t.Errorf("stats %+v", st)
	}
	checkStream(t, client, stream, s)
}

// throttler is an http.RoundTripper that throttles a share of every PutRecords request's
// entries the way Kinesis does: those entries are removed from the request before it reaches
// the engine (so they are not stored) and come back with ErrorCode
// ProvisionedThroughputExceededException, FailedRecordCount counting them.
type throttler struct {
	base  http.RoundTripper
	share float64
	mu    sync.Mutex
	rng   *rand.Rand
	// throttled counts the entries throttled; calls the PutRecords requests seen.
	throttled, calls atomic.Int64

	// answered holds, for each user record (its data) in a throttled entry, when the answer
	// that throttled it came back; early lists records sent again sooner than minGap after.
	minGap   time.Duration
	answered map[string]time.Time
	early    []string
	parser   aggregation.Parser
}

// userRecords returns the data of the user records a PutRecords entry carries (th.mu held).
func (th *throttler) userRecords(raw json.RawMessage) ([]string, error) {
	var e struct{ Data []byte }
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, err
	}
	switch th.parser.Parse(e.Data) {
	case aggregation.Plain:
		return []string{string(e.Data)}, nil
	case aggregation.Aggregated:
		out := make([]string, th.parser.Len())
		for i := range out {
			out[i] = string(th.parser.Record(i).Data)
		}
		return out, nil
	}
	return nil, th.parser.Err()
}

type putRecordsBody struct {
	Records    []json.RawMessage `json:"Records"`
	StreamName string            `json:"StreamName,omitempty"`
	StreamARN  string            `json:"StreamARN,omitempty"`
}

type putRecordsResult struct {
	FailedRecordCount int               `json:"FailedRecordCount"`
	Records           []json.RawMessage `json:"Records"`
	EncryptionType    string            `json:"EncryptionType,omitempty"`
}

func (th *throttler) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("X-Amz-Target") != "Kinesis_20131202.PutRecords" {
		return th.base.RoundTrip(req)
	}
	th.calls.Add(1)
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	var in putRecordsBody
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, err
	}
	th.mu.Lock()
	sent := time.Now()
	throttle := make([]bool, len(in.Records))
	var kept []json.RawMessage
	var held []string // the user records this answer throttles
	for i := range in.Records {
		datas, err := th.userRecords(in.Records[i])
		if err != nil {
			th.mu.Unlock()
			return nil, err
		}
		for _, d := range datas {
			if at, ok := th.answered[d]; ok && sent.Sub(at) < th.minGap {
				th.early = append(th.early, fmt.Sprintf("%.20s… again %v after it was throttled", d, sent.Sub(at)))
			}
		}
		throttle[i] = th.rng.Float64() < th.share
		if throttle[i] {
			held = append(held, datas...)
		} else {
			kept = append(kept, in.Records[i])
		}
	}
	th.mu.Unlock()
	defer func() { // the answer leaves now: its throttled records may go again minGap later
		th.mu.Lock()
		defer th.mu.Unlock()
		now := time.Now()
		for _, d := range held {
			th.answered[d] = now
		}
	}()

	var out putRecordsResult
	resp := &http.Response{StatusCode: 200, Header: http.Header{}, Request: req, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	resp.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp.Header.Set("X-Amzn-Requestid", "throttler")
	if len(kept) > 0 {
		in.Records = kept
		nb, _ := json.Marshal(in)
		fwd := req.Clone(req.Context())
		fwd.Body = io.NopCloser(bytes.NewReader(nb))
		fwd.ContentLength = int64(len(nb))
		fwd.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(nb)), nil }
		base, err := th.base.RoundTrip(fwd)
		if err != nil {
			return nil, err
		}
		defer base.Body.Close()
		rb, err := io.ReadAll(base.Body)
		if err != nil {
			return nil, err
		}
		if base.StatusCode != 200 {
			base.Body = io.NopCloser(bytes.NewReader(rb))
			return base, nil
		}
		if err := json.Unmarshal(rb, &out); err != nil {
			return nil, err
		}
		resp.Header = base.Header.Clone()
		resp.Header.Del("X-Amz-Crc32")
		resp.Header.Del("Content-Length")
	}
	merged := make([]json.RawMessage, len(throttle))
	next := 0
	for i, t := range throttle {
		if t {
			merged[i] = json.RawMessage(`{"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded for shard (injected by the test)"}`)
			out.FailedRecordCount++
			th.throttled.Add(1)
			continue
		}
		merged[i] = out.Records[next]
		next++
	}
	out.Records = merged
	rb, _ := json.Marshal(out)
	resp.Body = io.NopCloser(bytes.NewReader(rb))
	resp.ContentLength = int64(len(rb))
	return resp, nil
}

// Guards against throttled entries being lost, duplicated or reordered, against retries
// without backoff, and against miscounted metrics: a transport throttles 30% of every
// request's entries, with ordering on (the default), with and without aggregation.
func TestIntegrationThrottled(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		opts []producer.Option
	}{
		{"aggregated", 6000, []producer.Option{producer.WithAggregationMaxSize(1024)}},
		{"plain", 800, []producer.Option{producer.WithAggregation(false)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			th := &throttler{base: http.DefaultTransport.(*http.Transport).Clone(), share: 0.3, rng: rand.New(rand.NewPCG(7, 11)),
				minGap: 10 * time.Millisecond, answered: map[string]time.Time{}} // half the 20 ms base
			defer th.base.(*http.Transport).CloseIdleConnections()
			client := localstack.Kinesis(t, func(o *kinesis.Options) { o.HTTPClient = &http.Client{Transport: th} })
			defer goleak.VerifyNone(t, leakOptions()...)
			stream := localstack.NewStream(t, client, 4)
			m := metrics.NewMemory()
			start := time.Now()
			s, st := produce(t, client, stream, tc.n, 100, 40, append(tc.opts,
				producer.WithMetrics(m), producer.WithRetryBudget(30, time.Minute),
				producer.WithBackoff(20*time.Millisecond, 200*time.Millisecond))...)
			took := time.Since(start)
			injected := th.throttled.Load()
			t.Logf("%d records in %v, %d PutRecords calls, %d entries throttled: %+v", tc.n, took, th.calls.Load(), injected, st)
			if injected == 0 {
				t.Fatal("nothing was throttled: the test tests nothing")
			}
			checkStream(t, client, stream, s)

			l := metrics.Labels{Stream: stream}
			pte := l
			pte.ErrorType = producer.CodeThroughputExceeded
			if got := m.Counter(metrics.ProducerThrottles, l); got != float64(injected) {
				t.Errorf("throttles metric %v, want the %d injected", got, injected)
			}
			if got := m.Counter(metrics.ProducerErrors, pte); got != float64(injected) {
				t.Errorf("errors metric (%s) %v, want %d", pte.ErrorType, got, injected)
			}
			if got := m.Counter(metrics.ProducerRetries, l); got < float64(injected) || got != float64(st.Retries) {
				t.Errorf("retries metric %v, want at least one record per throttled entry (%d) and equal to Stats (%d)", got, injected, st.Retries)
			}
			if got := m.Counter(metrics.ProducerRecordsSent, l); got != float64(tc.n) {
				t.Errorf("records sent metric %v, want %d", got, tc.n)
			}
			// Backoff: no throttled record goes again before half the 20 ms base has passed.
			if len(th.early) > 0 {
				t.Errorf("%d resends (of %d throttled records) left before the backoff's %v, e.g. %s", len(th.early), len(th.answered), th.minGap, th.early[0])
			}
		})
	}
}
