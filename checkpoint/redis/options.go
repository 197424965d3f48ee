package redis

import (
	"strings"

	"github.com/shardline/kinesis/internal/cfgerr"
)

// Option configures a [Store]; pass options to [New].
type Option func(*config)

// config holds every setting of a Store. defaultConfig is the only place defaults live.
type config struct {
	prefix string
}

// DefaultPrefix is the key prefix a Store uses unless [WithPrefix] replaces it.
const DefaultPrefix = "shardline"

func defaultConfig() config {
	return config{prefix: DefaultPrefix}
}

// WithPrefix sets the prefix of every key the store writes, replacing [DefaultPrefix]. Stores
// with different prefixes share a Redis server without seeing each other's rows. A ':' is
// put between the prefix and the rest of a key unless the prefix already ends with one.
//
// The prefix must not be empty and must not contain '{' or '}': Redis Cluster hashes a key by
// its first {...} section, which has to be the store's own group/stream tag (see the package
// documentation). The KCL's closest setting is the lease table name.
func WithPrefix(prefix string) Option {
	return func(c *config) { c.prefix = prefix }
}

// validate checks every setting; New calls it once.
func (c config) validate() error {
	switch {
	case c.prefix == "":
		return cfgerr.New(pkgName, "WithPrefix", "empty key prefix")
	case strings.ContainsAny(c.prefix, "{}"):
		return cfgerr.New(pkgName, "WithPrefix", "key prefix %q contains '{' or '}', which would break the Redis Cluster hash tag", c.prefix)
	}
	return nil
}

// pkgName is how configuration errors name this package.
const pkgName = "checkpoint/redis"

// ErrInvalidConfig is matched (errors.Is) by every error New returns for a bad option or
// argument. It is one value shared by every Shardline package (producer.ErrInvalidConfig,
// consumer.ErrInvalidConfig and the others are the same). Malformed arguments of the Store's
// methods are not configuration: they match [checkpoint.ErrInvalid].
var ErrInvalidConfig = cfgerr.ErrInvalidConfig

// ConfigError is the error New returns for a bad option or argument: Package
// ("checkpoint/redis"), Option ("client", "WithPrefix", "opts[2]" for a nil Option) and
// Reason. It matches [ErrInvalidConfig], and is the same type in every Shardline package.
type ConfigError = cfgerr.ConfigError
