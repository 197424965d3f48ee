package kinesisproxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/kinesis/internal/shardmap"
)

const (
	// mapMaxAge is how long a shard map is used without a reason to doubt it.
	mapMaxAge = 30 * time.Second
	// listBackoff is how long a failed listing is remembered before the next try, so a
	// missing stream does not cost a ListShards per call.
	listBackoff = time.Second
)

// shardMaps holds the shard map of each stream the proxy has routed records of.
type shardMaps struct {
	list    func(ctx context.Context, s streamRef, hdr http.Header) (*shardmap.Map, error)
	mu      sync.Mutex
	streams map[string]*streamMap
}

type streamMap struct {
	mu    sync.Mutex // held while routing, so that one listing runs at a time per stream
	m     *shardmap.Map
	at    time.Time
	stale atomic.Bool // set without mu when a response names a shard m does not predict
	err   error
	errAt time.Time
}

func (s *shardMaps) stream(name string) *streamMap {
	s.mu.Lock()
	defer s.mu.Unlock()
	sm := s.streams[name]
	if sm == nil {
		sm = &streamMap{}
		s.streams[name] = sm
	}
	return sm
}

// markStale makes the next routing of stream list its shards again.
func (s *shardMaps) markStale(stream string) { s.stream(stream).stale.Store(true) }

// route returns, for each hash, the ID of the open shard owning it, "" for a hash no
// open shard owns even after a fresh listing. hdr is the client's request header, whose
// credentials the listing reuses unless the proxy re-signs.
func (s *shardMaps) route(ctx context.Context, ref streamRef, hdr http.Header, hashes []shardmap.Hash, now time.Time) ([]string, error) {
	sm := s.stream(ref.name)
	sm.mu.Lock()
	defer sm.mu.Unlock()
	refreshed := false
	refresh := func() error {
		if sm.err != nil && now.Sub(sm.errAt) < listBackoff {
			return sm.err
		}
		refreshed = true
		sm.stale.Store(false)
		m, err := s.list(ctx, ref, hdr)
		if err != nil {
			sm.err, sm.errAt = err, now
			return err
		}
		sm.m, sm.at, sm.err = m, now, nil
		return nil
	}
	if sm.m == nil || sm.stale.Load() || now.Sub(sm.at) > mapMaxAge {
		if err := refresh(); err != nil && sm.m == nil {
			return nil, err
		}
	}
	ids := make([]string, len(hashes))
	for pass := 0; pass < 2; pass++ {
		missed := false
		for i, h := range hashes {
			e, ok := sm.m.Lookup(h)
			ids[i] = e.ID
			missed = missed || !ok
		}
		// A hash no open shard owns: the map predates a reshard. List once more.
		if !missed || refreshed || refresh() != nil {
			break
		}
	}
	return ids, nil
}

// listShards learns the open shards of a stream from the upstream.
func (p *Proxy) listShards(ctx context.Context, s streamRef, hdr http.Header) (*shardmap.Map, error) {
	p.counters.refreshed()
	shards, err := shardmap.List(ctx, upstreamLister{p: p, hdr: hdr}, s.name, nil)
	if err != nil {
		p.log.Warn("kinesis-proxy: cannot list shards; the stream's calls pass unlimited", "stream", s.name, "err", err)
		return nil, err
	}
	return shardmap.New(shards)
}

// upstreamLister sends ListShards calls upstream with the credentials of the client call
// that needed them, which is also how LocalStack tells accounts apart.
type upstreamLister struct {
	p   *Proxy
	hdr http.Header
}

type listShardsRequest struct {
	StreamName *string `json:",omitempty"`
	NextToken  *string `json:",omitempty"`
}

func (l upstreamLister) ListShards(ctx context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	body, err := json.Marshal(listShardsRequest{StreamName: in.StreamName, NextToken: in.NextToken})
	if err != nil {
		return nil, err
	}
	h := cleanHeader(l.hdr)
	h.Set("X-Amz-Target", "Kinesis_20131202.ListShards")
	h.Set("Content-Type", "application/x-amz-json-1.1")
	h.Del("Accept-Encoding")
	h.Del("Content-Encoding") // the client's body may have been encoded; this one is not
	resp, err := l.p.send(ctx, "", outbound{method: http.MethodPost, path: "/", header: h, body: body})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := readAtMost(resp.Body, l.p.cfg.MaxBody)
	if err != nil {
		return nil, fmt.Errorf("kinesisproxy: ListShards response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(b, &e)
		return nil, fmt.Errorf("kinesisproxy: ListShards: HTTP %d %s: %s", resp.StatusCode, e.Type, e.Message)
	}
	// The JSON protocol's member names are the SDK's field names.
	var out kinesis.ListShardsOutput
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("kinesisproxy: ListShards response: %w", err)
	}
	return &out, nil
}
