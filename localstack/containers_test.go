package localstack

import (
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// buildRequest applies the options localStackRequest returns to an empty request, as
// testcontainers.Run does before it asks Docker for anything.
func buildRequest(t *testing.T, env map[string]string) (testcontainers.GenericContainerRequest, bool) {
	t.Helper()
	image, opts, token := localStackRequest(func(k string) string { return env[k] })
	req := testcontainers.GenericContainerRequest{ContainerRequest: testcontainers.ContainerRequest{Image: image}}
	for _, o := range opts {
		if err := o.Customize(&req); err != nil {
			t.Fatalf("customize: %v", err)
		}
	}
	return req, token
}

// TestLocalStackRequest pins the container the helper asks Docker for, which no machine here
// can start. It guards against a default tag that needs a token (newer tags exit with code 55
// without one), an override or a token that never reaches the container, an empty token
// passed as if it were one, and a wait that returns before Kinesis and DynamoDB answer or on
// the wrong port (WithPort drops a port it cannot parse without a word).
func TestLocalStackRequest(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		wantImage string
		wantEnv   map[string]string
	}{
		{"defaults", nil, DefaultLocalStackImage,
			map[string]string{"SERVICES": "kinesis,dynamodb"}},
		{"token", map[string]string{EnvAuthToken: "ls-token-123"}, DefaultLocalStackImage,
			map[string]string{"SERVICES": "kinesis,dynamodb", "LOCALSTACK_AUTH_TOKEN": "ls-token-123"}},
		{"empty token", map[string]string{EnvAuthToken: ""}, DefaultLocalStackImage,
			map[string]string{"SERVICES": "kinesis,dynamodb"}},
		{"image and token", map[string]string{EnvLocalStackImage: "localstack/localstack:2026.03.0", EnvAuthToken: "t"},
			"localstack/localstack:2026.03.0",
			map[string]string{"SERVICES": "kinesis,dynamodb", "LOCALSTACK_AUTH_TOKEN": "t"}},
		{"blank image", map[string]string{EnvLocalStackImage: "  "}, DefaultLocalStackImage,
			map[string]string{"SERVICES": "kinesis,dynamodb"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, token := buildRequest(t, tc.env)
			if req.Image != tc.wantImage {
				t.Errorf("image = %q, want %q", req.Image, tc.wantImage)
			}
			if !maps.Equal(req.Env, tc.wantEnv) {
				t.Errorf("env = %v, want %v", req.Env, tc.wantEnv)
			}
			if _, want := tc.wantEnv[EnvAuthToken]; token != want {
				t.Errorf("token passed = %v, want %v", token, want)
			}
			if !slices.Equal(req.ExposedPorts, []string{"4566/tcp"}) {
				t.Errorf("exposed ports = %v, want [4566/tcp]", req.ExposedPorts)
			}
			all, ok := req.WaitingFor.(*wait.MultiStrategy)
			if !ok || len(all.Strategies) != 1 {
				t.Fatalf("wait strategy = %#v, want one HTTP strategy", req.WaitingFor)
			}
			h, ok := all.Strategies[0].(*wait.HTTPStrategy)
			if !ok {
				t.Fatalf("wait strategy = %T, want *wait.HTTPStrategy", all.Strategies[0])
			}
			if h.Path != "/_localstack/health" || h.Port.String() != "4566/tcp" {
				t.Errorf("wait for %s on port %q, want /_localstack/health on 4566/tcp", h.Path, h.Port.String())
			}
			if d := h.Timeout(); d == nil || *d != localStackStartup {
				t.Errorf("wait timeout = %v, want %v", d, localStackStartup)
			}
			if h.ResponseMatcher(strings.NewReader(`{"services": {"kinesis": "available"}}`)) {
				t.Error("wait accepts a health answer without dynamodb")
			}
			if !h.ResponseMatcher(strings.NewReader(`{"services": {"kinesis": "running", "dynamodb": "available"}}`)) {
				t.Error("wait rejects a health answer with kinesis and dynamodb up")
			}
		})
	}
}

// TestServicesReady guards against the health wait passing on a LocalStack that answers 200
// while a needed service is disabled or failed to load, or on a body that is not JSON.
func TestServicesReady(t *testing.T) {
	tests := []struct {
		body string
		want bool
	}{
		{`{"services": {"kinesis": "available", "dynamodb": "available", "s3": "disabled"}, "edition": "community"}`, true},
		{`{"services": {"kinesis": "running", "dynamodb": "running"}}`, true},
		{`{"services": {"kinesis": "error", "dynamodb": "running"}}`, false},
		{`{"services": {"kinesis": "available", "dynamodb": "disabled"}}`, false},
		{`{"services": {}}`, false},
		{`<html>starting</html>`, false},
		{``, false},
	}
	for _, tc := range tests {
		if got := servicesReady(strings.NewReader(tc.body)); got != tc.want {
			t.Errorf("servicesReady(%s) = %v, want %v", tc.body, got, tc.want)
		}
	}
}

// TestContainerErrorNoToken guards against the failure issue #13 describes: a tag that needs
// an auth token exits, and the error must quote LocalStack's own reason (not only
// "container exited with code 55") and name what to set. The log is what
// localstack/localstack:latest printed on March 23, 2026 without a token, as quoted in
// public bug reports (microcks/microcks#2008, apache/pekko-connectors#1517).
func TestContainerErrorNoToken(t *testing.T) {
	log, err := os.ReadFile("testdata/localstack-exit-55.log")
	if err != nil {
		t.Fatal(err)
	}
	cause := errors.New("generic container: start container: readied hook: container exited with code 55")
	e := containerError("localstack/localstack:latest", false, 55, string(log), cause)
	msg := e.Error()
	for _, want := range []string{
		"localstack/localstack:latest exited with code 55",
		"| Localstack returning with exit code 55. Reason:",
		"| The license activation failed for the following reason:",
		"| No credentials were found in the environment.",
		"set LOCALSTACK_AUTH_TOKEN to your LocalStack auth token",
		"set SHARDLINE_LOCALSTACK_IMAGE to a tag that starts without one (the default, " + DefaultLocalStackImage + ")",
		`eval "$(localstack/up)"`,
		"container exited with code 55",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	// The version banner comes before the reason and is noise in an error.
	if strings.Contains(msg, "LocalStack build git hash") || strings.Contains(msg, "=====") {
		t.Errorf("error quotes more than LocalStack's reason:\n%s", msg)
	}
	if !errors.Is(e, cause) {
		t.Error("error does not unwrap to the testcontainers error")
	}
	var ce *ContainerError
	if !errors.As(error(e), &ce) || ce.ExitCode != 55 || ce.Image != "localstack/localstack:latest" {
		t.Errorf("errors.As = %+v, want a ContainerError for the image with exit code 55", ce)
	}
}

// TestContainerErrorTokenRefused guards against telling a user who did set a token to set
// one: with a token passed, the hint must say it was refused.
func TestContainerErrorTokenRefused(t *testing.T) {
	log := "Localstack returning with exit code 55. Reason:\n" +
		"The license activation failed for the following reason:\nThe auth token is invalid.\n"
	msg := containerError("localstack/localstack:2026.03.0", true, 55, log, nil).Error()
	if !strings.Contains(msg, "refused the LOCALSTACK_AUTH_TOKEN") || strings.Contains(msg, "needs an auth token") {
		t.Errorf("hint for a refused token:\n%s", msg)
	}
	if !strings.Contains(msg, "| The auth token is invalid.") {
		t.Errorf("error does not quote LocalStack's reason:\n%s", msg)
	}
}

// TestContainerErrorOther guards against blaming the token for every failure: a container
// that exits for another reason gets the end of its log and no token advice, and one still
// running when the wait gave up is not reported as exited.
func TestContainerErrorOther(t *testing.T) {
	var log strings.Builder
	for i := range 30 {
		log.WriteString("line " + string(rune('a'+i%26)) + "\n")
	}
	log.WriteString("OSError: [Errno 98] Address already in use\n")
	e := containerError("localstack/localstack:4.14.0", false, 1, log.String(), nil)
	msg := e.Error()
	if strings.Contains(msg, "auth token") {
		t.Errorf("token advice for a non-license failure:\n%s", msg)
	}
	if !strings.Contains(msg, "| OSError: [Errno 98] Address already in use") {
		t.Errorf("error lacks the last log line:\n%s", msg)
	}
	if n := strings.Count(e.Reason, "\n") + 1; n != maxReasonLines {
		t.Errorf("quoted %d lines, want the last %d", n, maxReasonLines)
	}

	running := containerError("localstack/localstack:4.14.0", false, -1, "", errors.New("context deadline exceeded")).Error()
	if !strings.Contains(running, "did not become ready") || strings.Contains(running, "exited") {
		t.Errorf("error for a container still running:\n%s", running)
	}
}

// TestLocalStackReasonStartsAtExit guards against a long reason losing its first line (the
// exit code) to the line cap, which keeps the start of a reason but the end of a plain log.
func TestLocalStackReasonStartsAtExit(t *testing.T) {
	log := "banner\nLocalstack returning with exit code 55. Reason:\n" + strings.Repeat("detail\n", 40)
	got := strings.Split(localStackReason(log), "\n")
	if len(got) != maxReasonLines || got[0] != "Localstack returning with exit code 55. Reason:" {
		t.Errorf("reason starts %q with %d lines, want the exit line and %d lines", got[0], len(got), maxReasonLines)
	}
}
