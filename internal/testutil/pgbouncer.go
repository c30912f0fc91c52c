package testutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/migrate"
)

// PgBouncer is Debian's pgbouncer (1.18 on Debian 12, installed by `scripts/deps.sh test`)
// in transaction pooling mode in front of the test server, configured the way deploy/
// describes: every database, trust authentication, no prepared-statement support (clients
// need GATEHOUSE_DB_EXEC_MODE=exec).
type PgBouncer struct {
	Addr string // 127.0.0.1:port
	out  *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// StartPgBouncer starts a pgbouncer of the test's own on a free loopback port and stops it
// when the test ends. It skips the test, saying why, when pgbouncer is not installed or
// cannot start here. PgBouncer refuses to run as root: as root it runs as the postgres
// system user, from a directory that user owns.
func StartPgBouncer(tb testing.TB) *PgBouncer {
	tb.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/pgbouncer"); serr != nil {
			tb.Skip("pgbouncer is not installed (as root, scripts/deps.sh test installs Debian's pgbouncer)")
		}
		bin = "/usr/sbin/pgbouncer"
	}
	serverURL, err := pg.get()
	if err != nil {
		tb.Fatalf("test database server: %v", err)
	}
	up, err := pgx.ParseConfig(serverURL)
	if err != nil {
		tb.Fatal(err)
	}
	var cred *syscall.Credential
	uid, gid := -1, -1
	if os.Getuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			tb.Skipf("pgbouncer refuses to run as root and there is no postgres user to run it as: %v", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	dir, err := os.MkdirTemp("", "gatehouse-pgbouncer-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	if uid >= 0 {
		if err := os.Chown(dir, uid, gid); err != nil {
			tb.Fatal(err)
		}
	}

	// userlist.txt: trust still needs the user names; a password given for the superuser
	// is what pgbouncer logs in to the server with.
	pass, _ := url.Parse(serverURL)
	adminPass := ""
	if pass != nil && pass.User != nil {
		adminPass, _ = pass.User.Password()
	}
	users := fmt.Sprintf("%q %q\n%q \"\"\n", up.User, adminPass, migrate.AppRole)

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port := freeLoopbackPort(tb)
		ini := fmt.Sprintf(`[databases]
* = host=%s port=%d

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
max_client_conn = 500
default_pool_size = 40
server_reset_query =
ignore_startup_parameters = extra_float_digits
pidfile = %s
logfile = %s
`, up.Host, up.Port, port, filepath.Join(dir, "userlist.txt"), filepath.Join(dir, "pgbouncer.pid"), filepath.Join(dir, "pgbouncer.log"))
		for name, content := range map[string]string{"userlist.txt": users, "pgbouncer.ini": ini} {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				tb.Fatal(err)
			}
			if uid >= 0 {
				if err := os.Chown(p, uid, gid); err != nil {
					tb.Fatal(err)
				}
			}
		}
		b := &PgBouncer{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), out: &lockedBuffer{}}
		cmd := exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
		cmd.Dir = dir
		cmd.Stdout, cmd.Stderr = b.out, b.out
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
		if err := cmd.Start(); err != nil {
			tb.Skipf("pgbouncer does not start here: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Signal(syscall.SIGTERM) // immediate shutdown
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		if lastErr = b.waitUp(exited, serverURL); lastErr == nil {
			tb.Cleanup(stop)
			return b
		}
		stop()
		lastErr = fmt.Errorf("%w\n%s", lastErr, b.out.String())
	}
	tb.Skipf("pgbouncer cannot be started here: %v", lastErr)
	return nil
}

// waitUp waits until a query through the bouncer reaches the server.
func (b *PgBouncer) waitUp(exited <-chan struct{}, serverURL string) error {
	target := b.url(serverURL)
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			return errors.New("pgbouncer exited")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, target)
		if err == nil {
			err = c.Ping(ctx)
			c.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no query through pgbouncer on %s after 10 s: %w", b.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// URL is dbURL (a test database's AppURL or AdminURL) through the bouncer: same user and
// database, the bouncer's address, no TLS.
func (b *PgBouncer) URL(tb testing.TB, dbURL string) string {
	tb.Helper()
	if _, err := url.Parse(dbURL); err != nil {
		tb.Fatal(err)
	}
	return b.url(dbURL)
}

func (b *PgBouncer) url(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		return ""
	}
	q := u.Query()
	q.Del("host")
	q.Del("port")
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	u.Host = b.Addr
	return u.String()
}

// Output is what pgbouncer wrote so far (for failure messages).
func (b *PgBouncer) Output() string { return b.out.String() }

func freeLoopbackPort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
