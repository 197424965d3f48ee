// Package compare runs the side-by-side comparisons of Shardline with its peer libraries:
// the same workload through each library, against the fake endpoint or kinesalite, with the
// cost of each run measured and every record checked.
package compare

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go/logging"
)

// NewClient returns a Kinesis client for endpoint as every library in a comparison gets it:
// the SDK's default configuration, static test credentials, and an HTTP client whose idle
// pool keeps up to 64 connections to the endpoint (the SDK's default keeps 10, which would
// make a library that runs more parallel requests pay for new connections).
//
// Requests are detached from their caller's cancellation (see detachedClient), so that the
// shutdown of a library never aborts an exchange half-way: kinesalite 3.3.3 crashes when one
// does.
//
// The HTTP client is set on the service client's options rather than with
// config.WithHTTPClient, which fails when AWS_CA_BUNDLE is set.
func NewClient(ctx context.Context, endpoint string) (*kinesis.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("bench", "bench", "")))
	if err != nil {
		return nil, err
	}
	hc := &detachedClient{awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = 256
		t.MaxIdleConnsPerHost = 64
	})}
	return kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.HTTPClient = hc
		// The SDK warns when a cancelled call leaves a response body unread, which every
		// library does at shutdown; the warning would only interleave with the tables.
		o.Logger = logging.Nop{}
	}), nil
}

// detachedClient sends each request with its context's values but not its cancellation, and
// reads every response to its end before closing it: a caller cancelled in the middle of a
// call waits for the exchange to finish (at most a minute) instead of closing the connection
// under it. kinesalite 3.3.3 rethrows the "aborted" error of a request whose connection
// closes before its response is written, which kills the process, and every library cancels
// the calls it has in flight when it stops. Calls are cancelled only at shutdown, after the
// measured window, so this changes no measured figure; it adds no goroutine.
type detachedClient struct {
	base interface {
		Do(*http.Request) (*http.Response, error)
	}
}

// Do implements the SDK's HTTPClient interface.
func (c *detachedClient) Do(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), time.Minute)
	resp, err := c.base.Do(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &drainingBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// drainingBody reads what is left of a response before closing it.
type drainingBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *drainingBody) Close() error {
	_, _ = io.Copy(io.Discard, b.ReadCloser)
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
