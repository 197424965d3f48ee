package kinesisproxy

import (
	"math/rand/v2"
	"sync"
	"time"
)

// faultSet is the installed faults with the moment their windows count from.
type faultSet struct {
	faults []Fault
	base   time.Time
}

// active reports whether f's window is open at now.
func (s *faultSet) active(f Fault, now time.Time) bool {
	from := s.base.Add(f.Start)
	return !now.Before(from) && (f.Duration == 0 || now.Before(from.Add(f.Duration)))
}

// plan is what the faults decided for one call, before anything is done about it.
type plan struct {
	blackout   bool      // fail with 503 at once
	hangUntil  time.Time // hold the call until then; zero: no hang
	delay      time.Duration
	delayAfter time.Duration
	fail       FaultKind // HTTP500, HTTP503 or Reset instead of forwarding; 0: none
	failAfter  FaultKind // the same after forwarding
	// entryRates are the rates of the open EntryInternalFailure faults, drawn per entry.
	entryRates, entryAfterRates []float64
}

// forever stands for a hang without an end: the client or Close ends it.
var forever = time.Unix(1<<40, 0)

// source is the proxy's one seeded random source. Every draw takes its lock, so the
// sequence of draws is the sequence of calls as the proxy saw them.
type source struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newSource(seed uint64) *source {
	return &source{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// hit draws once for a fault of the given rate; rate 0 means every time and draws nothing.
// The caller holds s.mu.
func (s *source) hit(rate float64) bool { return rate == 0 || s.r.Float64() < rate }

// decide draws the call-level faults for a call of op at now.
func decide(set *faultSet, op string, now time.Time, rnd *source) plan {
	var p plan
	if set == nil || len(set.faults) == 0 {
		return p
	}
	rnd.mu.Lock()
	defer rnd.mu.Unlock()
	for _, f := range set.faults {
		if (f.Op != "" && f.Op != op) || !set.active(f, now) {
			continue
		}
		switch f.Kind {
		case Blackout:
			if !f.Hang {
				p.blackout = true
				continue
			}
			end := forever
			if f.Duration > 0 {
				end = set.base.Add(f.Start + f.Duration)
			}
			if end.After(p.hangUntil) {
				p.hangUntil = end
			}
		case EntryInternalFailure:
			if f.After {
				p.entryAfterRates = append(p.entryAfterRates, f.Rate)
			} else {
				p.entryRates = append(p.entryRates, f.Rate)
			}
		case Latency:
			if !rnd.hit(f.Rate) {
				continue
			}
			d := f.Latency
			if f.Jitter > 0 {
				d += time.Duration(rnd.r.Int64N(int64(2*f.Jitter)+1)) - f.Jitter
			}
			if f.After {
				p.delayAfter += d
			} else {
				p.delay += d
			}
		default: // HTTP500, HTTP503, Reset: the first that hits wins
			if !rnd.hit(f.Rate) {
				continue
			}
			if !f.After && p.fail == 0 {
				p.fail = f.Kind
			} else if f.After && p.failAfter == 0 {
				p.failAfter = f.Kind
			}
		}
	}
	if p.blackout {
		p.hangUntil = time.Time{}
	}
	return p
}

// drawEntries reports, for n entries, which ones an EntryInternalFailure of the given rates
// hits: an entry fails when any rate's draw hits.
func (s *source) drawEntries(rates []float64, n int, eligible func(i int) bool) []bool {
	if len(rates) == 0 {
		return nil
	}
	hit := make([]bool, n)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range hit {
		if !eligible(i) {
			continue
		}
		for _, r := range rates {
			if s.hit(r) {
				hit[i] = true
			}
		}
	}
	return hit
}
