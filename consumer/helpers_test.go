package consumer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardline/kinesis/aggregation"
	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/internal/shardmap"
)

// sink collects what handlers accepted. Record data is "key:counter".
type sink struct {
	mu      sync.Mutex
	last    map[string]int             // highest counter accepted per key
	seen    map[string]int             // times each "key:counter" was accepted
	byOwner map[string]int             // records accepted per worker
	readers map[string]map[string]bool // workers that delivered records of each shard
	order   []string                   // violations of per-key order
	total   int
}

func newSink() *sink {
	return &sink{last: map[string]int{}, seen: map[string]int{}, byOwner: map[string]int{}, readers: map[string]map[string]bool{}}
}

func (s *sink) accept(worker string, b *Batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readers[b.ShardID] == nil {
		s.readers[b.ShardID] = map[string]bool{}
	}
	s.readers[b.ShardID][worker] = true
	for _, r := range b.Records {
		key, n := parseData(r.Data)
		id := key + ":" + strconv.Itoa(n)
		s.seen[id]++
		s.total++
		s.byOwner[worker]++
		if s.seen[id] == 1 {
			if prev, ok := s.last[key]; ok && n != prev+1 {
				s.order = append(s.order, fmt.Sprintf("key %s: %d after %d on %s", key, n, prev, r.ShardID))
			}
			s.last[key] = n
		}
	}
}

func (s *sink) handler(worker string) Handler {
	return func(_ context.Context, b *Batch) error {
		s.accept(worker, b)
		return nil
	}
}

func (s *sink) unique() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// check fails unless every record of want was accepted, in per-key order; it returns the
// duplicate deliveries.
func (s *sink) check(t *testing.T, want map[string]int) (dups int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	missing := 0
	for key, n := range want {
		for i := 1; i <= n; i++ {
			if s.seen[key+":"+strconv.Itoa(i)] == 0 {
				missing++
			}
		}
	}
	for _, c := range s.seen {
		dups += c - 1
	}
	if missing > 0 {
		t.Errorf("%d records never delivered", missing)
	}
	if len(s.order) > 0 {
		t.Errorf("per-key order broken %d times, first: %s", len(s.order), s.order[0])
	}
	return dups
}

func parseData(data []byte) (string, int) {
	key, n, _ := strings.Cut(string(data), ":")
	i, _ := strconv.Atoi(n)
	return key, i
}

// fakeProducer puts "key:counter" records into the fake, plain or as KPL aggregates per shard,
// and remembers how many records each key got.
type fakeProducer struct {
	f       *fakeKinesis
	counter map[string]int
}

func newProducer(f *fakeKinesis) *fakeProducer { return &fakeProducer{f: f, counter: map[string]int{}} }

func (p *fakeProducer) next(key string) []byte {
	p.counter[key]++
	return []byte(key + ":" + strconv.Itoa(p.counter[key]))
}

// plain puts n plain records over keys.
func (p *fakeProducer) plain(n, keys int) {
	for i := 0; i < n; i++ {
		key := "k" + strconv.Itoa(i%keys)
		p.f.put(key, "", p.next(key))
	}
}

// aggregated puts n records over keys as aggregates of up to per records, one aggregate per
// open shard at a time, each sent with its first record's hash as explicit hash key.
func (p *fakeProducer) aggregated(n, keys, per int) {
	m := p.shardMap()
	builders := map[string]*aggregation.Builder{}
	first := map[string]string{}
	flush := func(shard string) {
		b := builders[shard]
		if b.Len() == 0 {
			return
		}
		p.f.put(first[shard], shardmap.HashKey(first[shard]).String(), b.AppendTo(nil))
		b.Reset()
	}
	for i := 0; i < n; i++ {
		key := "k" + strconv.Itoa(i%keys)
		e, _ := m.Lookup(shardmap.HashKey(key))
		b := builders[e.ID]
		if b == nil {
			b = aggregation.NewBuilder(0)
			builders[e.ID] = b
		}
		if b.Len() == 0 {
			first[e.ID] = key
		}
		b.Add(key, "", p.next(key))
		if b.Len() == per {
			flush(e.ID)
		}
	}
	ids := make([]string, 0, len(builders))
	for id := range builders {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		flush(id)
	}
}

func (p *fakeProducer) shardMap() *shardmap.Map {
	shards, err := shardmap.List(context.Background(), p.f, p.f.stream, nil)
	if err != nil {
		panic(err)
	}
	m, err := shardmap.New(shards)
	if err != nil {
		panic(err)
	}
	return m
}

// waitFor polls cond on the (fake) clock until it holds or limit passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// run starts c.Run in a goroutine and returns a function that stops it and returns Run's
// error.
func run(t *testing.T, c *Consumer, h Handler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx, h) }()
	return func() error {
		cancel()
		return <-errc
	}
}

// held returns how many leases each worker holds according to the store.
func held(t *testing.T, store checkpoint.Store, group, stream string) map[string]int {
	t.Helper()
	rows, err := store.ListLeases(context.Background(), group, stream)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, l := range rows {
		if l.Held() {
			out[l.Owner]++
		}
	}
	return out
}

// cuttableStore wraps a Store; once cut, every call fails as an unreachable store does, or
// with refuse when that is set (a store answering with a configuration error).
type cuttableStore struct {
	checkpoint.Store
	mu     sync.Mutex
	cut    bool
	refuse error
}

func (s *cuttableStore) setCut(v bool) { s.mu.Lock(); s.cut = v; s.mu.Unlock() }

func (s *cuttableStore) err(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.refuse != nil:
		return s.refuse
	case s.cut:
		return checkpoint.Unavailable(op, errInjected)
	}
	return nil
}

func (s *cuttableStore) GetLease(ctx context.Context, k checkpoint.ShardKey) (checkpoint.Lease, error) {
	if err := s.err("GetLease"); err != nil {
		return checkpoint.Lease{}, err
	}
	return s.Store.GetLease(ctx, k)
}
func (s *cuttableStore) ListLeases(ctx context.Context, g, st string) ([]checkpoint.Lease, error) {
	if err := s.err("ListLeases"); err != nil {
		return nil, err
	}
	return s.Store.ListLeases(ctx, g, st)
}
func (s *cuttableStore) TakeLease(ctx context.Context, k checkpoint.ShardKey, w string, n int64) (checkpoint.Lease, error) {
	if err := s.err("TakeLease"); err != nil {
		return checkpoint.Lease{}, err
	}
	return s.Store.TakeLease(ctx, k, w, n)
}
func (s *cuttableStore) RenewLease(ctx context.Context, l checkpoint.Lease) (checkpoint.Lease, error) {
	if err := s.err("RenewLease"); err != nil {
		return checkpoint.Lease{}, err
	}
	return s.Store.RenewLease(ctx, l)
}
func (s *cuttableStore) Checkpoint(ctx context.Context, l checkpoint.Lease, p checkpoint.Position) error {
	if err := s.err("Checkpoint"); err != nil {
		return err
	}
	return s.Store.Checkpoint(ctx, l, p)
}
func (s *cuttableStore) ReleaseLease(ctx context.Context, l checkpoint.Lease, p checkpoint.Position) error {
	if err := s.err("ReleaseLease"); err != nil {
		return err
	}
	return s.Store.ReleaseLease(ctx, l, p)
}
func (s *cuttableStore) RequestHandoff(ctx context.Context, k checkpoint.ShardKey, o, c string, n int64) error {
	if err := s.err("RequestHandoff"); err != nil {
		return err
	}
	return s.Store.RequestHandoff(ctx, k, o, c, n)
}
func (s *cuttableStore) DeleteLease(ctx context.Context, k checkpoint.ShardKey, n int64) error {
	if err := s.err("DeleteLease"); err != nil {
		return err
	}
	return s.Store.DeleteLease(ctx, k, n)
}
func (s *cuttableStore) Heartbeat(ctx context.Context, w checkpoint.Worker) (checkpoint.Worker, error) {
	if err := s.err("Heartbeat"); err != nil {
		return checkpoint.Worker{}, err
	}
	return s.Store.Heartbeat(ctx, w)
}
func (s *cuttableStore) ListWorkers(ctx context.Context, g, st string) ([]checkpoint.Worker, error) {
	if err := s.err("ListWorkers"); err != nil {
		return nil, err
	}
	return s.Store.ListWorkers(ctx, g, st)
}
func (s *cuttableStore) RemoveWorker(ctx context.Context, w checkpoint.Worker) error {
	if err := s.err("RemoveWorker"); err != nil {
		return err
	}
	return s.Store.RemoveWorker(ctx, w)
}

// trickle puts n plain records over keys every 100ms into p's stream until stopped, and
// returns a function that stops it and returns how many records were put in all.
func trickle(p *fakeProducer, n, keys int) (stop func() int) {
	var mu sync.Mutex
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			mu.Lock()
			p.plain(n, keys)
			mu.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	})
	return func() int {
		cancel()
		wg.Wait()
		total := 0
		for _, c := range p.counter {
			total += c
		}
		return total
	}
}

// fleet runs worker processes of one group as goroutines on a fake stream and a shared memory
// store. A crashed worker behaves like a killed process: every store call fails and its
// handler never returns, so it writes nothing more.
type fleet struct {
	t      *testing.T
	f      *fakeKinesis
	mem    *checkpoint.Memory
	s      *sink
	opts   []Option
	stores map[string]*cuttableStore
	stops  map[string]func() error

	frozen  chan struct{}
	crashed sync.Map
}

func newFleet(t *testing.T, f *fakeKinesis, opts ...Option) *fleet {
	return &fleet{t: t, f: f, mem: checkpoint.NewMemory(), s: newSink(), opts: opts,
		stores: map[string]*cuttableStore{}, stops: map[string]func() error{}, frozen: make(chan struct{})}
}

// start runs worker id, whose handler feeds the fleet's sink.
func (fl *fleet) start(id string, opts ...Option) *Consumer {
	fl.stores[id] = &cuttableStore{Store: fl.mem}
	opts = append(append([]Option{WithWorkerID(id)}, fl.opts...), opts...)
	c := newTestConsumer(fl.t, fl.f, fl.stores[id], opts...)
	fl.stops[id] = run(fl.t, c, func(ctx context.Context, b *Batch) error {
		if _, ok := fl.crashed.Load(id); ok {
			<-fl.frozen
			return errors.New("crashed")
		}
		fl.s.accept(id, b)
		return nil
	})
	return c
}

// crash makes worker id write nothing more, as a killed process.
func (fl *fleet) crash(id string) {
	fl.crashed.Store(id, true)
	fl.stores[id].setCut(true)
}

// stop stops worker id gracefully and returns Run's error.
func (fl *fleet) stop(id string) error {
	err := fl.stops[id]()
	delete(fl.stops, id)
	return err
}

// stopAll stops every worker, reporting the Run errors of those that did not crash.
func (fl *fleet) stopAll() {
	for id, stop := range fl.stops {
		if _, crashed := fl.crashed.Load(id); crashed {
			continue
		}
		if err := stop(); err != nil {
			fl.t.Errorf("%s: Run = %v", id, err)
		}
	}
	close(fl.frozen)
	for id, stop := range fl.stops {
		if _, crashed := fl.crashed.Load(id); crashed {
			_ = stop()
		}
	}
}

// held returns how many leases each worker holds according to the store.
func (fl *fleet) held() map[string]int { return held(fl.t, fl.mem, "shardline", testStream) }
