//go:build unix

package aggregation

import (
	"syscall"
	"time"
)

// processCPUTime returns the user+system CPU time this process has used. Benchmarks report it
// next to wall time because the machines they run on are shared: wall time there includes time
// spent waiting for a CPU, CPU time does not.
func processCPUTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
