package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/shardline/kinesis/checkpoint"
)

// Exit codes, documented in the root command's help.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError is a mistake in how the command was called: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// silentError ends the command with exit code 1 after it printed its own report (a put
// summary with failed records, an unhealthy endpoint): main adds no message.
type silentError struct{ err error }

func (e *silentError) Error() string { return e.err.Error() }
func (e *silentError) Unwrap() error { return e.err }

// exitCode maps an error to the documented exit code.
func exitCode(err error) int {
	var u *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &u):
		return exitUsage
	}
	return exitFailure
}

// explain turns an error into the one line printed after "shardline: ": what failed and the
// cause a user can act on, without the SDK's retry and request-ID noise.
func explain(err error) string {
	var (
		notFound *types.ResourceNotFoundException
		inUse    *types.ResourceInUseException
		limit    *types.LimitExceededException
		invalid  *types.InvalidArgumentException
		opErr    *net.OpError
		dnsErr   *net.DNSError
		api      smithy.APIError
	)
	msg := err.Error()
	cause := ""
	switch {
	case errors.As(err, &notFound):
		cause = "not found: " + apiMessage(notFound)
	case errors.As(err, &inUse):
		cause = "in use: " + apiMessage(inUse)
	case errors.As(err, &limit):
		cause = "limit exceeded: " + apiMessage(limit)
	case errors.As(err, &invalid):
		cause = "invalid argument: " + apiMessage(invalid)
	case errors.Is(err, syscall.ECONNREFUSED) && errors.As(err, &opErr):
		cause = fmt.Sprintf("cannot connect to %s: connection refused", opErr.Addr)
	case errors.As(err, &dnsErr):
		cause = "cannot resolve " + dnsErr.Name
	case errors.Is(err, context.DeadlineExceeded):
		cause = "timed out"
	case errors.Is(err, context.Canceled):
		cause = "interrupted"
	case errors.As(err, &api):
		cause = api.ErrorCode() + ": " + api.ErrorMessage()
	case errors.Is(err, checkpoint.ErrUnavailable):
		cause = "store unavailable"
	}
	// Our own context ("describe orders: ") is everything before the SDK's "operation error".
	if i := strings.Index(msg, "operation error "); i >= 0 && cause != "" {
		return strings.TrimSpace(strings.TrimSuffix(msg[:i], ": ")) + ": " + cause
	}
	if i := strings.Index(msg, "operation error "); i >= 0 {
		return msg[:i] + lastPart(msg[i:])
	}
	return msg
}

// apiMessage is an AWS exception's message, or its code when the message is empty.
func apiMessage(e smithy.APIError) string {
	if m := e.ErrorMessage(); m != "" {
		return m
	}
	return e.ErrorCode()
}

// lastPart keeps the end of an SDK error chain, the part that names the cause.
func lastPart(s string) string {
	parts := strings.Split(s, ", ")
	return parts[len(parts)-1]
}
