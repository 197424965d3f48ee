package shardotel_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if goroutines outlive the tests: the package must start none, and a
// MeterProvider with a ManualReader starts none either.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
