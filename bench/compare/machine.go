package compare

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strings"
)

// LoadAverage returns the 1, 5 and 15 minute load averages from /proc/loadavg, or "unknown".
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// cpuModel returns the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// Machine describes where the comparison runs, as a markdown list.
func Machine() string {
	return fmt.Sprintf("- machine: %d CPUs (nproc), %s, %s/%s\n- Go: %s, GOMAXPROCS %d\n- load average at start: %s\n",
		runtime.NumCPU(), cpuModel(), runtime.GOOS, runtime.GOARCH, runtime.Version(), runtime.GOMAXPROCS(0), LoadAverage())
}
