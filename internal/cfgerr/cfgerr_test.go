package cfgerr

import (
	"errors"
	"fmt"
	"testing"
)

var errSpecific = errors.New("specific")

// Guards against the shared error losing what callers branch on: the sentinel, the option's
// name, a specific cause, and the message format every package's tests rely on.
func TestConfigError(t *testing.T) {
	e := New("producer", "WithLinger", "negative duration %v", -1)
	if got, want := e.Error(), "producer: invalid WithLinger: negative duration -1"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	wrapped := fmt.Errorf("start: %w", e)
	var ce *ConfigError
	if !errors.Is(wrapped, ErrInvalidConfig) || !errors.As(wrapped, &ce) || ce.Option != "WithLinger" || ce.Package != "producer" {
		t.Errorf("wrapped ConfigError: Is %v, As %+v", errors.Is(wrapped, ErrInvalidConfig), ce)
	}
	if errors.Is(wrapped, errSpecific) {
		t.Error("a ConfigError without Err matches an unrelated sentinel")
	}

	withCause := &ConfigError{Package: "shardprom", Option: "reg", Err: errSpecific}
	if !errors.Is(withCause, errSpecific) || !errors.Is(withCause, ErrInvalidConfig) {
		t.Error("a ConfigError with Err must match both its cause and ErrInvalidConfig")
	}
	if got, want := withCause.Error(), "shardprom: invalid reg: specific"; got != want {
		t.Errorf("Error() without Reason = %q, want %q", got, want)
	}
	if errors.Is(errors.New("shardline: invalid configuration"), ErrInvalidConfig) {
		t.Error("matching by message")
	}
}

type config struct{ applied []int }
type option func(*config)

// Guards against a nil option panicking or being skipped silently, and against options being
// applied out of order.
func TestApply(t *testing.T) {
	var c config
	add := func(n int) option { return func(c *config) { c.applied = append(c.applied, n) } }
	if err := Apply("p", &c, []option{add(1), add(2)}); err != nil || fmt.Sprint(c.applied) != "[1 2]" {
		t.Errorf("Apply = %v, applied %v", err, c.applied)
	}
	err := Apply("p", &c, []option{add(3), nil, add(4)})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Option != "opts[1]" || ce.Package != "p" {
		t.Errorf("nil option: %v, want a ConfigError for opts[1]", err)
	}
	if err := Apply[config, option]("p", &c, nil); err != nil {
		t.Errorf("no options: %v", err)
	}
}
