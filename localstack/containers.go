package localstack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tclocalstack "github.com/testcontainers/testcontainers-go/modules/localstack"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Environment variables the container path reads.
const (
	// EnvLocalStackImage overrides DefaultLocalStackImage, for example to run a newer tag with
	// an auth token. docker-compose.yml reads the same variable.
	EnvLocalStackImage = "SHARDLINE_LOCALSTACK_IMAGE"
	// EnvAuthToken is LocalStack's own variable; when set it is passed to the container.
	// Tags released since March 23, 2026 refuse to start without it.
	EnvAuthToken = "LOCALSTACK_AUTH_TOKEN"
)

// Images started when no endpoint is configured and Docker answers.
const (
	// DefaultLocalStackImage is pinned to 4.14.0, the last tag that starts without
	// LOCALSTACK_AUTH_TOKEN: from 4.15 and the 2026.03 calendar-versioned releases on (and
	// :latest since March 23, 2026) LocalStack exits with code 55 unless a token is set.
	// docker-compose.yml pins the same tag; a test keeps the two equal.
	DefaultLocalStackImage = "localstack/localstack:4.14.0"
	RedisImage             = "redis:7-alpine"
)

// localStackPort is LocalStack's single edge port, serving Kinesis and DynamoDB alike.
const localStackPort = "4566/tcp"

// localStackStartup bounds how long LocalStack may take to answer healthy: a cold start
// pulls nothing here (the image is pulled before), but starts a JVM for DynamoDB.
const localStackStartup = 3 * time.Minute

// localStackServices are the services the container runs; the health wait checks each.
var localStackServices = []string{"kinesis", "dynamodb"}

// localStackRequest decides the LocalStack container to start from the environment (getenv is
// os.Getenv outside tests): the image, the options that customise the testcontainers request
// (environment, exposed port, wait strategy), and whether an auth token is passed. It starts
// nothing, so a unit test inspects exactly what startContainers asks Docker for.
func localStackRequest(getenv func(string) string) (image string, opts []testcontainers.ContainerCustomizer, token bool) {
	image = strings.TrimSpace(getenv(EnvLocalStackImage))
	if image == "" {
		image = DefaultLocalStackImage
	}
	env := map[string]string{"SERVICES": strings.Join(localStackServices, ",")}
	if t := getenv(EnvAuthToken); t != "" {
		env[EnvAuthToken] = t
		token = true
	}
	health := wait.ForHTTP("/_localstack/health").
		WithPort(localStackPort).
		WithResponseMatcher(servicesReady).
		WithStartupTimeout(localStackStartup)
	opts = []testcontainers.ContainerCustomizer{
		testcontainers.WithEnv(env),
		testcontainers.WithExposedPorts(localStackPort),
		testcontainers.WithWaitStrategyAndDeadline(localStackStartup, health),
	}
	return image, opts, token
}

// servicesReady reports whether a /_localstack/health body shows every service of
// localStackServices as available or running. LocalStack answers 200 before a service it
// cannot load reports "error"; waiting on the status code alone would hand tests a stack
// without Kinesis.
func servicesReady(body io.Reader) bool {
	var h struct {
		Services map[string]string `json:"services"`
	}
	if err := json.NewDecoder(body).Decode(&h); err != nil {
		return false
	}
	for _, s := range localStackServices {
		if st := h.Services[s]; st != "available" && st != "running" {
			return false
		}
	}
	return true
}

// startContainers starts LocalStack (Kinesis and DynamoDB on one port) and Redis. The
// containers live as long as the test binary; testcontainers' reaper removes them after.
func startContainers(ctx context.Context) (*Stack, error) {
	if !dockerHealthy(ctx) {
		return nil, errNoStack
	}
	image, opts, token := localStackRequest(os.Getenv)
	ls, err := tclocalstack.Run(ctx, image, opts...)
	if err != nil {
		if ls == nil {
			return nil, fmt.Errorf("localstack: start LocalStack container %s: %w", image, err)
		}
		logs, exitCode := containerPostMortem(ls)
		_ = testcontainers.TerminateContainer(ls)
		return nil, containerError(image, token, exitCode, logs, err)
	}
	endpoint, err := ls.PortEndpoint(ctx, localStackPort, "http")
	if err != nil {
		return nil, fmt.Errorf("localstack: LocalStack endpoint: %w", err)
	}
	rc, err := testcontainers.Run(ctx, RedisImage,
		testcontainers.WithExposedPorts("6379/tcp"),
		testcontainers.WithWaitStrategy(wait.ForListeningPort("6379/tcp")))
	if err != nil {
		return nil, fmt.Errorf("localstack: start Redis container: %w", err)
	}
	redisAddr, err := rc.PortEndpoint(ctx, "6379/tcp", "")
	if err != nil {
		return nil, fmt.Errorf("localstack: Redis endpoint: %w", err)
	}
	cfg, err := LoadConfig(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	return &Stack{AWS: cfg, Kinesis: endpoint, DynamoDB: endpoint,
		RedisURL: "redis://" + redisAddr + "/0", Engine: "localstack"}, nil
}

// containerPostMortem reads the log and the exit code (-1 while running or unknown) of a
// container that failed its wait. It has its own deadline: the caller's may be what expired.
func containerPostMortem(c testcontainers.Container) (logs string, exitCode int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	exitCode = -1
	if st, err := c.State(ctx); err == nil && st != nil && !st.Running {
		exitCode = st.ExitCode
	}
	r, err := c.Logs(ctx)
	if err != nil {
		return "", exitCode
	}
	defer r.Close()
	b, _ := io.ReadAll(io.LimitReader(r, 1<<20))
	return string(b), exitCode
}

// ContainerError reports a LocalStack container that did not become ready: it exited (for
// example without the auth token its tag needs) or never answered healthy.
type ContainerError struct {
	Image    string
	ExitCode int    // the container's exit code; -1 when it was still running or unknown
	Reason   string // LocalStack's own explanation, quoted from its log
	Hint     string // what to set or run instead
	Err      error  // the testcontainers error
}

func (e *ContainerError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "localstack: LocalStack container %s ", e.Image)
	if e.ExitCode >= 0 {
		fmt.Fprintf(&b, "exited with code %d before it was ready", e.ExitCode)
	} else {
		b.WriteString("did not become ready")
	}
	if e.Reason != "" {
		b.WriteString("; LocalStack says:\n")
		for line := range strings.SplitSeq(e.Reason, "\n") {
			b.WriteString("    | " + line + "\n")
		}
	} else {
		b.WriteString(" (its log is empty)\n")
	}
	b.WriteString(e.Hint)
	if e.Err != nil {
		b.WriteString(" (" + e.Err.Error() + ")")
	}
	return b.String()
}

func (e *ContainerError) Unwrap() error { return e.Err }

// exitCodeLicense is the code LocalStack exits with when license activation fails, the auth
// token missing or refused among the causes.
const exitCodeLicense = 55

// containerError explains a LocalStack container that failed to start from its log text: it
// quotes LocalStack's own reason and says what to set. token tells whether LOCALSTACK_AUTH_TOKEN
// was passed, which decides between "set a token" and "your token was refused".
func containerError(image string, token bool, exitCode int, logs string, err error) *ContainerError {
	reason := localStackReason(logs)
	e := &ContainerError{Image: image, ExitCode: exitCode, Reason: reason, Err: err}
	npm := `or run without Docker or token on the npm engines: eval "$(localstack/up)"`
	switch {
	case !authFailure(exitCode, reason):
		e.Hint = fmt.Sprintf("The lines above are the end of its log (docker logs shows it all); "+
			"to try another tag set %s, %s.", EnvLocalStackImage, npm)
	case token:
		e.Hint = fmt.Sprintf("LocalStack refused the %s that was passed: check that the token is valid and "+
			"has a license assigned (https://app.localstack.cloud/settings/auth-tokens), or set %s to a "+
			"tag that starts without a token (the default, %s), %s.",
			EnvAuthToken, EnvLocalStackImage, DefaultLocalStackImage, npm)
	default:
		e.Hint = fmt.Sprintf("This image needs an auth token: set %s to your LocalStack auth token "+
			"(https://app.localstack.cloud/settings/auth-tokens), or set %s to a tag that starts "+
			"without one (the default, %s), %s.",
			EnvAuthToken, EnvLocalStackImage, DefaultLocalStackImage, npm)
	}
	return e
}

// authFailure reports whether LocalStack exited for want of a valid license or auth token.
func authFailure(exitCode int, reason string) bool {
	if exitCode == exitCodeLicense {
		return true
	}
	r := strings.ToLower(reason)
	return strings.Contains(r, "license activation failed") || strings.Contains(r, strings.ToLower(EnvAuthToken))
}

// maxReasonLines bounds how much of LocalStack's log an error quotes.
const maxReasonLines = 20

// localStackReason returns the part of a LocalStack log that explains why it stopped: from
// its "returning with exit code" line on when there is one, else the last lines. Separator
// rules and blank lines are dropped so the quote stays short.
func localStackReason(logs string) string {
	var kept []string
	from := -1
	for l := range strings.SplitSeq(strings.ReplaceAll(logs, "\r\n", "\n"), "\n") {
		l = strings.TrimRight(l, " \t")
		if strings.TrimSpace(l) == "" || strings.Trim(l, "=-") == "" {
			continue
		}
		if from < 0 && strings.Contains(strings.ToLower(l), "returning with exit code") {
			from = len(kept)
		}
		kept = append(kept, l)
	}
	switch {
	case from >= 0:
		kept = kept[from:min(len(kept), from+maxReasonLines)]
	case len(kept) > maxReasonLines:
		kept = kept[len(kept)-maxReasonLines:]
	}
	return strings.Join(kept, "\n")
}

// dockerHealthy reports whether a Docker engine answers. testcontainers panics when none is
// configured at all, hence the recover.
func dockerHealthy(ctx context.Context) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	p, err := testcontainers.ProviderDocker.GetProvider()
	if err != nil {
		return false
	}
	defer p.Close()
	return p.Health(ctx) == nil
}
