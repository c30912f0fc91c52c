package cli

import (
	"runtime/debug"
	"testing"
)

// TestFormatVersion: the linker's version wins; without it the module version Go stamped;
// then the revision, its time and whether the tree was modified; "dev" and a note when a
// binary carries nothing.
func TestFormatVersion(t *testing.T) {
	vcs := []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-11-30T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}
	cases := []struct {
		override, rev, at string
		bi                *debug.BuildInfo
		want              string
	}{
		{"v1.4.0", "", "", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v0.0.0-20261130100000-0123456789ab+dirty"}, Settings: vcs},
			"v1.4.0 (commit 0123456789ab (modified), 2026-11-30T10:00:00Z, go1.26.0)"},
		{"dev", "", "", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.3.2"}, Settings: vcs[:3]},
			"v1.3.2 (commit 0123456789ab, 2026-11-30T10:00:00Z, go1.26.0)"},
		{"dev", "", "", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}},
			"dev (no VCS information: built with go run, or outside a checkout; make build records it, go1.26.0)"},
		// A worktree build by make: the linker carries what Go could not stamp.
		{"v1.4.0-3-gabcdef0-dirty", "fedcba9876543210fedcba9876543210fedcba98", "2026-11-29T08:00:00Z", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}},
			"v1.4.0-3-gabcdef0-dirty (commit fedcba987654, 2026-11-29T08:00:00Z, go1.26.0)"},
		{"dev", "", "", nil, "dev (no VCS information: built with go run, or outside a checkout; make build records it)"},
	}
	for _, c := range cases {
		if got := formatVersion(c.override, c.rev, c.at, c.bi); got != c.want {
			t.Errorf("formatVersion(%q, …) = %q, want %q", c.override, got, c.want)
		}
	}
}
