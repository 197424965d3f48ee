package examples_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shardline/kinesis/localstack"
)

// EnvArtifacts names a directory where the process tests keep each run's files (the
// consumers' -out files, every process's stdout and stderr) instead of a temporary directory.
const EnvArtifacts = "SHARDLINE_ARTIFACTS"

// bins holds the example programs, built once per test binary.
var bins struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bins.dir != "" {
		_ = os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

// binary returns the path of the example program name ("consumer", "producer" or "orders"), building
// them the first time it is called.
func binary(t *testing.T, name string) string {
	t.Helper()
	bins.once.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		root := filepath.Dir(strings.TrimSpace(string(out)))
		if err != nil || root == "." {
			bins.err = fmt.Errorf("find the module root with go env GOMOD: %v", err)
			return
		}
		if bins.dir, bins.err = os.MkdirTemp("", "shardline-examples-"); bins.err != nil {
			return
		}
		for _, p := range []string{"consumer", "producer", "orders"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(bins.dir, p), "./examples/"+p)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				bins.err = fmt.Errorf("go build ./examples/%s: %v\n%s", p, err, out)
				return
			}
		}
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return filepath.Join(bins.dir, name)
}

// runDir returns the directory for one run's files: a temporary one, or one under
// $SHARDLINE_ARTIFACTS that outlives the test.
func runDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv(EnvArtifacts)
	if base == "" {
		return t.TempDir()
	}
	dir := filepath.Join(base, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+"-"+time.Now().Format("150405"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("files of this run are kept in %s", dir)
	return dir
}

// processEnv is the environment of the example processes: this one's, with the stack's
// endpoints (which may come from containers rather than the environment).
func processEnv(s *localstack.Stack) []string {
	env := os.Environ()
	set := func(name, value string) {
		if value != "" {
			env = append(env, name+"="+value)
		}
	}
	set("AWS_ENDPOINT_URL_KINESIS", s.Kinesis)
	set("AWS_ENDPOINT_URL_DYNAMODB", s.DynamoDB)
	set("AWS_REGION", s.AWS.Region)
	set("SHARDLINE_REDIS_URL", s.RedisURL)
	// The programs load their configuration with config.LoadDefaultConfig: a local stack found
	// without the environment (containers) needs the dummy credentials localstack/up exports.
	if s.Kinesis != "" && os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_PROFILE") == "" {
		set("AWS_ACCESS_KEY_ID", "test")
		set("AWS_SECRET_ACCESS_KEY", "test")
	}
	return env
}

// process is an example program running as its own OS process, its stdout and stderr
// captured in files.
type process struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr string
	exited         chan struct{} // closed once the process exited and was waited for
	waitErr        error         // read only after exited is closed
}

// startProcess starts bin with args. When the test ends the process is killed if it still
// runs, and if the test failed the end of its stderr and stdout is logged.
func startProcess(t *testing.T, dir, name, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{
		name:   name,
		stdout: filepath.Join(dir, name+".stdout"),
		stderr: filepath.Join(dir, name+".stderr"),
		exited: make(chan struct{}),
	}
	outF, err := os.Create(p.stdout)
	if err != nil {
		t.Fatal(err)
	}
	errF, err := os.Create(p.stderr)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = env, outF, errF
	err = p.cmd.Start()
	// The child has its own descriptors now.
	_ = outF.Close()
	_ = errF.Close()
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		if !p.done() {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s (pid %d) %s\n--- stderr (end) ---\n%s--- stdout (end) ---\n%s", name, p.pid(), p.status(),
				fileTail(p.stderr, 3000), fileTail(p.stdout, 1500))
		}
	})
	t.Logf("started %s, pid %d: %s %s", name, p.pid(), filepath.Base(bin), strings.Join(args, " "))
	return p
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) done() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// status describes how the process ended, or that it runs.
func (p *process) status() string {
	if !p.done() {
		return "running"
	}
	if p.waitErr == nil {
		return "exited 0"
	}
	return p.waitErr.Error()
}

// exitCode returns the exit status, -1 for a process ended by a signal or still running.
func (p *process) exitCode() int {
	if !p.done() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// kill9 kills the process with SIGKILL and waits until it is gone.
func (p *process) kill9() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop asks the process to shut down gracefully (SIGTERM) and waits up to d; a process still
// running then is killed, and stop reports it.
func (p *process) stop(d time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(d):
		p.kill9()
		return fmt.Errorf("%s did not stop within %v of SIGTERM; killed", p.name, d)
	}
}

// stdoutLine waits up to d for a line of stdout that starts with prefix and returns it.
func (p *process) stdoutLine(prefix string, d time.Duration) (string, error) {
	deadline := time.Now().Add(d)
	for {
		data, err := os.ReadFile(p.stdout)
		if err != nil {
			return "", err
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), prefix) {
				return sc.Text(), nil
			}
		}
		if p.done() || time.Now().After(deadline) {
			return "", fmt.Errorf("%s (%s) printed no line starting with %q within %v", p.name, p.status(), prefix, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fileTail returns the last n bytes of a file, from a line start where possible.
func fileTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error() + "\n"
	}
	if len(data) > n {
		data = data[len(data)-n:]
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	return string(data)
}

// outFile follows a consumer process's -out file while it grows.
type outFile struct {
	path    string
	off     int64
	partial []byte // an incomplete last line, until the rest is written
	lines   []delivery
	bad     []string // complete lines that do not parse
}

// poll reads what was appended since the last call.
func (f *outFile) poll() error {
	fh, err := os.Open(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer fh.Close()
	if _, err := fh.Seek(f.off, io.SeekStart); err != nil {
		return err
	}
	data, err := io.ReadAll(fh)
	if err != nil {
		return err
	}
	f.off += int64(len(data))
	buf := append(f.partial, data...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		var d delivery
		if err := json.Unmarshal(buf[:i], &d); err != nil {
			f.bad = append(f.bad, fmt.Sprintf("line %d: %v: %.80q", len(f.lines)+len(f.bad)+1, err, buf[:i]))
		} else {
			f.lines = append(f.lines, d)
		}
		buf = buf[i+1:]
	}
	f.partial = append([]byte(nil), buf...)
	return nil
}
