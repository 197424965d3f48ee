package dynamodb

import (
	"fmt"
	"time"

	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/shardline/kinesis/checkpoint"
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
		return fmt.Errorf("%w: negative operation timeout %v", checkpoint.ErrInvalid, c.timeout)
	}
	for _, fn := range c.apiOptions {
		if fn == nil {
			return fmt.Errorf("%w: nil API option", checkpoint.ErrInvalid)
		}
	}
	if c.pageLimit < 0 {
		return fmt.Errorf("%w: negative page limit %d", checkpoint.ErrInvalid, c.pageLimit)
	}
	return nil
}

// WithOperationTimeout bounds every DynamoDB call that a Store method makes (each page of a
// listing), the SDK's own retries included, by d. A call that runs out of time returns an error matching
// [checkpoint.ErrUnavailable]: the write may or may not have been applied, which the
// conditional protocol tolerates (a repeated checkpoint of the same position succeeds; a
// renewal applied twice only moves the counter further). The default, 0, leaves the bound
// to the caller's context; a lease renewal loop needs one shorter than the lease duration,
// through its context or this option.
func WithOperationTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

// WithAPIOptions appends fns to the options of every DynamoDB call the Store makes, after
// the client's own: for example to give the store's calls fewer retries (RetryMaxAttempts)
// than the client's other users, or to add a middleware. The default is none.
func WithAPIOptions(fns ...func(*ddb.Options)) Option {
	return func(c *config) { c.apiOptions = append(c.apiOptions, fns...) }
}
