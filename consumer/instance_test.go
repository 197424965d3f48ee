package consumer

import (
	"regexp"
	"testing"
)

// TestNewInstance guards against instance values that two processes with one worker ID could
// not order by start time (a start time of varying width compares wrongly as a string) or that
// two processes could share.
func TestNewInstance(t *testing.T) {
	format := regexp.MustCompile(`^[0-9a-f]{16}-[0-9a-f]{16}$`)
	a, b := newInstance(), newInstance()
	for _, inst := range []string{a, b} {
		if !format.MatchString(inst) {
			t.Errorf("newInstance() = %q, want 16 hex digits of the start time, '-', 16 random hex digits", inst)
		}
	}
	if a == b {
		t.Errorf("two calls of newInstance returned %q", a)
	}
	if a[:16] > b[:16] {
		t.Errorf("instance %q, made after %q, sorts before it", b, a)
	}
}
