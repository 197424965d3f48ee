package examples_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shardline/kinesis/health"
)

// get fetches url and returns the status code and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// addrOf returns the address the example printed in a line like
// "metrics ... on http://127.0.0.1:1234/{...}".
func addrOf(t *testing.T, line string) string {
	t.Helper()
	_, rest, ok := strings.Cut(line, "http://")
	addr, _, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		t.Fatalf("no address in %q", line)
	}
	return "http://" + addr
}

// eventTypes returns the "type" of every JSON event line in a process's stderr.
func eventTypes(t *testing.T, path string) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	types := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev struct {
			Msg  string `json:"msg"`
			Type string `json:"type"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Msg == "shardline event" {
			types[ev.Type]++
		}
	}
	return types
}

// Guards against the examples' operational endpoints being there in the docs only (issue 10):
// the consumer and the producer serve /metrics, /healthz and /readyz with -metrics-addr (and
// the consumer /status), the probes answer with the health reports, and -events prints
// lifecycle events as JSON lines.
func TestExamplesServeHealthAndEvents(t *testing.T) {
	s := newScenario(t, "redis", 2, 3*time.Second)
	c := s.startConsumer("consumer", consumerArgs(s, "-metrics-addr", "127.0.0.1:0", "-events")...)
	line, err := c.stdoutLine("metrics, health and status on ", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	base := addrOf(t, line)
	prod := s.startProducer(600, 20, 200, "-metrics-addr", "127.0.0.1:0", "-events")
	pline, err := prod.stdoutLine("metrics and health on ", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pbase := addrOf(t, pline)
	if code, body := get(t, pbase+"/readyz"); code != 200 || !strings.Contains(body, `"component": "producer"`) {
		t.Errorf("producer /readyz = %d %s", code, body)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		code, body := get(t, pbase+"/metrics")
		if code == 200 && strings.Contains(body, `shardline_kinesis_call_duration_seconds_count{operation="ListShards"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("producer /metrics = %d, without the ListShards call latency", code)
		}
	}
	var waitErr error
	deadline := time.Now().Add(time.Minute)
	for {
		code, body := get(t, base+"/readyz")
		var a struct {
			Status  health.Status   `json:"status"`
			Reports []health.Report `json:"reports"`
		}
		waitErr = json.Unmarshal([]byte(body), &a)
		if waitErr == nil && code == 200 && len(a.Reports) == 1 && a.Reports[0].Component == "consumer" && a.Status == health.OK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer /readyz never answered 200 and ok: %d %s (%v)", code, body, waitErr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("consumer /healthz = %d", code)
	}
	if code, body := get(t, base+"/status"); code != 200 || !strings.Contains(body, `"worker_id"`) {
		t.Errorf("consumer /status = %d %s", code, body)
	}
	if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "shardline_consumer_workers_live") ||
		!strings.Contains(body, "shardline_store_call_duration_seconds") {
		t.Errorf("consumer /metrics = %d, without the consumer's metrics", code)
	}
	s.finish(prod, 600, 20, time.Minute)
	if got := eventTypes(t, c.stderr); got["consumer.worker_started"] != 1 || got["consumer.lease_acquired"] == 0 || got["consumer.worker_stopped"] != 1 {
		t.Errorf("consumer events on stderr: %v", got)
	}
	if got := eventTypes(t, prod.stderr); got["producer.closed"] != 1 || got["producer.shard_map_refreshed"] == 0 {
		t.Errorf("producer events on stderr: %v", got)
	}
}
