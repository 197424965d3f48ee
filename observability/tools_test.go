package observability

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/shardline/kinesis/localstack"
)

// Files under test, relative to this package.
var (
	dashboardFile  = filepath.Join("grafana", "shardline-dashboard.json")
	rulesFile      = filepath.Join("prometheus", "shardline-alerts.yml")
	rulesTestsFile = filepath.Join("prometheus", "shardline-alerts_test.yml")
)

// needTool returns the path of a Prometheus program (prometheus or promtool). Without it the
// test is skipped, or fails under SHARDLINE_REQUIRE_INTEGRATION=1, the way the localstack
// package treats a missing engine.
func needTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := name + " is not installed; localstack/up installs it (Debian package prometheus)"
	if os.Getenv(localstack.EnvRequire) == "1" {
		t.Fatalf("%s (%s=1 forbids skipping)", msg, localstack.EnvRequire)
	}
	t.Skip(msg)
	return ""
}
