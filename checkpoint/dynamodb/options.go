package dynamodb

import (
	"time"

	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/shardline/kinesis/internal/cfgerr"
)

// Option configures a [Store]; pass options to [New].
type Option func(*config)

type config struct {
	// timeout bounds each DynamoDB call (SDK retries included); 0 leaves it to the caller's
	// context.
	timeout time.Duration
	// apiOptions are appended to every DynamoDB call.
	apiOptions []func(*ddb.Options)
	// pageLimit caps the items per Query page; 0 lets DynamoDB fill 1 MB pages. Tests lower
	// it to exercise pagination.
	pageLimit int32
}

func defaultConfig() config {
	return config{}
}

func (c *config) validate() error {
	if c.timeout < 0 {
		return cfgerr.New(pkgName, "WithCallTimeout", "negative duration %v", c.timeout)
	}
	for _, fn := range c.apiOptions {
		if fn == nil {
			return cfgerr.New(pkgName, "WithAPIOptions", "nil function")
		}
	}
	if c.pageLimit < 0 {
		return cfgerr.New(pkgName, "WithPageLimit", "negative page limit %d", c.pageLimit)
	}
	return nil
}

// pkgName is how configuration errors name this package.
const pkgName = "checkpoint/dynamodb"

// ErrInvalidConfig is matched (errors.Is) by every error New returns for a bad option or
// argument. It is one value shared by every Shardline package (producer.ErrInvalidConfig,
// consumer.ErrInvalidConfig and the others are the same). Malformed arguments of the Store's
// methods and of CreateTable are not configuration: they match [checkpoint.ErrInvalid].
var ErrInvalidConfig = cfgerr.ErrInvalidConfig

// ConfigError is the error New returns for a bad option or argument: Package
// ("checkpoint/dynamodb"), Option ("client", "table", "WithCallTimeout", "opts[2]" for a nil
// Option, ...) and Reason. It matches [ErrInvalidConfig], and is the same type in every
// Shardline package.
type ConfigError = cfgerr.ConfigError

// WithCallTimeout bounds every DynamoDB call that a Store method makes (each page of a
// listing), the SDK's own retries included, by d. A call that runs out of time returns an
// error matching [checkpoint.ErrUnavailable]: the write may or may not have been applied,
// which the conditional protocol tolerates (a repeated checkpoint of the same position
// succeeds; a renewal applied twice only moves the counter further). The default, 0, leaves
// the bound to the caller's context; a lease renewal loop needs one shorter than the lease
// duration, through its context or this option (a consumer bounds every store call with its
// own consumer.WithCallTimeout, 10 s by default). KCL: none.
func WithCallTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

// WithOperationTimeout is the former name of [WithCallTimeout].
//
// Deprecated: use WithCallTimeout, the name every Shardline package uses for the bound on
// one call. WithOperationTimeout will be removed before v1.0.0.
func WithOperationTimeout(d time.Duration) Option { return WithCallTimeout(d) }

// WithAPIOptions appends fns to the options of every DynamoDB call the Store makes, after
// the client's own: for example to give the store's calls fewer retries (RetryMaxAttempts)
// than the client's other users, or to add a middleware. The default is none.
func WithAPIOptions(fns ...func(*ddb.Options)) Option {
	return func(c *config) { c.apiOptions = append(c.apiOptions, fns...) }
}
