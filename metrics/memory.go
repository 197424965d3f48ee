package metrics

import (
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
)

// ReservoirSize is the number of samples a [Memory] histogram keeps per series for its
// percentiles.
const ReservoirSize = 1024

// Memory is a Collector that keeps every metric in memory, for tests, debugging and small
// services that report through their own channel. Read it with [Memory.Snapshot],
// [Memory.WriteJSON] or the per-series readers [Memory.Counter], [Memory.Gauge] and
// [Memory.Histogram]; none of them changes what is stored. Only [Memory.Reset] and
// [Memory.SnapshotAndReset] clear it.
//
// Memory is safe for concurrent use. Every write lands whole, either before or after a
// concurrent Reset: a counter increment is never lost or counted twice, and a histogram's
// count, sum, min, max and sample always move together.
//
// Memory records each call under the kind of the call (Add as a counter, Set as a gauge,
// Observe as a histogram) without checking it against the catalog. For a catalog name it keeps
// only the labels the catalog declares, so a stray Shard on a stream-level metric does not
// split the series. Values that no Shardline metric can take are dropped: NaN or infinite
// values, and negative counter deltas. This keeps every snapshot encodable as JSON.
//
// Memory use grows with the number of series (names × label values), which Shardline keeps
// bounded (never a partition key or sequence number as a label), and a histogram series holds
// at most [ReservoirSize] samples, 8 KiB, however many values it observes.
//
// The zero value is not usable; create one with [NewMemory].
type Memory struct {
	// mu guards the three maps, not the series in them. Writers hold it shared while they update
	// a series (with atomics or the series' own lock) and exclusively only to add a series;
	// Reset holds it exclusively, so it waits for every write in flight and no write can reach a
	// series after Reset dropped it.
	mu         sync.RWMutex
	counters   map[seriesKey]*atomicFloat
	gauges     map[seriesKey]*atomicFloat
	histograms map[seriesKey]*histogram
	calls      *callLog // nil without WithCallLog
}

// seriesKey identifies a series without formatting a string: keys are rendered only when a
// snapshot is taken.
type seriesKey struct {
	name   Name
	labels Labels // canonical: see canonical
}

// NewMemory returns an empty in-memory collector.
func NewMemory(opts ...MemoryOption) *Memory {
	m := &Memory{}
	for _, o := range opts {
		if o != nil {
			o(m)
		}
	}
	m.clear()
	return m
}

// clear replaces the maps; m.mu must be held exclusively or m not yet shared.
func (m *Memory) clear() {
	m.counters = make(map[seriesKey]*atomicFloat)
	m.gauges = make(map[seriesKey]*atomicFloat)
	m.histograms = make(map[seriesKey]*histogram)
}

func key(name Name, l Labels) seriesKey {
	l, _, _ = canonical(name, l)
	return seriesKey{name: name, labels: l}
}

// acquire returns the series of k in *field with m.mu held: shared if the series existed,
// exclusively (and the second result true) if acquire had to create it. The caller updates
// the series and then calls m.release. Creating and first writing under one exclusive hold
// means no reader ever sees a series that no write reached, and no Reset can fall between
// the two and drop the write.
func acquire[T any](m *Memory, field *map[seriesKey]*T, k seriesKey) (*T, bool) {
	m.mu.RLock()
	if s := (*field)[k]; s != nil {
		return s, false
	}
	m.mu.RUnlock()
	m.mu.Lock()
	s := (*field)[k]
	if s == nil {
		s = new(T)
		(*field)[k] = s
	}
	return s, true
}

// release undoes acquire.
func (m *Memory) release(exclusive bool) {
	if exclusive {
		m.mu.Unlock()
	} else {
		m.mu.RUnlock()
	}
}

// Add implements Collector. It drops negative, NaN and infinite deltas.
func (m *Memory) Add(name Name, delta float64, l Labels) {
	if !(delta >= 0) || math.IsInf(delta, 1) {
		return
	}
	c, excl := acquire(m, &m.counters, key(name, l))
	c.add(delta)
	m.release(excl)
	if m.calls != nil {
		m.calls.add(name, l)
	}
}

// Set implements Collector. It drops NaN and infinite values.
func (m *Memory) Set(name Name, value float64, l Labels) {
	if math.IsNaN(value) || math.IsInf(value, 0) {
		return
	}
	g, excl := acquire(m, &m.gauges, key(name, l))
	g.store(value)
	m.release(excl)
}

// Observe implements Collector. It drops NaN and infinite values.
func (m *Memory) Observe(name Name, value float64, l Labels) {
	if math.IsNaN(value) || math.IsInf(value, 0) {
		return
	}
	h, excl := acquire(m, &m.histograms, key(name, l))
	h.observe(value)
	m.release(excl)
	if m.calls != nil {
		m.calls.observe(name, value, l)
	}
}

// Counter returns the value of one counter series, or 0 if it was never added to since the
// last Reset. Labels the catalog does not declare for name are ignored, as in Add.
func (m *Memory) Counter(name Name, l Labels) float64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if c := m.counters[key(name, l)]; c != nil {
		return c.load()
	}
	return 0
}

// Gauge returns the value of one gauge series, or 0 if it was never set since the last Reset.
// Labels the catalog does not declare for name are ignored, as in Set.
func (m *Memory) Gauge(name Name, l Labels) float64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if g := m.gauges[key(name, l)]; g != nil {
		return g.load()
	}
	return 0
}

// Histogram returns the summary of one histogram series, or the zero summary (Count 0) if it
// observed nothing since the last Reset. Labels the catalog does not declare for name are
// ignored, as in Observe.
func (m *Memory) Histogram(name Name, l Labels) HistogramSummary {
	m.mu.RLock()
	h := m.histograms[key(name, l)]
	var raw histogramData
	if h != nil {
		raw = h.copy()
	}
	m.mu.RUnlock()
	return raw.summary()
}

// Snapshot returns a deep copy of every series. Writers keep running while it is taken: each
// series is read whole, and series are read one after another, as a Prometheus scrape would.
// Use [Memory.SnapshotAndReset] for a cut that no write can straddle.
func (m *Memory) Snapshot() Snapshot {
	m.mu.RLock()
	counters, gauges, histograms := m.counters, m.gauges, m.histograms
	raw := make(map[seriesKey]histogramData, len(histograms))
	for k, h := range histograms {
		raw[k] = h.copy()
	}
	s := Snapshot{
		Counters: make(map[string]float64, len(counters)),
		Gauges:   make(map[string]float64, len(gauges)),
	}
	for k, c := range counters {
		s.Counters[Key(k.name, k.labels)] = c.load()
	}
	for k, g := range gauges {
		s.Gauges[Key(k.name, k.labels)] = g.load()
	}
	m.mu.RUnlock()
	// Sorting samples for percentiles is the slow part: do it without blocking new series.
	s.Histograms = make(map[string]HistogramSummary, len(raw))
	for k, d := range raw {
		s.Histograms[Key(k.name, k.labels)] = d.summary()
	}
	return s
}

// Reset drops every series. Writes that complete before Reset are gone afterwards; writes that
// start after it create fresh series; none is split or lost.
func (m *Memory) Reset() {
	m.mu.Lock()
	m.clear()
	m.mu.Unlock()
	if m.calls != nil {
		m.calls.mu.Lock()
		m.calls.slowRing.clear()
		m.calls.failedRing.clear()
		m.calls.mu.Unlock()
	}
}

// SnapshotAndReset drops every series, as Reset does, and returns what they held. No write
// falls between the snapshot and the reset, so summing the counters of successive
// SnapshotAndReset calls (and a final Snapshot) gives exactly what was added: the way to report
// deltas per interval.
func (m *Memory) SnapshotAndReset() Snapshot {
	m.mu.Lock()
	old := &Memory{counters: m.counters, gauges: m.gauges, histograms: m.histograms}
	m.clear()
	m.mu.Unlock()
	// No writer can reach old any more: they all held m.mu shared, and Lock waited for them.
	return old.Snapshot()
}

// WriteJSON writes a snapshot as one JSON object followed by a newline; see [Snapshot] for the
// layout. Keys come out sorted, so equal snapshots give equal bytes.
func (m *Memory) WriteJSON(w io.Writer) error {
	return json.NewEncoder(w).Encode(m.Snapshot())
}

var _ Collector = (*Memory)(nil)

// Snapshot is a point-in-time copy of a [Memory] collector, keyed by series as [Key] renders
// them. It shares nothing with the collector. Its JSON form is
//
//	{"counters":{"key":1},"gauges":{"key":2},"histograms":{"key":{"count":3,"sum":...}}}
//
// and decodes back into an equal Snapshot with encoding/json.
type Snapshot struct {
	Counters   map[string]float64          `json:"counters"`
	Gauges     map[string]float64          `json:"gauges"`
	Histograms map[string]HistogramSummary `json:"histograms"`
}

// HistogramSummary describes the values one histogram series observed since it was created or
// last reset.
//
// Count, Sum, Min, Max and Mean are exact. P50, P95 and P99 are nearest-rank percentiles
// (the smallest sample with at least p% of the samples at or below it) of a uniform random
// sample of ReservoirSize observations (Vitter's algorithm R). Up to ReservoirSize
// observations they are exact. Beyond, the rank of the answer is off by a standard error of
// sqrt(p(1-p)/1024): about 1.6 percentile points for P50, 0.7 for P95 and 0.3 for P99, so a
// reported P99 lies between the true P98 and P99.6 in about 19 cases out of 20. The sample
// covers everything since the last reset equally, without decay: reset per interval to see
// recent latencies.
type HistogramSummary struct {
	Count uint64  `json:"count"`
	Sum   float64 `json:"sum"`
	Min   float64 `json:"min"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
}

// atomicFloat is a float64 updated without a lock.
type atomicFloat struct{ bits atomic.Uint64 }

func (f *atomicFloat) add(delta float64) {
	for {
		old := f.bits.Load()
		next := math.Float64bits(math.Float64frombits(old) + delta)
		if f.bits.CompareAndSwap(old, next) {
			return
		}
	}
}

func (f *atomicFloat) store(v float64) { f.bits.Store(math.Float64bits(v)) }

func (f *atomicFloat) load() float64 { return math.Float64frombits(f.bits.Load()) }

// histogram is one histogram series: exact aggregates and a bounded reservoir sample.
type histogram struct {
	mu sync.Mutex
	d  histogramData
}

type histogramData struct {
	count         uint64
	sum, min, max float64
	sample        []float64 // grows to ReservoirSize, then values are replaced at random
}

func (h *histogram) observe(v float64) {
	h.mu.Lock()
	d := &h.d
	d.count++
	d.sum += v
	if d.count == 1 || v < d.min {
		d.min = v
	}
	if d.count == 1 || v > d.max {
		d.max = v
	}
	if len(d.sample) < ReservoirSize {
		d.sample = append(d.sample, v)
	} else if j := rand.Uint64N(d.count); j < ReservoirSize {
		d.sample[j] = v
	}
	h.mu.Unlock()
}

// copy returns the series' data with its own sample slice.
func (h *histogram) copy() histogramData {
	h.mu.Lock()
	d := h.d
	d.sample = slices.Clone(h.d.sample)
	h.mu.Unlock()
	return d
}

// summary computes the summary; it sorts d.sample in place.
func (d histogramData) summary() HistogramSummary {
	if d.count == 0 {
		return HistogramSummary{}
	}
	slices.Sort(d.sample)
	return HistogramSummary{
		Count: d.count,
		Sum:   d.sum,
		Min:   d.min,
		Max:   d.max,
		Mean:  d.sum / float64(d.count),
		P50:   nearestRank(d.sample, 500),
		P95:   nearestRank(d.sample, 950),
		P99:   nearestRank(d.sample, 990),
	}
}

// nearestRank returns the quantile of the sorted, non-empty sample at perMille/1000. Integer
// arithmetic keeps ranks exact: 0.95*n in floating point can land just above an integer.
func nearestRank(sorted []float64, perMille int) float64 {
	rank := (perMille*len(sorted) + 999) / 1000 // ceil, 1-based
	return sorted[max(0, min(rank-1, len(sorted)-1))]
}
