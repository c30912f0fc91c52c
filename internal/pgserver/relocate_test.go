package pgserver

import (
	"context"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestSearchable: the kernel's rule for searching a directory — owner bits for the owner,
// group bits for a member, others' bits for everyone else — along the whole path.
func TestSearchable(t *testing.T) {
	// Not t.TempDir: its parent is 0700.
	base, err := os.MkdirTemp("", "gatehouse-searchable-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	open := filepath.Join(base, "open")
	closed := filepath.Join(base, "closed")
	groupOnly := filepath.Join(base, "group")
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{open, 0o755}, {closed, 0o700}, {groupOnly, 0o710}} {
		if err := os.Mkdir(d.path, d.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(d.path, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	// A user that owns nothing here and is in none of the groups (no such account needed).
	stranger := &user.User{Uid: "4000000001", Gid: "4000000001", Username: "gatehouse-test-nobody"}
	if p := searchable(stranger, base); p != "" {
		t.Skipf("the temp dir is not searchable by others here (%s)", p)
	}
	myGroup := &user.User{Uid: "4000000001", Gid: itoa(os.Getegid()), Username: "gatehouse-test-nobody"}
	me := &user.User{Uid: itoa(os.Geteuid()), Gid: itoa(os.Getegid())}
	tests := []struct {
		name string
		u    *user.User
		dir  string
		want string
	}{
		{"open", stranger, filepath.Join(open, "sub"), ""},
		{"closed parent", stranger, filepath.Join(closed, "sub"), closed},
		{"closed dir itself", stranger, closed, closed},
		{"group bit for a stranger", stranger, filepath.Join(groupOnly, "sub"), groupOnly},
		{"group bit for a member", myGroup, filepath.Join(groupOnly, "sub"), ""},
		{"owner", me, filepath.Join(closed, "sub"), ""},
		{"missing below an open dir", stranger, filepath.Join(open, "new", "deeper"), ""},
		{"missing below a closed dir", stranger, filepath.Join(closed, "new"), closed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := searchable(tt.u, tt.dir); got != tt.want {
				t.Fatalf("searchable(%s) = %q, want %q", tt.dir, got, tt.want)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func fileOwner(fi os.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return strconv.FormatUint(uint64(st.Uid), 10)
	}
	return "?"
}

// TestStartAsRootInPrivateDir (issue 15): as root, a data dir inside a 0700 directory (a
// checkout under /root) is unreachable for the postgres user who runs the cluster. Start
// keeps the cluster in a postgres-owned directory keyed by the data dir instead, leaves a
// note in the data dir, changes no mode of the caller's directories, and the same data dir
// finds the same cluster on the next start.
func TestStartAsRootInPrivateDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the relocation only happens when the cluster runs as the postgres system user")
	}
	if _, err := FindBinaries(); err != nil {
		t.Skip(err)
	}
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		t.Skip("no postgres system user")
	}
	ctx := context.Background()
	home := filepath.Join(t.TempDir(), "root-home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(home, "checkout", ".gatehouse", "pg")
	if p := searchable(pgUser, filepath.Dir(dataDir)); p == "" {
		t.Fatalf("test setup: the postgres user reaches %s", dataDir)
	}

	want, err := Locate(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if want == dataDir || strings.HasPrefix(want, home) {
		t.Fatalf("Locate(%s) = %s: not relocated", dataDir, want)
	}
	t.Cleanup(func() { removeCluster(t, want) })
	if again, _ := Locate(dataDir); again != want {
		t.Fatalf("Locate is not stable: %s then %s", want, again)
	}

	s, err := Start(ctx, dataDir, Options{})
	if err != nil {
		t.Fatalf("Start in a directory under a 0700 one: %v", err)
	}
	if !s.Relocated || s.DataDir != want || s.Requested != dataDir || !s.Started {
		t.Fatalf("server %+v, want it relocated to %s and started", s, want)
	}
	if p := searchable(pgUser, s.DataDir); p != "" {
		t.Fatalf("the postgres user cannot reach the cluster: %s", p)
	}
	fi, err := os.Stat(s.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 || fileOwner(fi) != pgUser.Uid {
		t.Fatalf("cluster dir %s: mode %o owner %s, want 0700 postgres", s.DataDir, fi.Mode().Perm(), fileOwner(fi))
	}
	if sock := filepath.Join(s.SockDir, ".s.PGSQL.65535"); len(sock) >= 100 {
		t.Fatalf("socket path %s too long", sock)
	}
	c, err := net.Dial("unix", filepath.Join(s.SockDir, ".s.PGSQL."+itoa(s.Port)))
	if err != nil {
		t.Fatalf("cluster socket: %v", err)
	}
	c.Close()
	note, err := os.ReadFile(filepath.Join(dataDir, noteName))
	if err != nil || !strings.Contains(string(note), s.DataDir) {
		t.Fatalf("note in the data dir: %v %q", err, note)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(s.DataDir, "postmaster.pid")) {
		t.Fatal("cluster still running after Stop")
	}

	// Same data dir, same cluster (not a fresh initdb).
	marker := filepath.Join(s.DataDir, "PG_VERSION")
	before, _ := os.Stat(marker)
	s2, err := Start(ctx, dataDir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Stop(ctx)
	after, _ := os.Stat(marker)
	if s2.DataDir != s.DataDir || before == nil || after == nil || !before.ModTime().Equal(after.ModTime()) {
		t.Fatalf("second start used %s, want the existing cluster in %s", s2.DataDir, s.DataDir)
	}

	fi, err = os.Stat(home)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 || fileOwner(fi) != "0" {
		t.Fatalf("%s changed: mode %o owner %s, want 0700 root", home, fi.Mode().Perm(), fileOwner(fi))
	}
}

// removeCluster stops a cluster left running by a failed test and removes its directory.
func removeCluster(t *testing.T, dir string) {
	t.Helper()
	if exists(filepath.Join(dir, "postmaster.pid")) {
		s := &Server{DataDir: dir}
		s.binDir, _ = FindBinaries()
		s.runAs, _ = systemUser()
		_, _ = s.cmd(context.Background(), "pg_ctl", "stop", "-w", "-m", "immediate", "-D", dir)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Errorf("remove %s: %v", dir, err)
	}
}
