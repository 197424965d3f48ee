package redis

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the run when goroutines outlive the tests: the store starts none, so any left
// over belong to a test (a proxy pipe, a worker loop) or to a client a test did not close.
// go-redis stops a pool's background dialer up to a second after Close, hence the grace period.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := leftoverGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines outlived the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// leftoverGoroutines waits up to grace for every goroutine but the test runner's own to end,
// and returns the stacks of those still running.
func leftoverGoroutines(grace time.Duration) string {
	deadline := time.Now().Add(grace)
	for {
		var leaked []string
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "leftoverGoroutines") || strings.Contains(g, "signal.signal_recv") {
				continue
			}
			leaked = append(leaked, g)
		}
		if len(leaked) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
