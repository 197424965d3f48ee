package observability

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes the kernel stop cmd when the test process dies before its cleanups run
// (a timeout panic, a kill), so no Prometheus outlives the test.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
