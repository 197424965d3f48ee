package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/goleak"

	"github.com/shardline/kinesis/localstack"
	"github.com/shardline/kinesis/localstack/kinesisproxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lockedBuffer is a bytes.Buffer the proxy's logger and the test may use at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Guards against a program that does not print the endpoint to use, ignores its -fault
// flags, or does not stop cleanly on a signal (ctx stands for it).
func TestRun(t *testing.T) {
	localstack.Kinesis(t)
	s, _ := localstack.Get(context.Background())
	if s.Kinesis == "" {
		t.Skip("needs a local Kinesis endpoint")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	stderr := &lockedBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-upstream", s.Kinesis, "-listen", "127.0.0.1:0", "-summary", "0",
			"-fault", "op=ListStreams,kind=http-503"}, outW, stderr)
		outW.Close()
	}()
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the program's output: %v (stderr: %s)", err, stderr)
	}
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "export AWS_ENDPOINT_URL_KINESIS=")
	if !ok || !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("first line %q", line)
	}
	go io.Copy(io.Discard, outR)

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := localstack.Kinesis(t, func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(url)
		o.HTTPClient = &http.Client{Transport: tr}
		o.Retryer = aws.NopRetryer{}
	})
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	var re *awshttp.ResponseError
	if _, err := c.ListStreams(cctx, &kinesis.ListStreamsInput{}); !errors.As(err, &re) || re.HTTPStatusCode() != 503 {
		t.Fatalf("ListStreams with an http-503 fault: %v", err)
	}
	if _, err := c.DescribeLimits(cctx, &kinesis.DescribeLimitsInput{}); err != nil {
		t.Fatalf("DescribeLimits (no fault): %v", err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	if log := stderr.String(); !strings.Contains(log, "kinesis-proxy: stopped") || !strings.Contains(log, "requests=2") || !strings.Contains(log, "faults=1") {
		t.Fatalf("stderr:\n%s", log)
	}
}

// Guards against bad flags that start a proxy anyway.
func TestRunRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-fault", "kind=nope"},
		{"-fault", "op=PutRecords"},
		{"-write-records", "0"},
		{"-upstream", "localhost:4566"},
		{"stray"},
	} {
		err := run(context.Background(), append([]string{"-listen", "127.0.0.1:0"}, args...), io.Discard, io.Discard)
		if err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
		if args[0] == "-write-records" && !errors.Is(err, kinesisproxy.ErrInvalidConfig) {
			t.Errorf("run(%q) = %v, want ErrInvalidConfig", args, err)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-faults-help"}, &out, io.Discard); err != nil || !strings.Contains(out.String(), "entry-internal-failure") {
		t.Fatalf("-faults-help: %v\n%s", err, out.String())
	}
}
