// Package testutil is the test harness every Gatehouse package uses: a real PostgreSQL
// (TEST_DATABASE_URL, else the local server at 127.0.0.1:5432, else a private cluster
// started like `gatehouse dev` does), a migrated template database built once per
// `go test` run and cloned per test package, pools connected as gatehouse_app, and the
// real HTTP server on a random port.
package testutil

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/db"
	"github.com/gatehouse-id/gatehouse/internal/migrate"
	"github.com/gatehouse-id/gatehouse/internal/pgserver"
)

// server finds (once per process) a PostgreSQL server and a superuser URL for it.
type server struct {
	once     sync.Once
	adminURL string // superuser, database "postgres"
	err      error
}

var pg server // test-process state: one server per `go test` binary

func (s *server) get() (string, error) {
	s.once.Do(func() { s.adminURL, s.err = findServer() })
	return s.adminURL, s.err
}

func findServer() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		if err := ping(ctx, u); err != nil {
			return "", fmt.Errorf("TEST_DATABASE_URL: %w", err)
		}
		return u, nil
	}
	local := "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable&connect_timeout=3"
	if err := ping(ctx, local); err == nil {
		return local, nil
	}
	// No server reachable: a private cluster shared by every test process of this user,
	// started once (a file lock serialises the start) and left running for the next run.
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("gatehouse-test-pg-%d", os.Getuid()))
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", fmt.Errorf("lock private cluster: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock private cluster: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	srv, err := pgserver.Start(ctx, dir, pgserver.Options{Durable: false})
	if err != nil {
		return "", fmt.Errorf("no PostgreSQL at TEST_DATABASE_URL or 127.0.0.1:5432, and a private one did not start: %w", err)
	}
	return srv.URL("postgres", "postgres"), nil
}

func ping(ctx context.Context, u string) error {
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	return c.Ping(ctx)
}

// withDatabase returns u pointing at database name, as user (empty: keep), without password
// when the user changes.
func withDatabase(u, name, user string) string {
	p, err := url.Parse(u)
	if err != nil {
		panic(fmt.Sprintf("testutil: bad url: %v", err))
	}
	p.Path = "/" + name
	if user != "" {
		p.User = url.User(user)
	}
	return p.String()
}

// templateName is derived from the migrations, so a changed migration builds a new template.
func templateName() string {
	h := sha256.New()
	_ = fs.WalkDir(db.Migrations, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(db.Migrations, path)
		h.Write([]byte(path))
		h.Write(b)
		return nil
	})
	return "gh_tpl_" + hex.EncodeToString(h.Sum(nil))[:16]
}

// ensureTemplate builds the migrated template database once for all test processes
// (serialised by an advisory lock in the postgres database).
func ensureTemplate(ctx context.Context, adminURL string) (string, error) {
	name := templateName()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", fmt.Errorf("connect to test server: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(74280001)"); err != nil {
		return "", err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(74280001)")
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	build := name + "_build"
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+build+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+build); err != nil {
		return "", err
	}
	if err := migrate.Up(ctx, withDatabase(adminURL, build, "")); err != nil {
		return "", fmt.Errorf("migrate template: %w", err)
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+build+" RENAME TO "+name); err != nil {
		return "", err
	}
	// The comment dates the template, so that cleaning up below spares the templates
	// other checkouts (git worktrees with other migration sets) are using right now.
	if _, err := conn.Exec(ctx, fmt.Sprintf("COMMENT ON DATABASE %s IS 'gatehouse test template %d'", name, time.Now().Unix())); err != nil {
		return "", err
	}
	// Templates of older migration sets built more than six hours ago are of no further use.
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_database
		WHERE datname LIKE 'gh\_tpl\_%' AND datname <> $1
		  AND coalesce(substring(shobj_description(oid, 'pg_database') FROM '[0-9]+$')::bigint, 0) < $2`,
		name, time.Now().Add(-6*time.Hour).Unix())
	if err == nil {
		stale, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, s := range stale {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{s}.Sanitize()+" WITH (FORCE)")
		}
	}
	return name, nil
}

// createDatabase clones template (or creates an empty database when template is "").
func createDatabase(ctx context.Context, adminURL, template, prefix string) (string, error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := prefix + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	stmt := "CREATE DATABASE " + name
	if template != "" {
		stmt += " TEMPLATE " + template
	}
	// Two processes cloning the same template at the same instant can collide
	// ("source database is being accessed by other users"): retry briefly.
	for attempt := 0; ; attempt++ {
		_, err = conn.Exec(ctx, stmt)
		if err == nil || attempt == 20 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", stmt, err)
	}
	return name, nil
}

func dropDatabase(adminURL, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	return err
}
