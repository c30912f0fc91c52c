package housekeeping_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/gatehouse-id/gatehouse/internal/app"
	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/housekeeping"
	"github.com/gatehouse-id/gatehouse/internal/secretbox"
	"github.com/gatehouse-id/gatehouse/internal/telemetry"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestMain fails the package when a test leaves a goroutine running (see testutil.Main).
func TestMain(m *testing.M) { testutil.Main(m) }

// newApp wires Gatehouse on d as `serve` does, without serving: its job queue never starts,
// so the only housekeeping that runs is what the test's own River clients work. The
// services' SQL spans go to tp (nil: none).
func newApp(t *testing.T, d *testutil.DB, tp trace.TracerProvider, opts ...func(*config.Config)) *app.App {
	t.Helper()
	env := map[string]string{
		"DATABASE_URL":            d.AppURL,
		"GATEHOUSE_BASE_DOMAIN":   "localhost",
		"GATEHOUSE_PUBLIC_SCHEME": "http",
		"GATEHOUSE_MAIL":          "dir:" + t.TempDir(),
		"GATEHOUSE_SECRET_KEY":    secretbox.NewKey(),
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	for _, o := range opts {
		o(&cfg)
	}
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	a, err := app.NewWithTelemetry(t.Context(), cfg, quietLogger(t), &telemetry.Telemetry{TracerProvider: tp, MeterProvider: metricnoop.NewMeterProvider()})
	if err != nil {
		t.Fatalf("wire the app: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

func quietLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// workers registers the three housekeeping workers on the app's services.
func workers(t *testing.T, a *app.App, batch int) *river.Workers {
	t.Helper()
	logger := quietLogger(t)
	purge, err := housekeeping.NewTenantPurgeWorker(a.Tenants, logger)
	if err != nil {
		t.Fatal(err)
	}
	rotation, err := housekeeping.NewRotationWorker(a.Store(), a.Tenants, a.Accounts, a.SSO, a.OIDC, batch, logger)
	if err != nil {
		t.Fatal(err)
	}
	refresh, err := housekeeping.NewMetadataRefreshWorker(a.Tenants, a.SSO, logger)
	if err != nil {
		t.Fatal(err)
	}
	w := river.NewWorkers()
	river.AddWorker(w, purge)
	river.AddWorker(w, rotation)
	river.AddWorker(w, refresh)
	return w
}

// node is one process's River client on d, on a pool of its own, traced like the server's.
type node struct {
	id     string
	client *river.Client[pgx.Tx]
}

// startNode starts a River client that works the housekeeping queue and, when it is elected
// leader, enqueues periodic. It is stopped when the test ends, or earlier by stop.
func startNode(t *testing.T, d *testutil.DB, id string, tp trace.TracerProvider, w *river.Workers, periodic []*river.PeriodicJob) *node {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), d.AppURL)
	if err != nil {
		t.Fatal(err)
	}
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		ID:                id,
		Queues:            map[string]river.QueueConfig{housekeeping.Queue: {MaxWorkers: 3}},
		Workers:           w,
		PeriodicJobs:      periodic,
		Middleware:        []rivertype.Middleware{telemetry.NewJobTracing(tp, func(context.Context) string { return "" })},
		FetchPollInterval: 50 * time.Millisecond,
		FetchCooldown:     10 * time.Millisecond,
		Logger:            quietLogger(t),
	})
	if err != nil {
		pool.Close()
		t.Fatal(err)
	}
	if err := client.Start(context.WithoutCancel(t.Context())); err != nil {
		pool.Close()
		t.Fatal(err)
	}
	n := &node{id: id, client: client}
	t.Cleanup(func() {
		n.stop(t)
		pool.Close()
	})
	return n
}

// stop stops the client gracefully: a leader resigns, so another node is elected at once.
func (n *node) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.client.Stop(ctx); err != nil {
		t.Errorf("stop %s: %v", n.id, err)
	}
}

// jobs counts the river_job rows of kind, in any state and completed.
func jobs(t *testing.T, d *testutil.DB, kind string) (all, completed int) {
	t.Helper()
	if err := d.Admin.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE state = 'completed')
		FROM river_job WHERE kind = $1`, kind).Scan(&all, &completed); err != nil {
		t.Fatal(err)
	}
	return all, completed
}

// waitCompleted waits (up to 20 s) until at least n jobs of kind have completed, and fails
// at once when one was discarded.
func waitCompleted(t *testing.T, d *testutil.DB, kind string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, completed := jobs(t, d, kind)
		if completed >= n {
			return
		}
		var errs []byte
		if err := d.Admin.QueryRow(context.Background(), `SELECT coalesce(jsonb_agg(errors), '[]')::text FROM river_job
			WHERE kind = $1 AND state = 'discarded'`, kind).Scan(&errs); err != nil {
			t.Fatal(err)
		}
		if string(errs) != "[]" {
			t.Fatalf("a %s job failed: %s", kind, errs)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d %s jobs completed after 20 s, want %d", completed, kind, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
