package kinesisproxy

import (
	"log/slog"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/shardline/kinesis/internal/cfgerr"
)

// Config configures a Proxy. Only Upstream is required.
type Config struct {
	// Upstream is the Kinesis endpoint requests are forwarded to, such as
	// http://127.0.0.1:4566 (LocalStack), http://127.0.0.1:4568 (kinesis-mock) or
	// https://kinesis.us-east-1.amazonaws.com (AWS, with Resign).
	Upstream string

	// Addr is the address the proxy listens on. Default 127.0.0.1:0 (a free loopback port).
	Addr string

	// Limits are the per-shard limits the proxy enforces. The zero value enforces none;
	// DefaultLimits returns the service's.
	Limits Limits

	// Faults are injected from the moment Start returns; see Fault. SetFaults replaces them.
	Faults []Fault

	// Seed seeds the one random source every fault draw uses, so a run with the same seed,
	// faults and request order repeats exactly. Concurrent clients interleave their draws
	// in arrival order, which only a serial client fixes.
	Seed uint64

	// MaxBody bounds the request and response bodies the proxy reads into memory
	// (PutRecords, PutRecord, GetShardIterator and GetRecords requests and responses, and
	// every request when Resign is set). A larger request is refused with HTTP 413; a
	// larger response is passed on unscanned. Default 16 MiB: a 10 MiB PutRecords payload
	// in base64 JSON.
	MaxBody int64

	// SummaryEvery is how often a one-line summary of the last interval's counters is
	// logged at level Info; intervals without calls log nothing. Zero logs none.
	SummaryEvery time.Duration

	// Logger receives the summary and the proxy's own warnings (an upstream that does not
	// answer, a stream whose shards cannot be listed). Default: discard.
	Logger *slog.Logger

	// Resign, when set, signs every forwarded request anew with SigV4 for the upstream's
	// host, as an upstream that checks signatures (AWS) needs. Without it the client's
	// Authorization header is forwarded unchanged, which engines that do not verify
	// signatures (kinesis-mock, kinesalite, LocalStack) accept even for bodies the proxy
	// changed.
	Resign *ResignConfig
}

// Limits are per-shard, per-second rates. Each is a token bucket whose burst is one second
// of tokens and which starts full, as Kinesis's are.
type Limits struct {
	// Enabled turns the limits on. When off, the proxy only forwards and injects faults.
	Enabled bool
	// WriteRecords is the PutRecord/PutRecords entries a shard accepts per second (Kinesis: 1,000).
	WriteRecords float64
	// WriteBytes is the data plus partition-key bytes a shard accepts per second (Kinesis: 1 MiB).
	WriteBytes float64
	// ReadCalls is the GetRecords calls a shard answers per second (Kinesis: 5).
	ReadCalls float64
	// ReadBytes is the data plus partition-key bytes GetRecords returns per second and shard
	// (Kinesis: 2 MiB). A response larger than what is left is still returned; the shard
	// then owes the difference and refuses reads until it has been repaid.
	ReadBytes float64
}

// DefaultLimits returns the limits of a provisioned Kinesis shard: 1,000 records and
// 1 MiB written, 5 GetRecords calls and 2 MiB read per second.
func DefaultLimits() Limits {
	return Limits{Enabled: true, WriteRecords: 1000, WriteBytes: 1 << 20, ReadCalls: 5, ReadBytes: 2 << 20}
}

// ResignConfig holds what SigV4 re-signing needs.
type ResignConfig struct {
	// Credentials sign the forwarded requests; the proxy never logs them.
	Credentials aws.CredentialsProvider
	// Region is the upstream's region, such as us-east-1.
	Region string
	// Service is the signing name. Default "kinesis".
	Service string
}

const (
	defaultAddr    = "127.0.0.1:0"
	defaultMaxBody = 16 << 20
)

// ErrInvalidConfig is matched (errors.Is) by every configuration error; errors.As with a
// *ConfigError tells which field. It is the value every Shardline package shares.
var ErrInvalidConfig = cfgerr.ErrInvalidConfig

// ConfigError reports a configuration field that Start or SetFaults refused: Package
// ("kinesisproxy"), Option (the field, such as "Upstream", "Limits.ReadCalls" or
// "Faults[2].Rate") and Reason. It is the same type in every Shardline package.
type ConfigError = cfgerr.ConfigError

func configErr(field, format string, args ...any) error {
	return cfgerr.New("kinesisproxy", field, format, args...)
}

// withDefaults returns c with every unset field at its default.
func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = defaultAddr
	}
	if c.MaxBody == 0 {
		c.MaxBody = defaultMaxBody
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Resign != nil && c.Resign.Service == "" {
		r := *c.Resign
		r.Service = "kinesis"
		c.Resign = &r
	}
	return c
}

// validate checks a Config that withDefaults has completed.
func (c Config) validate() (*url.URL, error) {
	u, err := url.Parse(c.Upstream)
	switch {
	case c.Upstream == "":
		return nil, configErr("Upstream", "empty")
	case err != nil:
		return nil, configErr("Upstream", "%v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, configErr("Upstream", "scheme %q is not http or https", u.Scheme)
	case u.Host == "":
		return nil, configErr("Upstream", "%q has no host", c.Upstream)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, configErr("Upstream", "%q has a query or fragment", c.Upstream)
	}
	if c.Limits.Enabled {
		for _, l := range []struct {
			name string
			v    float64
		}{{"WriteRecords", c.Limits.WriteRecords}, {"WriteBytes", c.Limits.WriteBytes},
			{"ReadCalls", c.Limits.ReadCalls}, {"ReadBytes", c.Limits.ReadBytes}} {
			// A rate below one token would never admit a single record or call.
			if !(l.v >= 1) || l.v > 1e12 {
				return nil, configErr("Limits."+l.name, "%v is outside [1, 1e12]", l.v)
			}
		}
	}
	if c.MaxBody < 1<<20 {
		return nil, configErr("MaxBody", "%d is below 1 MiB, the largest Kinesis record", c.MaxBody)
	}
	if c.SummaryEvery < 0 {
		return nil, configErr("SummaryEvery", "negative (%v)", c.SummaryEvery)
	}
	if r := c.Resign; r != nil {
		if r.Credentials == nil {
			return nil, configErr("Resign.Credentials", "nil")
		}
		if r.Region == "" {
			return nil, configErr("Resign.Region", "empty")
		}
	}
	if err := validateFaults(c.Faults); err != nil {
		return nil, err
	}
	return u, nil
}
