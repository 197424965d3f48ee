package kinesisproxy

import (
	"sync"
	"time"
)

// bucket is a token bucket holding at most one second of tokens. It is written here rather
// than taken from golang.org/x/time/rate because it needs two things rate.Limiter does not
// do: a charge that drives it below zero (GetRecords returns up to 10 MiB against a 2 MiB
// burst; Kinesis then refuses reads until the debt is repaid) and a take that succeeds
// only if a second bucket can pay too (an entry needs a record token and its bytes).
// Not safe for concurrent use: shardLimits holds the lock.
type bucket struct {
	rate, tokens float64
	last         time.Time
}

func newBucket(rate float64, now time.Time) bucket {
	return bucket{rate: rate, tokens: rate, last: now}
}

// refill adds the tokens earned since the last refill, up to the burst.
func (b *bucket) refill(now time.Time) {
	if now.After(b.last) {
		b.tokens = min(b.rate, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
}

// shardLimits are one shard's four buckets.
type shardLimits struct {
	mu                                             sync.Mutex
	writeRecords, writeBytes, readCalls, readBytes bucket
}

// takeWrite takes one record and n bytes if both are available, and reports whether it did.
func (s *shardLimits) takeWrite(now time.Time, n float64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writeRecords.refill(now)
	s.writeBytes.refill(now)
	if s.writeRecords.tokens < 1 || s.writeBytes.tokens < n {
		return false
	}
	s.writeRecords.tokens--
	s.writeBytes.tokens -= n
	return true
}

// takeRead takes one GetRecords call if one is available and the shard owes no bytes.
func (s *shardLimits) takeRead(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readCalls.refill(now)
	s.readBytes.refill(now)
	if s.readCalls.tokens < 1 || s.readBytes.tokens <= 0 {
		return false
	}
	s.readCalls.tokens--
	return true
}

// chargeRead charges n bytes a GetRecords call returned, going below zero if need be.
func (s *shardLimits) chargeRead(now time.Time, n float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readBytes.refill(now)
	s.readBytes.tokens -= n
}

// shardKey names a shard: Kinesis shard IDs are unique only within a stream.
type shardKey struct{ stream, shard string }

// limiter holds the buckets of every shard the proxy has seen.
type limiter struct {
	cfg    Limits
	mu     sync.Mutex
	shards map[shardKey]*shardLimits
}

func newLimiter(cfg Limits) *limiter {
	return &limiter{cfg: cfg, shards: make(map[shardKey]*shardLimits)}
}

// shard returns the buckets of k, full when first seen.
func (l *limiter) shard(k shardKey, now time.Time) *shardLimits {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.shards[k]
	if s == nil {
		s = &shardLimits{
			writeRecords: newBucket(l.cfg.WriteRecords, now),
			writeBytes:   newBucket(l.cfg.WriteBytes, now),
			readCalls:    newBucket(l.cfg.ReadCalls, now),
			readBytes:    newBucket(l.cfg.ReadBytes, now),
		}
		l.shards[k] = s
	}
	return s
}
