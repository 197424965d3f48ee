package shardotel

import (
	"runtime/debug"
	"testing"
)

// TestVersionIn guards against a scope version taken from the wrong module, from a replaced
// module's original instead of its replacement, or a literal "(devel)".
func TestVersionIn(t *testing.T) {
	dep := func(path, version string, replace *debug.Module) *debug.Module {
		return &debug.Module{Path: path, Version: version, Replace: replace}
	}
	tests := []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"dependency", debug.BuildInfo{
			Main: debug.Module{Path: "example.com/app", Version: "v9.9.9"},
			Deps: []*debug.Module{dep("github.com/other/x", "v0.1.0", nil), dep(modulePath, "v1.4.0", nil)},
		}, "v1.4.0"},
		{"replaced by a fork", debug.BuildInfo{
			Main: debug.Module{Path: "example.com/app"},
			Deps: []*debug.Module{dep(modulePath, "v1.4.0", dep("github.com/fork/kinesis", "v1.4.1-fix", nil))},
		}, "v1.4.1-fix"},
		{"replaced by a directory", debug.BuildInfo{
			Main: debug.Module{Path: "example.com/app"},
			Deps: []*debug.Module{dep(modulePath, "v1.4.0", dep("../kinesis", "", nil))},
		}, ""},
		{"main module, tagged", debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "v1.5.0"}}, "v1.5.0"},
		{"main module, development build", debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "(devel)"}}, ""},
		{"not linked", debug.BuildInfo{
			Main: debug.Module{Path: "example.com/app", Version: "v9.9.9"},
			Deps: []*debug.Module{dep("github.com/shardline/kinesis/bench", "v0.1.0", nil)},
		}, ""},
	}
	for _, tt := range tests {
		if got := versionIn(&tt.bi); got != tt.want {
			t.Errorf("%s: versionIn = %q, want %q", tt.name, got, tt.want)
		}
	}
}
