// Package measure takes the cost of a run: wall time, process CPU time (user + system, all
// threads, from getrusage) and heap allocations (runtime.MemStats), between two snapshots.
//
// Process CPU includes the garbage collector and every goroutine of the process, so a run
// is charged for all the work it causes in this process. Anything else running in the
// process at the same time is charged too: run one measurement at a time.
package measure

import (
	"runtime"
	"syscall"
	"time"
)

// Snapshot is the process's counters at one instant.
type Snapshot struct {
	wall    time.Time
	cpu     time.Duration
	mallocs uint64
	bytes   uint64
}

// Take runs a GC first when gc is true (so garbage of an earlier run is not charged to the
// next) and returns the current counters.
func Take(gc bool) Snapshot {
	if gc {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Snapshot{wall: time.Now(), cpu: ProcessCPU(), mallocs: ms.Mallocs, bytes: ms.TotalAlloc}
}

// Usage is the difference between two snapshots.
type Usage struct {
	Wall    time.Duration
	CPU     time.Duration
	Mallocs uint64
	Bytes   uint64
}

// Since returns the usage from s to now.
func (s Snapshot) Since() Usage {
	e := Take(false)
	return Usage{Wall: e.wall.Sub(s.wall), CPU: e.cpu - s.cpu, Mallocs: e.mallocs - s.mallocs, Bytes: e.bytes - s.bytes}
}

// ProcessCPU returns the user plus system CPU time of this process so far.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
