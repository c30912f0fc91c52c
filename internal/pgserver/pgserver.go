// Package pgserver runs a private PostgreSQL cluster from the machine's server binaries. It
// serves `gatehouse dev` and the test harness on machines without a reachable database.
//
// The cluster listens only on a Unix socket (no TCP) in its own directory, with trust
// authentication for local connections. PostgreSQL refuses to run as root, so when the
// current user is root the binaries run as the `postgres` system user, who owns the data
// directory.
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
	DataDir string
	SockDir string
	Port    int
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

// Start initialises dataDir when it is empty, starts the cluster unless it already runs,
// and waits until it accepts connections. A cluster already running in dataDir is reused.
func Start(ctx context.Context, dataDir string, opts Options) (*Server, error) {
	binDir, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	dataDir, err = filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	s := &Server{DataDir: dataDir, binDir: binDir}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, errors.New("running as root, and PostgreSQL refuses to: a `postgres` system user is needed to own the private cluster (apt-get install -y postgresql creates it)")
		}
		s.runAs = u
	}
	s.SockDir = sockDirFor(dataDir)
	if err := s.prepareDirs(); err != nil {
		return nil, err
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

// sockDirFor keeps the socket path under the 107-byte limit of sun_path.
func sockDirFor(dataDir string) string {
	if len(dataDir)+len("/.s.PGSQL.65535") < 100 {
		return dataDir
	}
	h := sha256.Sum256([]byte(dataDir))
	return filepath.Join(os.TempDir(), "gatehouse-pg-"+hex.EncodeToString(h[:6]))
}

func (s *Server) prepareDirs() error {
	for _, d := range []string{s.DataDir, s.SockDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
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
		// The postgres user must be able to reach the data directory through its parents.
		for p := filepath.Dir(s.DataDir); p != "/"; p = filepath.Dir(p) {
			fi, err := os.Stat(p)
			if err != nil {
				return fmt.Errorf("stat %s: %w", p, err)
			}
			if fi.Mode().Perm()&0o001 == 0 {
				return fmt.Errorf("the postgres user cannot reach %s: %s is not world-searchable (chmod o+x %s, or choose another data dir)", s.DataDir, p, p)
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
