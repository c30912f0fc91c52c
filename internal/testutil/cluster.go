package testutil

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse-id/gatehouse/internal/migrate"
	"github.com/gatehouse-id/gatehouse/internal/pgserver"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// Cluster is a private PostgreSQL cluster of one test (internal/pgserver, as `gatehouse
// dev` runs it), for tests that stop and start the database. The shared test server is
// never stopped: a test that needs an outage gets a cluster of its own. It works as root
// (the binaries then run as the postgres user) and as a normal user.
type Cluster struct {
	// DB is the migrated database "gatehouse" of the cluster (Admin as the superuser,
	// Store as gatehouse_app). Not dropped at the end: the cluster is removed.
	DB  *DB
	srv *pgserver.Server
}

// NewCluster initialises and starts a cluster in a temporary directory, migrates a
// database, and stops and removes it all when the test ends. Skips the test when the
// server binaries are not installed.
func NewCluster(tb testing.TB) *Cluster {
	tb.Helper()
	if _, err := pgserver.FindBinaries(); err != nil {
		tb.Skipf("private cluster: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "gatehouse-test-cluster-")
	if err != nil {
		tb.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755) // the postgres user runs the server when we are root
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	srv, err := pgserver.Start(ctx, dir+"/pg", pgserver.Options{Durable: true})
	if err != nil {
		tb.Fatalf("private cluster: %v", err)
	}
	c := &Cluster{srv: srv}
	tb.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
		defer scancel()
		if err := srv.Stop(sctx); err != nil {
			tb.Logf("stop private cluster: %v", err)
		}
	})
	admin, err := pgx.Connect(ctx, srv.URL("postgres", "postgres"))
	if err != nil {
		tb.Fatalf("private cluster: %v", err)
	}
	_, err = admin.Exec(ctx, "CREATE DATABASE gatehouse")
	admin.Close(ctx)
	if err != nil {
		tb.Fatalf("private cluster: %v", err)
	}
	d := &DB{Name: "gatehouse", AdminURL: srv.URL("postgres", "gatehouse"), AppURL: srv.URL(migrate.AppRole, "gatehouse")}
	if err := migrate.Up(ctx, d.AdminURL); err != nil {
		tb.Fatalf("migrate private cluster: %v", err)
	}
	if d.Admin, err = pgxpool.New(ctx, d.AdminURL); err != nil {
		tb.Fatalf("admin pool: %v", err)
	}
	tb.Cleanup(d.Admin.Close)
	if d.Store, err = store.Open(ctx, store.Config{URL: d.AppURL, MaxConns: 8}); err != nil {
		tb.Fatalf("app store: %v", err)
	}
	tb.Cleanup(d.Store.Close)
	c.DB = d
	return c
}

// Stop shuts the cluster down (fast mode: every connection is ended).
func (c *Cluster) Stop(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.srv.Stop(ctx); err != nil {
		tb.Fatal(err)
	}
}

// Start starts the stopped cluster again, same data directory, port and socket.
func (c *Cluster) Start(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.srv.StartAgain(ctx); err != nil {
		tb.Fatal(err)
	}
}
