package localstack

import (
	"context"
	"fmt"

	"github.com/testcontainers/testcontainers-go"
	tclocalstack "github.com/testcontainers/testcontainers-go/modules/localstack"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Images started when no endpoint is configured and Docker answers.
const (
	LocalStackImage = "localstack/localstack:4.4"
	RedisImage      = "redis:7-alpine"
)

// startContainers starts LocalStack (Kinesis and DynamoDB on one port) and Redis. The
// containers live as long as the test binary; testcontainers' reaper removes them after.
func startContainers(ctx context.Context) (*Stack, error) {
	if !dockerHealthy(ctx) {
		return nil, errNoStack
	}
	ls, err := tclocalstack.Run(ctx, LocalStackImage,
		testcontainers.WithEnv(map[string]string{"SERVICES": "kinesis,dynamodb"}))
	if err != nil {
		return nil, fmt.Errorf("localstack: start LocalStack container: %w", err)
	}
	endpoint, err := ls.PortEndpoint(ctx, "4566/tcp", "http")
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
