// Package cfgerr is the one way Shardline's constructors report bad configuration: an error
// that names the option at fault and matches one sentinel, whichever package returned it.
//
//	_, err := producer.New(client, "orders", producer.WithLinger(-time.Second))
//	var ce *producer.ConfigError // the same type as consumer.ConfigError, ddbstore.ConfigError, ...
//	if errors.As(err, &ce) {     // and errors.Is(err, consumer.ErrInvalidConfig) holds: one value
//		log.Printf("%s: bad %s: %s", ce.Package, ce.Option, ce.Reason) // producer: bad WithLinger: ...
//	}
//
// Every public package with a constructor that checks its configuration exports
// ErrInvalidConfig (this package's value) and ConfigError (an alias of this package's type),
// so users never import an internal package and never need to know which package a
// configuration error came from.
package cfgerr

import (
	"errors"
	"fmt"
)

// ErrInvalidConfig is matched (errors.Is) by every *ConfigError.
var ErrInvalidConfig = errors.New("shardline: invalid configuration")

// ConfigError reports one invalid option, constructor argument or combination of them.
type ConfigError struct {
	// Package is the reporting package as its messages name it: "producer", "consumer",
	// "checkpoint/dynamodb", "checkpoint/redis", "shardprom", "shardotel", "kinesisproxy".
	Package string
	// Option names what is at fault: an option function ("WithLinger"), a constructor argument
	// ("client", "stream", "table"), a nil option by its position ("opts[2]"), or a field of
	// a configuration struct ("Limits.ReadCalls"). For a combination, the option that the
	// reason is about.
	Option string
	// Reason says what is wrong, with the value given.
	Reason string
	// Err is a more specific cause, such as a package's own sentinel, or nil. errors.Is and
	// errors.As reach it.
	Err error
}

// Error returns "<package>: invalid <option>: <reason>".
func (e *ConfigError) Error() string {
	reason := e.Reason
	if reason == "" && e.Err != nil {
		reason = e.Err.Error()
	}
	return e.Package + ": invalid " + e.Option + ": " + reason
}

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Unwrap returns Err.
func (e *ConfigError) Unwrap() error { return e.Err }

// New returns a *ConfigError for option of pkg, its reason formatted from format and args.
func New(pkg, option, format string, args ...any) *ConfigError {
	return &ConfigError{Package: pkg, Option: option, Reason: fmt.Sprintf(format, args...)}
}

// Apply calls every option on c, in order. A nil option is a *ConfigError naming its
// position ("opts[2]"); the options after it are not applied.
func Apply[C any, O ~func(*C)](pkg string, c *C, opts []O) error {
	for i, o := range opts {
		if o == nil {
			return New(pkg, fmt.Sprintf("opts[%d]", i), "nil Option")
		}
		o(c)
	}
	return nil
}
