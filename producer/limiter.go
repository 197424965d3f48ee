package producer

import (
	"math"
	"time"

	"golang.org/x/time/rate"
)

// limiter is a shard's pair of token buckets: Kinesis records per second and bytes (partition
// key + data) per second. A nil bucket is unlimited. Only the dispatcher uses it, so checking
// and then spending is race-free.
type limiter struct {
	records *rate.Limiter
	bytes   *rate.Limiter
}

// newLimiter makes the buckets of one shard. Each holds one second of tokens; the byte bucket
// holds at least maxEntry so that the largest entry can ever pass.
func newLimiter(recordsPerSec, bytesPerSec, maxEntry int) limiter {
	var l limiter
	if recordsPerSec > 0 {
		l.records = rate.NewLimiter(rate.Limit(recordsPerSec), recordsPerSec)
	}
	if bytesPerSec > 0 {
		l.bytes = rate.NewLimiter(rate.Limit(bytesPerSec), max(bytesPerSec, maxEntry))
	}
	return l
}

// readyAt returns when records entries of bytes bytes in all may be sent: now or later.
func (l *limiter) readyAt(now time.Time, records, bytes int) time.Time {
	at := now
	if l.records != nil {
		at = laterOf(at, tokensAt(l.records, now, records))
	}
	if l.bytes != nil {
		at = laterOf(at, tokensAt(l.bytes, now, bytes))
	}
	return at
}

// take spends the tokens of records entries of bytes bytes in all. Call it only when
// readyAt(now, records, bytes) is not after now.
func (l *limiter) take(now time.Time, records, bytes int) {
	if l.records != nil {
		l.records.AllowN(now, records)
	}
	if l.bytes != nil {
		l.bytes.AllowN(now, bytes)
	}
}

// tokensAt returns when lim will hold n tokens.
func tokensAt(lim *rate.Limiter, now time.Time, n int) time.Time {
	missing := float64(n) - lim.TokensAt(now)
	if missing <= 0 {
		return now
	}
	// Round up so that the bucket really holds n tokens at the returned time.
	wait := time.Duration(math.Ceil(missing / float64(lim.Limit()) * float64(time.Second)))
	return now.Add(wait)
}

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
