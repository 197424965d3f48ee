package workload

import "sync/atomic"

// Tally counts deliveries of user records by index. It is safe for concurrent use and costs
// one atomic add per record, the same for every library it judges.
type Tally struct {
	seen  []atomic.Uint32
	total atomic.Int64
	bad   atomic.Int64
	bytes atomic.Int64
	full  chan struct{}
	want  int64
}

// NewTally returns a Tally for records 0..n-1. Full is closed once n deliveries were counted.
func NewTally(n int) *Tally {
	return &Tally{seen: make([]atomic.Uint32, n), full: make(chan struct{}), want: int64(n)}
}

// Add counts one delivery of the record whose data is data and reports the running total.
func (t *Tally) Add(data []byte) int64 {
	i := Index(data)
	if i < 0 || i >= len(t.seen) {
		t.bad.Add(1)
	} else {
		t.seen[i].Add(1)
	}
	t.bytes.Add(int64(len(data)))
	n := t.total.Add(1)
	if n == t.want {
		close(t.full)
	}
	return n
}

// Full is closed when as many deliveries as records were counted.
func (t *Tally) Full() <-chan struct{} { return t.full }

// Total returns the deliveries counted.
func (t *Tally) Total() int64 { return t.total.Load() }

// Check returns how many records were never delivered, how many deliveries were duplicates,
// and how many deliveries carried data that names no record.
func (t *Tally) Check() (missing, duplicates, foreign int64) {
	for i := range t.seen {
		switch n := t.seen[i].Load(); {
		case n == 0:
			missing++
		case n > 1:
			duplicates += int64(n - 1)
		}
	}
	return missing, duplicates, t.bad.Load()
}
