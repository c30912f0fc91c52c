// Package pgserver runs a private PostgreSQL cluster from the machine's server binaries. It
// serves `gatehouse dev` and the test harness on machines without a reachable database.
//
// The cluster listens only on a Unix socket (no TCP) in its own directory, with trust
// authentication for local connections. PostgreSQL refuses to run as root, so when the
// current user is root the binaries run as the `postgres` system user, who owns the data
// directory. When that user cannot reach the requested directory (root's checkout under
// /root, mode 0700), the cluster lives in a directory of its own instead — see Locate —
// and no permission of the caller's directories changes.
package pgserver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Options tune the cluster.
type Options struct {
	// Durable=false turns off fsync and full-page writes: fine for tests, whose data is
	// disposable, and much faster on shared disks.
	Durable bool
}

// Server is a running private cluster.
type Server struct {
	// DataDir is where the cluster lives: the directory Start was given, or the one Locate
	// chose instead (then Relocated is true and Requested is the given one).
	DataDir   string
	Requested string
	Relocated bool
	SockDir   string
	Port      int
	// Started is true when this process started the cluster (and should stop it).
	Started bool

	binDir string
	runAs  *user.User // nil: run as the current user
}

// FindBinaries locates the directory holding initdb, pg_ctl and postgres: PATH first, then
// the newest /usr/lib/postgresql/*/bin.
func FindBinaries() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or under /usr/lib/postgresql/*/bin; install them with: apt-get install -y postgresql")
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Start initialises the cluster directory (see Locate) when it is empty, starts the
// cluster unless it already runs, and waits until it accepts connections. A cluster already
// running there is reused.
func Start(ctx context.Context, dataDir string, opts Options) (*Server, error) {
	binDir, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	requested, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	runAs, err := systemUser()
	if err != nil {
		return nil, err
	}
	// The parent as the caller would create it; existing directories keep their modes.
	if err := os.MkdirAll(filepath.Dir(requested), 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", filepath.Dir(requested), err)
	}
	dataDir, err = locate(requested, runAs)
	if err != nil {
		return nil, err
	}
	s := &Server{DataDir: dataDir, Requested: requested, Relocated: dataDir != requested, binDir: binDir, runAs: runAs}
	s.SockDir = sockDirFor(dataDir, runAs)
	if err := s.prepareDirs(); err != nil {
		return nil, err
	}
	if s.Relocated {
		if err := writeNote(requested, dataDir); err != nil {
			return nil, err
		}
	} else if !exists(filepath.Join(dataDir, "PG_VERSION")) {
		// A note from a relocation whose cluster is gone would keep initdb from using
		// the (otherwise empty) directory.
		_ = os.Remove(filepath.Join(dataDir, noteName))
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := s.initdb(ctx, opts); err != nil {
			return nil, err
		}
	}
	if port, ok := s.runningPort(ctx); ok {
		s.Port = port
		return s, s.waitReady(ctx)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s.Port = port
	logFile := filepath.Join(dataDir, "server.log")
	if _, err := s.cmd(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", dataDir, "-l", logFile,
		"-o", fmt.Sprintf("-p %d -k %s", port, s.SockDir)); err != nil {
		return nil, fmt.Errorf("start private PostgreSQL in %s (log: %s): %w", dataDir, logFile, err)
	}
	s.Started = true
	return s, s.waitReady(ctx)
}

// systemUser is the user the server binaries run as: nil (the current user) unless the
// current user is root, which PostgreSQL refuses to run as.
func systemUser() (*user.User, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, errors.New("running as root, and PostgreSQL refuses to: a `postgres` system user is needed to own the private cluster (apt-get install -y postgresql creates it)")
	}
	return u, nil
}

// RelocatedBase is where Locate keeps clusters the postgres user could not reach in the
// requested directory: RelocatedBase/<hash of the requested directory>.
const RelocatedBase = "/var/lib/gatehouse-dev"

// Locate returns the directory the cluster for dataDir lives in. That is dataDir itself,
// except as root when the postgres system user (who runs the cluster) cannot search every
// parent of dataDir — for example a checkout under /root, mode 0700. Then the cluster lives
// in a directory keyed by the absolute dataDir, owned by postgres, mode 0700:
// RelocatedBase/<hash>, or <temp dir>/gatehouse-dev-pg-<hash> (then /tmp/…) when
// RelocatedBase cannot be created or reached. The same dataDir always gives the same
// directory, and a cluster already initialised in one of them is reused. Locate may create
// RelocatedBase; it changes no permission of an existing directory.
func Locate(dataDir string) (string, error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	runAs, err := systemUser()
	if err != nil {
		return "", err
	}
	return locate(abs, runAs)
}

func locate(abs string, runAs *user.User) (string, error) {
	if runAs == nil {
		return abs, nil
	}
	parentOK := searchable(runAs, filepath.Dir(abs)) == ""
	if parentOK && exists(filepath.Join(abs, "PG_VERSION")) {
		return abs, nil
	}
	candidates := relocatedCandidates(abs)
	for _, c := range candidates {
		if exists(filepath.Join(c, "PG_VERSION")) && searchable(runAs, filepath.Dir(c)) == "" {
			return c, nil // relocated on an earlier run: same data dir, same cluster
		}
	}
	if parentOK {
		return abs, nil
	}
	blocker := searchable(runAs, filepath.Dir(abs))
	for i, c := range candidates {
		base := filepath.Dir(c)
		if i == 0 {
			// Root's own directory for relocated clusters, searchable by everyone; the
			// clusters inside are postgres's, mode 0700.
			if err := os.Mkdir(base, 0o755); err == nil {
				_ = os.Chmod(base, 0o755) // whatever the umask
			} else if !errors.Is(err, os.ErrExist) {
				continue // /var/lib not writable: try the temp dir
			}
		}
		if searchable(runAs, base) == "" {
			return c, nil
		}
	}
	return "", fmt.Errorf("the postgres user cannot reach %s (%s is not searchable by it), nor %s or the temp dir", abs, blocker, RelocatedBase)
}

// relocatedCandidates lists, in order of preference, where the cluster for abs lives when
// the postgres user cannot reach abs.
func relocatedCandidates(abs string) []string {
	h := sha256.Sum256([]byte(abs))
	key := hex.EncodeToString(h[:8])
	c := []string{filepath.Join(RelocatedBase, key)}
	for _, tmp := range tempDirs() {
		c = append(c, filepath.Join(tmp, "gatehouse-dev-pg-"+key))
	}
	return c
}

// tempDirs is os.TempDir, then /tmp when that differs.
func tempDirs() []string {
	if t := filepath.Clean(os.TempDir()); t != "/tmp" {
		return []string{t, "/tmp"}
	}
	return []string{"/tmp"}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// searchable reports the first directory on the way to dir (dir included) that u may not
// search, or "" when u reaches dir. Symbolic links are resolved first, and a directory that
// does not exist yet counts as reachable when its parent is (it is created 0755).
func searchable(u *user.User, dir string) string {
	dir = resolve(dir)
	uid, _ := strconv.Atoi(u.Uid)
	gids := map[uint32]bool{}
	if g, err := strconv.Atoi(u.Gid); err == nil {
		gids[uint32(g)] = true
	}
	if groups, err := u.GroupIds(); err == nil {
		for _, s := range groups {
			if g, err := strconv.Atoi(s); err == nil {
				gids[uint32(g)] = true
			}
		}
	}
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err == nil {
			if !canSearch(fi, uint32(uid), gids) {
				return p
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return p
		}
		if p == "/" || p == "." {
			return ""
		}
	}
}

// resolve resolves the symbolic links of the longest existing prefix of dir.
func resolve(dir string) string {
	rest := ""
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(real, rest)
		}
		if p == "/" || p == "." {
			return dir
		}
		rest = filepath.Join(filepath.Base(p), rest)
	}
}

// canSearch applies the permission bits as the kernel does: the owner's bits for the
// owner, else the group's for a member, else the others'.
func canSearch(fi os.FileInfo, uid uint32, gids map[uint32]bool) bool {
	if !fi.IsDir() {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fi.Mode().Perm()&0o001 != 0
	}
	perm := fi.Mode().Perm()
	switch {
	case st.Uid == uid:
		return perm&0o100 != 0
	case gids[st.Gid]:
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}

// noteName is the file left in the requested directory when the cluster lives elsewhere.
const noteName = "CLUSTER-LOCATION.txt"

func writeNote(requested, actual string) error {
	note := fmt.Sprintf(`The private PostgreSQL cluster for this directory lives in
  %s
because the postgres system user, who runs it (PostgreSQL refuses to run as root), cannot
reach this directory: one of its parents is not searchable by that user (such as /root,
mode 0700). Gatehouse reuses that cluster on the next run with this directory. To remove it,
stop gatehouse and run: rm -rf %s
`, actual, actual)
	if b, err := os.ReadFile(filepath.Join(requested, noteName)); err == nil && string(b) == note {
		return nil
	}
	if err := os.MkdirAll(requested, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", requested, err)
	}
	if err := os.WriteFile(filepath.Join(requested, noteName), []byte(note), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(requested, noteName), err)
	}
	return nil
}

// sockDirFor keeps the socket path under the 107-byte limit of sun_path, in a directory the
// server's user can reach.
func sockDirFor(dataDir string, runAs *user.User) string {
	if len(dataDir)+len("/.s.PGSQL.65535") < 100 {
		return dataDir
	}
	h := sha256.Sum256([]byte(dataDir))
	name := "gatehouse-pg-" + hex.EncodeToString(h[:6])
	for _, tmp := range tempDirs() {
		d := filepath.Join(tmp, name)
		if len(d)+len("/.s.PGSQL.65535") < 100 && (runAs == nil || searchable(runAs, tmp) == "") {
			return d
		}
	}
	return filepath.Join("/tmp", name)
}

// checkShared refuses d when it sits in a directory anyone may write to (such as /tmp)
// and is not a real directory of ours or postgres's: someone else's directory or link
// there must not be chmodded and chowned.
func (s *Server) checkShared(d string) error {
	parent, err := os.Stat(filepath.Dir(d))
	if err != nil || parent.Mode().Perm()&0o002 == 0 {
		return nil
	}
	fi, err := os.Lstat(d)
	if err != nil {
		return fmt.Errorf("stat %s: %w", d, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory: remove it or choose another data dir", d)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		mine := st.Uid == uint32(os.Geteuid())
		if s.runAs != nil {
			uid, _ := strconv.Atoi(s.runAs.Uid)
			mine = mine || st.Uid == uint32(uid)
		}
		if !mine {
			return fmt.Errorf("%s belongs to another user (uid %d): remove it or choose another data dir", d, st.Uid)
		}
	}
	return nil
}

func (s *Server) prepareDirs() error {
	for _, d := range []string{s.DataDir, s.SockDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
		if err := s.checkShared(d); err != nil {
			return err
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return fmt.Errorf("chmod %s: %w", d, err)
		}
		if s.runAs != nil {
			uid, _ := strconv.Atoi(s.runAs.Uid)
			gid, _ := strconv.Atoi(s.runAs.Gid)
			if err := os.Chown(d, uid, gid); err != nil {
				return fmt.Errorf("chown %s to postgres: %w", d, err)
			}
		}
	}
	if s.runAs != nil {
		// Locate chose a directory the postgres user reaches; the socket's must be too.
		for _, d := range []string{s.DataDir, s.SockDir} {
			if p := searchable(s.runAs, d); p != "" {
				return fmt.Errorf("the postgres user cannot reach %s: %s is not searchable by it", d, p)
			}
		}
	}
	return nil
}

func (s *Server) initdb(ctx context.Context, opts Options) error {
	if _, err := s.cmd(ctx, "initdb", "-D", s.DataDir, "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--no-locale", "--no-instructions"); err != nil {
		return fmt.Errorf("initdb %s: %w", s.DataDir, err)
	}
	conf := fmt.Sprintf("\n# gatehouse private cluster\nlisten_addresses = ''\nunix_socket_directories = '%s'\nmax_connections = 200\n", s.SockDir)
	if !opts.Durable {
		conf += "fsync = off\nfull_page_writes = off\nsynchronous_commit = off\n"
	}
	f, err := os.OpenFile(filepath.Join(s.DataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open postgresql.conf: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(conf); err != nil {
		return fmt.Errorf("write postgresql.conf: %w", err)
	}
	return nil
}

// runningPort reports the port of a cluster already running in the data dir.
func (s *Server) runningPort(ctx context.Context) (int, bool) {
	if _, err := s.cmd(ctx, "pg_ctl", "status", "-D", s.DataDir); err != nil {
		return 0, false
	}
	b, err := os.ReadFile(filepath.Join(s.DataDir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	// postmaster.pid: pid, data dir, start time, port, socket dir, ...
	sc := bufio.NewScanner(bytes.NewReader(b))
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) < 5 {
		return 0, false
	}
	port, err := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err != nil {
		return 0, false
	}
	if dir := strings.TrimSpace(lines[4]); dir != "" {
		s.SockDir = dir
	}
	return port, true
}

func (s *Server) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	sock := filepath.Join(s.SockDir, fmt.Sprintf(".s.PGSQL.%d", s.Port))
	for {
		c, err := net.DialTimeout("unix", sock, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("private PostgreSQL did not accept connections on %s: %w", sock, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// URL returns a connection URL for user and database over the Unix socket.
func (s *Server) URL(user, database string) string {
	u := url.URL{Scheme: "postgres", User: url.User(user), Path: "/" + database}
	q := url.Values{}
	q.Set("host", s.SockDir)
	q.Set("port", strconv.Itoa(s.Port))
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	return u.String()
}

// Stop shuts the cluster down (fast mode: active sessions are ended) and waits.
func (s *Server) Stop(ctx context.Context) error {
	if _, err := s.cmd(ctx, "pg_ctl", "stop", "-w", "-m", "fast", "-D", s.DataDir); err != nil {
		return fmt.Errorf("stop private PostgreSQL: %w", err)
	}
	return nil
}

func (s *Server) cmd(ctx context.Context, name string, args ...string) ([]byte, error) {
	bin := filepath.Join(s.binDir, name)
	var c *exec.Cmd
	if s.runAs != nil {
		c = exec.CommandContext(ctx, "runuser", append([]string{"-u", s.runAs.Username, "--", bin}, args...)...)
	} else {
		c = exec.CommandContext(ctx, bin, args...)
	}
	c.Dir = "/"
	c.Env = append(os.Environ(), "LC_ALL=C")
	// Keep the server out of our process group so a Ctrl-C in the terminal does not kill it
	// before we stop it cleanly.
	c.SysProcAttr = detached()
	out, err := c.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Restart restarts the cluster in fast mode (active sessions are ended) on the same port
// and socket, as `pg_ctl restart` does: the fault tests' database outage.
func (s *Server) Restart(ctx context.Context) error {
	// -l: the new postmaster must not inherit pg_ctl's output pipe (the call would wait for
	// it to close, forever).
	if _, err := s.cmd(ctx, "pg_ctl", "restart", "-w", "-t", "60", "-m", "fast", "-D", s.DataDir,
		"-l", filepath.Join(s.DataDir, "server.log")); err != nil {
		return fmt.Errorf("restart private PostgreSQL: %w", err)
	}
	return s.waitReady(ctx)
}

// StartAgain starts a cluster that Stop stopped, on the same port and socket (so the URLs
// handed out before still connect), and waits until it accepts connections: with Stop, a
// database outage of a chosen length for tests.
func (s *Server) StartAgain(ctx context.Context) error {
	if _, err := s.cmd(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", s.DataDir, "-l", filepath.Join(s.DataDir, "server.log"),
		"-o", fmt.Sprintf("-p %d -k %s", s.Port, s.SockDir)); err != nil {
		return fmt.Errorf("start private PostgreSQL again: %w", err)
	}
	return s.waitReady(ctx)
}
