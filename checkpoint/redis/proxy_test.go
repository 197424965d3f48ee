package redis

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/shardline/kinesis/localstack"
)

// proxy is a TCP relay between a Redis client and the server, used to make the server
// unreachable (cut), unresponsive (hang) or to lose replies (dropReplies) on demand. All its
// goroutines are tracked and joined, and a test fails when one outlives the proxy.
type proxy struct {
	t      testing.TB
	addr   string // listening address; kept across cut and restore
	target string

	dropReplies atomic.Int32 // server→client chunks still to drop, closing the connection
	accepted    atomic.Int32 // client connections accepted so far

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	gate   chan struct{} // closed while bytes flow; open (blocking) while hung
	closed bool          // cut: every pipe stops
	wg     sync.WaitGroup
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: listen: %v", err)
	}
	p := &proxy{t: t, addr: ln.Addr().String(), target: target, conns: make(map[net.Conn]struct{})}
	p.gate = make(chan struct{})
	close(p.gate)
	p.serve(ln)
	t.Cleanup(func() {
		p.resume()
		p.cut()
	})
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln, p.closed = ln, false
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			p.pipe(c)
		}
	})
}

// pipe relays between client c and a fresh server connection until either side ends.
func (p *proxy) pipe(c net.Conn) {
	s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = c.Close()
		_ = s.Close()
		return
	}
	p.conns[c], p.conns[s] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{})
	var once sync.Once
	stop := func() {
		once.Do(func() {
			close(done)
			_ = c.Close()
			_ = s.Close()
			p.mu.Lock()
			delete(p.conns, c)
			delete(p.conns, s)
			p.mu.Unlock()
		})
	}
	p.wg.Go(func() { defer stop(); p.copy(s, c, done, false) })
	p.wg.Go(func() { defer stop(); p.copy(c, s, done, true) })
}

func (p *proxy) copy(dst, src net.Conn, done chan struct{}, reply bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			select {
			case <-p.currentGate():
			case <-done:
				return
			}
			if reply && p.takeDrop() {
				return // the reply is lost and the connection breaks, as when a link dies
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) takeDrop() bool {
	for {
		n := p.dropReplies.Load()
		if n <= 0 {
			return false
		}
		if p.dropReplies.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

func (p *proxy) currentGate() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gate
}

// hang stops forwarding in both directions without closing anything: the server looks alive
// but never answers. Bytes read meanwhile are held, not sent.
func (p *proxy) hang() {
	p.mu.Lock()
	select {
	case <-p.gate:
		p.gate = make(chan struct{})
	default:
	}
	p.mu.Unlock()
}

// resume lets held and new bytes flow again.
func (p *proxy) resume() {
	p.mu.Lock()
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
	p.mu.Unlock()
}

// cut closes the listener and every connection, so the server is unreachable (connection
// refused) until restore, and waits until every proxy goroutine has returned.
func (p *proxy) cut() {
	p.t.Helper()
	p.mu.Lock()
	p.closed = true
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	joined := make(chan struct{})
	go func() { p.wg.Wait(); close(joined) }()
	select {
	case <-joined:
	case <-time.After(10 * time.Second):
		p.t.Errorf("proxy goroutines still running 10s after cut: leak")
	}
}

// restore listens on the same address again.
func (p *proxy) restore() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy: listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// redisOptions returns the options of the stack's Redis (from SHARDLINE_REDIS_URL), with
// the address replaced by addr.
func redisOptions(t testing.TB, direct *goredis.Client, addr string) *goredis.Options {
	t.Helper()
	opt := &goredis.Options{Addr: direct.Options().Addr}
	if u := os.Getenv(localstack.EnvRedisURL); u != "" {
		parsed, err := goredis.ParseURL(u)
		if err != nil {
			t.Fatalf("%s: %v", localstack.EnvRedisURL, err)
		}
		opt = parsed
	}
	opt.Addr = addr
	return opt
}

// proxiedClient returns a client that reaches the server through p, closed when the test
// ends. mod adjusts its options (timeouts, retries).
func proxiedClient(t testing.TB, direct *goredis.Client, p *proxy, mod func(*goredis.Options)) *goredis.Client {
	t.Helper()
	opt := redisOptions(t, direct, p.addr)
	if mod != nil {
		mod(opt)
	}
	c := goredis.NewClient(opt)
	t.Cleanup(func() {
		if err := c.Close(); err != nil && !errors.Is(err, goredis.ErrClosed) {
			t.Logf("close client: %v", err)
		}
	})
	return c
}
