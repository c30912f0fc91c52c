package cli_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVersionOfBuiltBinary builds gatehouse with `make build` from this checkout and runs
// `gatehouse version`: it names the version git describes and the commit checked out
// (issue 16 item 16: it printed "gatehouse dev").
func TestVersionOfBuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	described, err := exec.Command("git", "describe", "--tags", "--always", "--dirty").Output()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "gatehouse")
	build := exec.Command("make", "--no-print-directory", "build", "BIN="+bin)
	build.Dir = "../.."
	if msg, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, msg)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "gatehouse " + strings.TrimSpace(string(described)) + " (commit " + strings.TrimSpace(string(head))[:12] + ", 20"
	if !strings.HasPrefix(string(out), want) || !strings.Contains(string(out), ", go1.") {
		t.Fatalf("gatehouse version: %q, want %q…", out, want)
	}
}
