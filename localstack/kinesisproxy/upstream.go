package kinesisproxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// loopHeader marks requests the proxy sends, so that a proxy whose upstream is itself
// (AWS_ENDPOINT_URL_KINESIS pointing back at it) refuses the call instead of looping.
const loopHeader = "X-Shardline-Kinesis-Proxy"

// hopHeaders belong to one connection and are never forwarded.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// cleanHeader returns h without hop-by-hop headers (those named by Connection included)
// and without Content-Length, which the body being sent sets.
func cleanHeader(h http.Header) http.Header {
	out := h.Clone()
	for _, f := range h.Values("Connection") {
		for name := range strings.SplitSeq(f, ",") {
			out.Del(strings.TrimSpace(name))
		}
	}
	for _, name := range hopHeaders {
		out.Del(name)
	}
	out.Del("Content-Length")
	return out
}

// outbound is one request to the upstream.
type outbound struct {
	method, path, query string
	header              http.Header // already cleaned
	body                []byte      // the body, when the proxy holds it
	stream              io.Reader   // otherwise, streamed from the client
	length              int64       // the streamed body's length, -1 when unknown
}

// send sends o upstream and counts it as forwarded for op ("" for the proxy's own calls).
func (p *Proxy) send(ctx context.Context, op string, o outbound) (*http.Response, error) {
	u := *p.upstream
	u.Path = strings.TrimSuffix(p.upstream.Path, "/") + o.path
	u.RawPath = ""
	u.RawQuery = o.query
	var body io.Reader = o.stream
	if o.body != nil {
		body = bytes.NewReader(o.body)
	}
	req, err := http.NewRequestWithContext(ctx, o.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("kinesisproxy: upstream request: %w", err)
	}
	if o.body == nil {
		req.ContentLength = o.length
		if o.length == 0 {
			req.Body = http.NoBody
		}
	}
	req.Header = o.header
	req.Header.Set(loopHeader, "1")
	if p.cfg.Resign != nil {
		if err := p.sign(ctx, req, o.body); err != nil {
			return nil, err
		}
	}
	if op != "" {
		p.counters.update(op, func(c *OpCounters) { c.Forwarded++ })
	}
	resp, err := p.transport.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("kinesisproxy: upstream %s: %w", p.upstream.Host, err)
	}
	return resp, nil
}

// sign replaces the client's SigV4 signature by one of the proxy's credentials for the
// upstream's host and the body actually sent.
func (p *Proxy) sign(ctx context.Context, req *http.Request, body []byte) error {
	for _, h := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256"} {
		req.Header.Del(h)
	}
	creds, err := p.cfg.Resign.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("kinesisproxy: resign: credentials: %w", err)
	}
	sum := sha256.Sum256(body)
	if err := p.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), p.cfg.Resign.Service, p.cfg.Resign.Region, time.Now()); err != nil {
		return fmt.Errorf("kinesisproxy: resign: %w", err)
	}
	return nil
}

// errTooLarge reports a body over MaxBody.
var errTooLarge = errors.New("kinesisproxy: body exceeds MaxBody")

// readAtMost reads r to its end if it holds at most max bytes. Otherwise it returns what it
// read (max+1 bytes) with errTooLarge, so that the caller can still pass the body on.
func readAtMost(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return b, err
	}
	if int64(len(b)) > max {
		return b, errTooLarge
	}
	return b, nil
}
