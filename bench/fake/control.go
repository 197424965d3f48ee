package fake

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/shardline/kinesis/aggregation"
	"github.com/shardline/kinesis/bench/hashkey"
	"github.com/shardline/kinesis/bench/measure"
	"github.com/shardline/kinesis/bench/workload"
)

// Control makes, inspects and removes the fake's streams. *Server implements it in process;
// Remote implements it over HTTP for a fake running in another process.
type Control interface {
	// Create makes an empty stream that takes PutRecords.
	Create(ctx context.Context, req CreateRequest) error
	// Load makes a stream holding the records of a workload, for GetRecords.
	Load(ctx context.Context, req LoadRequest) (LoadInfo, error)
	// Stats returns what a stream received through PutRecords.
	Stats(ctx context.Context, stream string) (Stats, error)
	// Delete removes a stream and frees its records.
	Delete(ctx context.Context, stream string) error
}

// CreateRequest describes an empty stream.
type CreateRequest struct {
	Stream string
	Shards int
	// Expect is the number of user records the workload puts (indices 0..Expect-1). When it
	// is positive every accepted entry is deaggregated (with the AWS deaggregator, not with
	// any compared library) and checked; when 0 entries are only counted.
	Expect int
}

// LoadRequest describes a stream pre-filled with a workload.
type LoadRequest struct {
	Stream string
	Shards int
	Spec   workload.Spec
	// Aggregate packs the user records of each shard into KPL aggregates of at most
	// AggregateMax bytes (default 51200, the KPL's AggregationMaxSize); the user records of
	// an aggregate all map to the shard it is on.
	Aggregate    bool
	AggregateMax int
}

// LoadInfo says what Load built.
type LoadInfo struct {
	KinesisRecords int   // records GetRecords serves, over all shards
	PerShard       []int // user records per shard
}

// Stats is what a stream received through PutRecords.
type Stats struct {
	Requests    int64 // PutRecords calls
	Entries     int64 // Kinesis records accepted
	Aggregates  int64 // entries that were KPL aggregates
	UserRecords int64 // user records in the entries
	// Misplaced counts user records on a shard other than the one their own partition key
	// (read from their data) maps to.
	Misplaced int64
	// KeyChanged counts user records whose partition key, as a consumer reads it back, is not
	// their own.
	KeyChanged int64
	Malformed  int64 // entries or user records that could not be read
	// Missing, Duplicates and Foreign compare the user records received with 0..Expect-1.
	Missing, Duplicates, Foreign int64
	PerShard                     []int64 // Kinesis records per shard
}

// Create implements Control.
func (s *Server) Create(_ context.Context, req CreateRequest) error {
	if req.Shards < 1 || req.Stream == "" {
		return fmt.Errorf("fake: create %q with %d shards", req.Stream, req.Shards)
	}
	st := s.newStream(req.Stream, req.Shards)
	if req.Expect > 0 {
		st.verify = true
		st.tally = workload.NewTally(req.Expect)
	}
	s.put(st)
	return nil
}

func (s *Server) newStream(name string, shards int) *stream {
	st := &stream{name: name, ranges: hashkey.Even(shards), shards: make([]*shard, shards)}
	st.stats.perShard = make([]atomic.Int64, shards)
	first := s.sequence()
	for i := range st.shards {
		st.shards[i] = &shard{first: first}
	}
	return st
}

func (s *Server) put(st *stream) {
	s.mu.Lock()
	s.streams[st.name] = st
	s.mu.Unlock()
}

// Load implements Control.
func (s *Server) Load(_ context.Context, req LoadRequest) (LoadInfo, error) {
	if err := req.Spec.Validate(); err != nil {
		return LoadInfo{}, err
	}
	if req.Shards < 1 || req.Stream == "" {
		return LoadInfo{}, fmt.Errorf("fake: load %q with %d shards", req.Stream, req.Shards)
	}
	if req.AggregateMax == 0 {
		req.AggregateMax = 51200
	}
	st := s.newStream(req.Stream, req.Shards)
	keys := req.Spec.KeyTable()
	keyShard := make([]int, len(keys))
	for k, key := range keys {
		keyShard[k] = hashkey.Find(st.ranges, hashkey.Of(key))
	}
	info := LoadInfo{PerShard: make([]int, req.Shards)}
	arrival := float64(time.Now().UnixMilli()) / 1000
	add := func(shard int, key string, data []byte) {
		seq := s.sequence()
		b, _ := json.Marshal(struct {
			Data                        []byte
			PartitionKey                string
			SequenceNumber              string
			ApproximateArrivalTimestamp float64
		}{data, key, seq, arrival})
		sh := st.shards[shard]
		sh.recs = append(sh.recs, stored{seq: seq, json: b, size: len(data) + len(key)})
		info.KinesisRecords++
	}
	builders := make([]*aggregation.Builder, req.Shards)
	firstKey := make([]string, req.Shards)
	flush := func(shard int) {
		b := builders[shard]
		if b.Len() > 0 {
			add(shard, firstKey[shard], b.AppendTo(nil))
			b.Reset()
		}
	}
	buf := make([]byte, req.Spec.Size)
	for i := range req.Spec.Records {
		k := i % len(keys)
		shard := keyShard[k]
		info.PerShard[shard]++
		data := workload.Data(buf, i, keys[k])
		if !req.Aggregate {
			add(shard, keys[k], bytes.Clone(data))
			continue
		}
		if builders[shard] == nil {
			builders[shard] = aggregation.NewBuilder(req.AggregateMax)
		}
		b := builders[shard]
		if b.Len() == 0 {
			firstKey[shard] = keys[k]
		}
		if !b.Add(keys[k], "", data) {
			flush(shard)
			firstKey[shard] = keys[k]
			if !b.Add(keys[k], "", data) {
				return LoadInfo{}, fmt.Errorf("fake: a %d-byte record does not fit an aggregate of %d bytes", len(data), req.AggregateMax)
			}
		}
	}
	if req.Aggregate {
		for shard := range builders {
			if builders[shard] != nil {
				flush(shard)
			}
		}
	}
	s.put(st)
	return info, nil
}

// Stats implements Control.
func (s *Server) Stats(_ context.Context, name string) (Stats, error) {
	st, err := s.stream(name)
	if err != nil {
		return Stats{}, err
	}
	p := &st.stats
	out := Stats{
		Requests: p.requests.Load(), Entries: p.entries.Load(), Aggregates: p.aggregates.Load(),
		UserRecords: p.userRecords.Load(), Misplaced: p.misplaced.Load(), KeyChanged: p.keyChanged.Load(),
		Malformed: p.malformed.Load(),
	}
	for i := range p.perShard {
		out.PerShard = append(out.PerShard, p.perShard[i].Load())
	}
	if st.tally != nil {
		out.Missing, out.Duplicates, out.Foreign = st.tally.Check()
	}
	return out, nil
}

// Delete implements Control.
func (s *Server) Delete(_ context.Context, name string) error {
	s.mu.Lock()
	delete(s.streams, name)
	s.mu.Unlock()
	return nil
}

// serveControl serves the control API: POST /bench/create, /bench/load, /bench/delete?stream=
// and GET /bench/stats?stream= and /bench/cpu (the serving process's CPU time in ns), with
// JSON bodies.
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var (
		out any
		err error
	)
	switch r.URL.Path {
	case "/bench/create":
		var req CreateRequest
		if err = json.NewDecoder(r.Body).Decode(&req); err == nil {
			err = s.Create(ctx, req)
		}
	case "/bench/load":
		var req LoadRequest
		if err = json.NewDecoder(r.Body).Decode(&req); err == nil {
			out, err = s.Load(ctx, req)
		}
	case "/bench/stats":
		out, err = s.Stats(ctx, r.URL.Query().Get("stream"))
	case "/bench/delete":
		err = s.Delete(ctx, r.URL.Query().Get("stream"))
	case "/bench/cpu":
		out = measure.ProcessCPU().Nanoseconds()
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// Remote controls a fake served by another process.
type Remote struct {
	Base   string // the fake's base URL
	Client *http.Client
}

var _ Control = (*Remote)(nil)

func (c *Remote) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return err
	}
	hc := c.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("fake: %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(msg))
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Create implements Control.
func (c *Remote) Create(ctx context.Context, req CreateRequest) error {
	return c.call(ctx, http.MethodPost, "/bench/create", req, nil)
}

// Load implements Control.
func (c *Remote) Load(ctx context.Context, req LoadRequest) (LoadInfo, error) {
	var info LoadInfo
	err := c.call(ctx, http.MethodPost, "/bench/load", req, &info)
	return info, err
}

// Stats implements Control.
func (c *Remote) Stats(ctx context.Context, stream string) (Stats, error) {
	var st Stats
	err := c.call(ctx, http.MethodGet, "/bench/stats?stream="+url.QueryEscape(stream), nil, &st)
	return st, err
}

// Delete implements Control.
func (c *Remote) Delete(ctx context.Context, stream string) error {
	return c.call(ctx, http.MethodPost, "/bench/delete?stream="+url.QueryEscape(stream), nil, nil)
}

// CPU returns the CPU time the fake's process has used so far.
func (c *Remote) CPU(ctx context.Context) (time.Duration, error) {
	var ns int64
	err := c.call(ctx, http.MethodGet, "/bench/cpu", nil, &ns)
	return time.Duration(ns), err
}
