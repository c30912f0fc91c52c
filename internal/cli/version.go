package cli

import (
	"cmp"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/gatehouse-id/gatehouse/internal/app"
)

// revision and revisionTime are the commit and its time, set by the linker where Go's own
// VCS stamping cannot see the checkout (a git worktree, a build context without .git):
// make build passes -X …/internal/cli.revision=… -X …/internal/cli.revisionTime=….
var revision, revisionTime string

// versionString is what `gatehouse version` prints after "gatehouse": the release version
// set by the linker (-X internal/app.Version=…, as deploy/Dockerfile builds), else the
// module version Go stamped (a tagged checkout: v1.2.3; otherwise a pseudo-version), then
// the VCS revision and commit time Go stamps into `go build` binaries, and the Go version.
func versionString() string {
	bi, _ := debug.ReadBuildInfo()
	return formatVersion(app.Version, revision, revisionTime, bi)
}

func formatVersion(override, linkedRev, linkedTime string, bi *debug.BuildInfo) string {
	version := override
	if (version == "" || version == "dev") && bi != nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		version = bi.Main.Version
	}
	if version == "" {
		version = "dev"
	}
	if bi == nil {
		bi = &debug.BuildInfo{}
	}
	rev, at := linkedRev, linkedTime
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = cmp.Or(rev, s.Value)
		case "vcs.time":
			at = cmp.Or(at, s.Value)
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	var parts []string
	if rev != "" {
		r := "commit " + rev[:min(len(rev), 12)]
		if modified {
			r += " (modified)"
		}
		parts = append(parts, r)
	}
	if at != "" {
		parts = append(parts, at)
	}
	if rev == "" {
		parts = append(parts, "no VCS information: built with go run, or outside a checkout; make build records it")
	}
	if bi.GoVersion != "" {
		parts = append(parts, bi.GoVersion)
	}
	if len(parts) == 0 {
		return version
	}
	return fmt.Sprintf("%s (%s)", version, strings.Join(parts, ", "))
}
