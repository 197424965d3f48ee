package kinesisproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// call is one client call on its way through the proxy.
type call struct {
	p  *Proxy
	w  http.ResponseWriter
	r  *http.Request
	op string
}

// serve applies the call-level faults that act before forwarding, then hands the call to
// its operation's handler.
func (c *call) serve() {
	pl := decide(c.p.faults.Load(), c.op, time.Now(), c.p.rnd)
	if pl.blackout {
		c.p.counters.fault(c.op, Blackout, 1)
		c.discardBody()
		c.writeError(http.StatusServiceUnavailable, "ServiceUnavailable", "Service Unavailable (kinesisproxy blackout)")
		return
	}
	if !pl.hangUntil.IsZero() {
		c.p.counters.fault(c.op, Blackout, 1)
		if !c.wait(time.Until(pl.hangUntil)) {
			return
		}
	}
	if pl.delay > 0 {
		c.p.counters.fault(c.op, Latency, 1)
		if !c.wait(pl.delay) {
			return
		}
	}
	if pl.fail != 0 {
		c.discardBody()
		c.fail(pl.fail)
		return
	}
	if !isJSON(c.r) {
		// CBOR (the Java SDK's default) and anything else: relayed, faults only.
		c.relay(pl, true)
		return
	}
	switch c.op {
	case "PutRecords":
		c.putRecords(pl)
	case "PutRecord":
		c.putRecord(pl)
	case "GetShardIterator":
		c.getShardIterator(pl)
	case "GetRecords":
		c.getRecords(pl)
	default:
		c.relay(pl, false)
	}
}

func isJSON(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json-1.")
}

// wait sleeps for d; false means the client left or the proxy is closing, and the call has
// been answered (or cannot be).
func (c *call) wait(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.r.Context().Done():
		return false
	case <-c.p.closing:
		c.writeError(http.StatusServiceUnavailable, "ServiceUnavailable", "Service Unavailable (kinesisproxy closing)")
		return false
	}
}

// finish applies the faults that act after forwarding; false means the call has been
// answered by a fault (or the client left) and the upstream's answer is dropped.
func (c *call) finish(pl plan) bool {
	if pl.delayAfter > 0 {
		c.p.counters.fault(c.op, Latency, 1)
		if !c.wait(pl.delayAfter) {
			return false
		}
	}
	if pl.failAfter != 0 {
		c.fail(pl.failAfter)
		return false
	}
	return true
}

// fail answers the call with an HTTP fault or resets its connection.
func (c *call) fail(k FaultKind) {
	c.p.counters.fault(c.op, k, 1)
	switch k {
	case HTTP500:
		c.writeError(http.StatusInternalServerError, "InternalFailure", "Internal service failure.")
	case HTTP503:
		c.writeError(http.StatusServiceUnavailable, "ServiceUnavailable", "Service Unavailable")
	case Reset:
		c.reset()
	}
}

// reset closes the client's connection with a TCP RST: SO_LINGER 0, then close.
func (c *call) reset() {
	conn, _, err := http.NewResponseController(c.w).Hijack()
	if err != nil {
		c.writeError(http.StatusInternalServerError, "InternalFailure", "kinesisproxy: cannot reset this connection: "+err.Error())
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// readBody reads the request body up to MaxBody; a larger one is answered 413.
func (c *call) readBody() ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, c.p.cfg.MaxBody))
	c.p.counters.update(c.op, func(o *OpCounters) { o.BytesIn += int64(len(b)) })
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		c.writeError(http.StatusRequestEntityTooLarge, "ValidationException",
			fmt.Sprintf("kinesisproxy: request body exceeds MaxBody (%d bytes)", c.p.cfg.MaxBody))
		return nil, false
	case err != nil:
		return nil, false // the client left
	}
	return b, true
}

// discardBody reads and drops the request body, so the client is waiting for the answer
// when a fault gives it.
func (c *call) discardBody() {
	n, _ := io.Copy(io.Discard, io.LimitReader(c.r.Body, c.p.cfg.MaxBody))
	c.p.counters.update(c.op, func(o *OpCounters) { o.BytesIn += n })
}

// outbound returns the upstream request for this call with the given body; header changes
// for a body the proxy reads back (no compression) are made when scanned is true.
func (c *call) outbound(body []byte, scanned bool) outbound {
	h := cleanHeader(c.r.Header)
	if scanned {
		h.Del("Accept-Encoding")
	}
	return outbound{method: c.r.Method, path: c.r.URL.Path, query: c.r.URL.RawQuery, header: h, body: body}
}

// exchange sends the call with body upstream and reads the answer for rewriting. ok is
// false when the call has been answered already: 502 when the upstream did not answer, the
// upstream's answer unscanned when it was over MaxBody.
func (c *call) exchange(pl plan, body []byte) (resp *http.Response, b []byte, ok bool) {
	resp, err := c.p.send(c.r.Context(), c.op, c.outbound(body, true))
	if err != nil {
		c.upstreamError(err)
		return nil, nil, false
	}
	defer resp.Body.Close()
	b, ok = c.readResponse(pl, resp)
	return resp, b, ok
}

func (c *call) upstreamError(err error) {
	if c.r.Context().Err() != nil {
		return // the client left; nothing to answer
	}
	c.p.counters.update(c.op, func(o *OpCounters) { o.UpstreamErrors++ })
	c.p.log.Warn("kinesis-proxy: upstream call failed", "op", c.op, "err", err)
	c.writeError(http.StatusBadGateway, "InternalFailure", err.Error())
}

// readResponse reads an upstream response for rewriting. ok is false when it was over
// MaxBody or unreadable: the call has then been answered with what there is.
func (c *call) readResponse(pl plan, resp *http.Response) ([]byte, bool) {
	b, err := readAtMost(resp.Body, c.p.cfg.MaxBody)
	switch {
	case errors.Is(err, errTooLarge):
		c.unscanned()
		if c.finish(pl) {
			c.copyResponse(resp, io.MultiReader(bytes.NewReader(b), resp.Body))
		}
		return nil, false
	case err != nil:
		c.upstreamError(fmt.Errorf("kinesisproxy: reading the upstream's answer: %w", err))
		return nil, false
	}
	return b, true
}

func (c *call) unscanned() { c.p.counters.update(c.op, func(o *OpCounters) { o.Unscanned++ }) }

// relay forwards the call as it is, streaming both bodies (unless re-signing needs the
// request body whole), with no limits, and answers what the upstream answers.
func (c *call) relay(pl plan, unscanned bool) {
	if unscanned {
		c.unscanned()
	}
	o := c.outbound(nil, false)
	if c.p.cfg.Resign != nil {
		body, ok := c.readBody()
		if !ok {
			return
		}
		o.body = body
	} else {
		o.stream = &countingReader{r: http.MaxBytesReader(c.w, c.r.Body, c.p.cfg.MaxBody), c: c.p.counters, op: c.op}
		o.length = c.r.ContentLength
	}
	resp, err := c.p.send(c.r.Context(), c.op, o)
	if err != nil {
		c.upstreamError(err)
		return
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	if pl.failAfter != 0 || pl.delayAfter > 0 {
		// The call is complete upstream only once its answer has been read (an event
		// stream's, when it ends); beyond MaxBody the fault acts on what has come so far.
		b, err := readAtMost(resp.Body, c.p.cfg.MaxBody)
		if err != nil && !errors.Is(err, errTooLarge) {
			c.upstreamError(fmt.Errorf("kinesisproxy: reading the upstream's answer: %w", err))
			return
		}
		if !c.finish(pl) {
			return
		}
		body = io.MultiReader(bytes.NewReader(b), resp.Body)
	}
	c.copyResponse(resp, body)
}

// relayBody forwards body unchanged and unlimited: a call the proxy could not read.
func (c *call) relayBody(pl plan, body []byte) {
	c.unscanned()
	resp, b, ok := c.exchange(pl, body)
	if ok && c.finish(pl) {
		c.writeResponse(resp, b, false)
	}
}

// copyResponse streams the upstream's answer to the client, flushing as it goes (event
// streams such as SubscribeToShard need it).
func (c *call) copyResponse(resp *http.Response, body io.Reader) {
	c.copyHeader(resp)
	if resp.ContentLength >= 0 {
		c.w.Header().Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	c.w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(c.w)
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := c.w.Write(buf[:n]); werr != nil {
				return
			}
			_ = rc.Flush()
			c.p.counters.update(c.op, func(o *OpCounters) { o.BytesOut += int64(n) })
		}
		if err != nil {
			return
		}
	}
}

// writeResponse answers with the upstream's status and headers and body b; changed says b
// is not the upstream's body, whose checksum header then no longer holds.
func (c *call) writeResponse(resp *http.Response, b []byte, changed bool) {
	c.copyHeader(resp)
	if changed {
		c.w.Header().Del("X-Amz-Crc32")
	}
	c.write(resp.StatusCode, b)
}

// copyHeader copies the upstream's response headers, but for hop-by-hop ones and
// Content-Length, to the client's response.
func (c *call) copyHeader(resp *http.Response) {
	h := c.w.Header()
	for k, v := range cleanHeader(resp.Header) {
		h[k] = v
	}
}

// writeError answers with a Kinesis-shaped error, as the SDKs parse it.
func (c *call) writeError(status int, typ, msg string) {
	b, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{typ, msg})
	h := c.w.Header()
	h.Set("Content-Type", "application/x-amz-json-1.1")
	h.Set("X-Amzn-Errortype", typ)
	c.write(status, b)
}

// writeJSON answers 200 with a body the proxy made.
func (c *call) writeJSON(b []byte) {
	c.w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	c.write(http.StatusOK, b)
}

var requestIDs atomic.Uint64

func (c *call) write(status int, b []byte) {
	h := c.w.Header()
	if h.Get("X-Amzn-Requestid") == "" {
		h.Set("X-Amzn-Requestid", fmt.Sprintf("00000000-0000-4000-8000-%012x", requestIDs.Add(1)))
	}
	h.Set("Content-Length", strconv.Itoa(len(b)))
	c.w.WriteHeader(status)
	n, _ := c.w.Write(b)
	c.p.counters.update(c.op, func(o *OpCounters) { o.BytesOut += int64(n) })
}

// countingReader counts a streamed request body into BytesIn.
type countingReader struct {
	r  io.Reader
	c  *counters
	op string
}

func (cr *countingReader) Read(b []byte) (int, error) {
	n, err := cr.r.Read(b)
	if n > 0 {
		cr.c.update(cr.op, func(o *OpCounters) { o.BytesIn += int64(n) })
	}
	return n, err
}
