package localstack

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// envTestContainerExit opts into TestContainerExitExplained, which needs Docker and pulls
// localstack/localstack:latest (about 1 GB). .github/workflows/localstack.yml sets it.
const envTestContainerExit = "SHARDLINE_TEST_CONTAINER_EXIT"

// TestContainerExitExplained guards against the failure of issue #13 end to end: a tag that
// needs an auth token, started without one, must fail with an error that quotes LocalStack's
// own reason and names LOCALSTACK_AUTH_TOKEN, not with a bare "container exited with code 55".
// TestContainerErrorNoToken checks the same with a recorded log on machines without Docker.
func TestContainerExitExplained(t *testing.T) {
	if os.Getenv(envTestContainerExit) != "1" {
		t.Skipf("set %s=1 on a machine with Docker to start localstack/localstack:latest without a token", envTestContainerExit)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if !dockerHealthy(ctx) {
		t.Fatalf("%s=1 but no Docker engine answers", envTestContainerExit)
	}
	t.Setenv(EnvLocalStackImage, "localstack/localstack:latest")
	t.Setenv(EnvAuthToken, "")

	s, err := startContainers(ctx)
	if err == nil {
		t.Fatalf("localstack/localstack:latest started without a token (stack %+v); pick another tag for this test", s)
	}
	var ce *ContainerError
	if !errors.As(err, &ce) {
		t.Fatalf("error = %v, want a *ContainerError", err)
	}
	if ce.ExitCode != exitCodeLicense || !strings.Contains(ce.Reason, EnvAuthToken) ||
		!strings.Contains(err.Error(), "set "+EnvAuthToken) {
		t.Errorf("error does not explain the missing token:\n%v", err)
	}
	t.Logf("the error users get:\n%v", err)
}
