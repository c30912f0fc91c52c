package cli_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/pgserver"
)

// TestDevAsRootInPrivateDir (issue 15): root runs `gatehouse dev` with the checkout in a
// 0700 directory (/root on a fresh Debian machine), without DATABASE_URL, so dev starts its
// private cluster. The postgres user who runs the cluster cannot reach the data dir there:
// dev must keep the cluster in a directory that user can reach, say where, serve, and stop
// the cluster on exit — without changing the 0700 directory's mode.
func TestDevAsRootInPrivateDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only root's private cluster runs as the postgres system user (run the tests as root to cover this)")
	}
	if _, err := pgserver.FindBinaries(); err != nil {
		t.Skip(err)
	}
	if _, err := user.Lookup("postgres"); err != nil {
		t.Skip("no postgres system user")
	}
	t.Parallel()
	home := filepath.Join(t.TempDir(), "root-home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(home, "gatehouse", ".gatehouse")
	pgDir, err := pgserver.Locate(filepath.Join(dataDir, "pg"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeCluster(t, pgDir) })

	// No DATABASE_URL: the private cluster path.
	env := map[string]string{"GATEHOUSE_LOG_LEVEL": "info"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan result, 1)
	out := &syncBuffer{}
	go func() {
		done <- runTo(ctx, env, out, "dev", "--data-dir", dataDir, "--addr", "127.0.0.1:0", "--idp-addr", "127.0.0.1:0", "--app-addr", "127.0.0.1:0")
	}()
	for deadline := time.Now().Add(3 * time.Minute); !strings.Contains(out.String(), "Gatehouse dev is running"); {
		select {
		case r := <-done:
			t.Fatalf("dev exited: %v\n%s", r.err, r.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("dev did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	m := regexp.MustCompile(`Health:\s+http://(\S+):(\d+)/healthz`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no health URL in:\n%s", out.String())
	}
	req, _ := http.NewRequest("GET", "http://127.0.0.1:"+m[2]+"/healthz", nil)
	req.Host = m[1] + ":" + m[2]
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: status %d", resp.StatusCode)
	}
	if !exists(filepath.Join(pgDir, "postmaster.pid")) {
		t.Fatalf("no cluster running in %s", pgDir)
	}
	cancel()
	r := <-done
	if r.err != nil {
		t.Fatalf("dev: %v\n%s", r.err, r.stderr)
	}
	if !strings.Contains(r.stderr, "private PostgreSQL at "+pgDir) {
		t.Fatalf("dev did not say where the cluster is (%s):\n%s", pgDir, r.stderr)
	}
	if exists(filepath.Join(pgDir, "postmaster.pid")) {
		t.Fatalf("cluster in %s still running after dev stopped", pgDir)
	}
	fi, err := os.Stat(home)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Fatalf("%s is now mode %o uid %d; dev must leave it 0700 root", home, fi.Mode().Perm(), fi.Sys().(*syscall.Stat_t).Uid)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// removeCluster stops the cluster in dir if a failed test left it running, and removes dir.
func removeCluster(t *testing.T, dir string) {
	t.Helper()
	if exists(filepath.Join(dir, "postmaster.pid")) {
		bin, err := pgserver.FindBinaries()
		if err == nil {
			out, err := exec.Command("runuser", "-u", "postgres", "--", filepath.Join(bin, "pg_ctl"),
				"stop", "-w", "-m", "immediate", "-D", dir).CombinedOutput()
			if err != nil {
				t.Errorf("stop the cluster in %s: %v %s", dir, err, out)
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Errorf("remove %s: %v", dir, err)
	}
}
