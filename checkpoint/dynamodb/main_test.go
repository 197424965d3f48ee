package dynamodb_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the run when goroutines outlive the tests (a server, transport or racer a
// test forgot to stop). The Store starts none; idle keep-alive connections of the SDK's HTTP
// clients are the only goroutines allowed to remain.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := waitForGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines outlived the tests:\n\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// waitForGoroutines waits up to d for every goroutine but the allowed ones to end and returns
// the stacks of those still running.
func waitForGoroutines(d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		leaked := strayGoroutines()
		if len(leaked) == 0 || time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func strayGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var stray []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		switch {
		case strings.Contains(g, "strayGoroutines"), // the goroutine asking
			strings.Contains(g, "net/http.(*persistConn)"), // idle keep-alive connections
			strings.Contains(g, "os/signal.signal_recv"):
			continue
		}
		stray = append(stray, g)
	}
	return stray
}
