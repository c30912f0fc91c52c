package testutil

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/gatehouse-id/gatehouse/internal/migrate"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// DB is a test database. AdminURL connects as a superuser (for fixtures and catalog
// checks); AppURL and Store connect as gatehouse_app, like the server.
type DB struct {
	Name     string
	AdminURL string
	AppURL   string
	Admin    *pgxpool.Pool
	Store    *store.Store
}

// Main runs a package's tests, drops its database afterwards and then fails the run when
// a goroutine is still running (goleak): a server, pool, listener or worker some test
// started and never stopped. Call it from TestMain. A TestMain that already ran the tests
// passes their exit code.
func Main(m *testing.M, code ...int) {
	c := 0
	if len(code) > 0 {
		c = code[0]
	} else {
		c = m.Run()
	}
	shared.close()
	// Only after passing tests: a failed test may have stopped half-way (t.Fatal in a
	// helper) and its leaks would hide the failure that matters.
	if c == 0 {
		if err := goleak.Find(leakIgnores...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: goroutines still running after the tests and the package database were closed:\n%v\n", err)
			c = 1
		}
	}
	os.Exit(c)
}

// leakIgnores are goroutines allowed to outlive the tests: none so far. Leaks of ours are
// fixed, not listed; an entry here needs a comment saying why it cannot be fixed.
var leakIgnores []goleak.Option

type packageDB struct {
	once sync.Once
	db   *DB
	err  error
}

var shared packageDB // one clone per test package (per test binary)

func (p *packageDB) close() {
	if p.db != nil {
		p.db.close()
	}
}

// PackageDB returns the test package's database, cloned from the migrated template on
// first use. Tests sharing it must not depend on global state: each creates its own
// tenants (see NewTenant).
func PackageDB(tb testing.TB) *DB {
	tb.Helper()
	shared.once.Do(func() { shared.db, shared.err = newDB(true) })
	if shared.err != nil {
		tb.Fatalf("test database: %v", shared.err)
	}
	return shared.db
}

// FreshDB returns a database of the test's own, cloned from the template, dropped at the
// end of the test.
func FreshDB(tb testing.TB) *DB {
	tb.Helper()
	d, err := newDB(true)
	if err != nil {
		tb.Fatalf("test database: %v", err)
	}
	tb.Cleanup(d.close)
	return d
}

// EmptyDB returns an unmigrated database (for migration tests); it has no Store.
func EmptyDB(tb testing.TB) *DB {
	tb.Helper()
	d, err := newDB(false)
	if err != nil {
		tb.Fatalf("test database: %v", err)
	}
	tb.Cleanup(d.close)
	return d
}

// ServerAdminURL is a superuser URL of the test server's "postgres" database.
func ServerAdminURL(tb testing.TB) string {
	tb.Helper()
	u, err := pg.get()
	if err != nil {
		tb.Fatalf("test database server: %v", err)
	}
	return u
}

func newDB(migrated bool) (*DB, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	serverURL, err := pg.get()
	if err != nil {
		return nil, err
	}
	template := ""
	if migrated {
		if template, err = ensureTemplate(ctx, serverURL); err != nil {
			return nil, err
		}
	}
	name, err := createDatabase(ctx, serverURL, template, "gh_test_")
	if err != nil {
		return nil, err
	}
	d := &DB{Name: name, AdminURL: withDatabase(serverURL, name, "")}
	d.AppURL = withDatabase(serverURL, name, migrate.AppRole)
	if d.Admin, err = pgxpool.New(ctx, d.AdminURL); err != nil {
		_ = dropDatabase(serverURL, name)
		return nil, fmt.Errorf("admin pool: %w", err)
	}
	if migrated {
		if d.Store, err = store.Open(ctx, store.Config{URL: d.AppURL, MaxConns: 8}); err != nil {
			d.close()
			return nil, fmt.Errorf("app store: %w", err)
		}
	}
	return d, nil
}

func (d *DB) close() {
	if d.Store != nil {
		d.Store.Close()
	}
	if d.Admin != nil {
		d.Admin.Close()
	}
	if u, err := pg.get(); err == nil {
		_ = dropDatabase(u, d.Name)
	}
}
