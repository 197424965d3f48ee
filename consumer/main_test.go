package consumer

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/shardline/kinesis/metrics"
)

// allMetrics receives what every test's consumer emits (see track), so TestMain can check
// that each consumer and stream metric of the catalog is emitted by some scenario.
var allMetrics = metrics.NewMemory()

// track makes c report to allMetrics too.
func track(c *Consumer) *Consumer {
	c.cfg.metrics = metrics.Fanout(c.cfg.metrics, allMetrics)
	return c
}

// TestMain fails the run if any goroutine outlives the tests (readers, renewers and balancing
// loops must all stop when Run returns; idle keep-alive connections of the SDK's HTTP client
// are not ours), and, on a full run, if a consumer_* or stream_* metric of the catalog was
// never emitted.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && !testing.Short() {
		if missing := unemitted(); len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "catalog metrics never emitted by any consumer test: %v\n", missing)
			code = 1
		}
	}
	if code == 0 {
		if err := goleak.Find(
			goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
			goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func unemitted() []metrics.Name {
	snap := allMetrics.Snapshot()
	seen := map[string]bool{}
	for _, m := range []map[string]float64{snap.Counters, snap.Gauges} {
		for k := range m {
			name, _, _ := strings.Cut(k, "{")
			seen[name] = true
		}
	}
	for k := range snap.Histograms {
		name, _, _ := strings.Cut(k, "{")
		seen[name] = true
	}
	var missing []metrics.Name
	for _, d := range metrics.Catalog {
		if (strings.HasPrefix(string(d.Name), "consumer_") || strings.HasPrefix(string(d.Name), "stream_")) && !seen[string(d.Name)] {
			missing = append(missing, d.Name)
		}
	}
	return missing
}
