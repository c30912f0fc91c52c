package housekeeping_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/housekeeping"
	"github.com/gatehouse-id/gatehouse/internal/sso"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestWorkersRefuseMissingDependencies: a worker built without one of its dependencies is an
// error at wiring time, not a nil dereference in the first run.
func TestWorkersRefuseMissingDependencies(t *testing.T) {
	t.Parallel()
	a := newApp(t, testutil.PackageDB(t), nil)
	logger := quietLogger(t)
	for name, build := range map[string]func() error{
		"purge without tenants": func() error { _, err := housekeeping.NewTenantPurgeWorker(nil, logger); return err },
		"purge without logger":  func() error { _, err := housekeeping.NewTenantPurgeWorker(a.Tenants, nil); return err },
		"rotation without store": func() error {
			_, err := housekeeping.NewRotationWorker(nil, a.Tenants, a.Accounts, a.SSO, a.OIDC, 1, logger)
			return err
		},
		"rotation without tenants": func() error {
			_, err := housekeeping.NewRotationWorker(a.Store(), nil, a.Accounts, a.SSO, a.OIDC, 1, logger)
			return err
		},
		"rotation without accounts": func() error {
			_, err := housekeeping.NewRotationWorker(a.Store(), a.Tenants, nil, a.SSO, a.OIDC, 1, logger)
			return err
		},
		"rotation without sso": func() error {
			_, err := housekeeping.NewRotationWorker(a.Store(), a.Tenants, a.Accounts, nil, a.OIDC, 1, logger)
			return err
		},
		"rotation without oidc": func() error {
			_, err := housekeeping.NewRotationWorker(a.Store(), a.Tenants, a.Accounts, a.SSO, nil, 1, logger)
			return err
		},
		"rotation without logger": func() error {
			_, err := housekeeping.NewRotationWorker(a.Store(), a.Tenants, a.Accounts, a.SSO, a.OIDC, 1, nil)
			return err
		},
		"rotation with an empty batch": func() error {
			_, err := housekeeping.NewRotationWorker(a.Store(), a.Tenants, a.Accounts, a.SSO, a.OIDC, 0, logger)
			return err
		},
		"refresh without tenants": func() error { _, err := housekeeping.NewMetadataRefreshWorker(nil, a.SSO, logger); return err },
		"refresh without sso":     func() error { _, err := housekeeping.NewMetadataRefreshWorker(a.Tenants, nil, logger); return err },
		"refresh without logger":  func() error { _, err := housekeeping.NewMetadataRefreshWorker(a.Tenants, a.SSO, nil); return err },
	} {
		if err := build(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	workers(t, a, 1) // and with everything, each builds
}

// TestTenantPurgeJob: the safety net purges a tenant whose grace period is over, and leaves
// one still within it.
func TestTenantPurgeJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.FreshDB(t) // the job purges every due tenant of the database
	a := newApp(t, d, nil)
	due := testutil.NewTenant(t, d, "purge-due")
	within := testutil.NewTenant(t, d, "purge-later")
	for _, x := range []tenant.Tenant{due, within} {
		if _, err := a.Tenants.Delete(ctx, x.Slug, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Admin.Exec(ctx, `UPDATE tenants SET purge_after = now() - interval '1 minute' WHERE id = $1`, due.ID); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, d, "purger", nil, workers(t, a, housekeeping.BatchSize), nil)
	if _, err := n.client.Insert(ctx, housekeeping.TenantPurgeArgs{}, nil); err != nil {
		t.Fatal(err)
	}
	waitCompleted(t, d, housekeeping.TenantPurgeArgs{}.Kind(), 1)
	if _, err := a.Tenants.GetByID(ctx, due.ID); !tenant.IsNotFound(err) {
		t.Fatalf("tenant past its grace period: %v, want it purged", err)
	}
	if got, err := a.Tenants.GetByID(ctx, within.ID); err != nil || got.Status != tenant.StatusSuspended {
		t.Fatalf("tenant within its grace period: %+v %v, want it kept (suspended)", got, err)
	}
}

// TestMetadataRefreshJob: the job re-fetches a connection's metadata URL and records the
// fetch, and its span (the telemetry middleware's) has the worker's SQL as children.
func TestMetadataRefreshJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	doc, err := os.ReadFile("testdata/okta-metadata.xml")
	if err != nil {
		t.Fatal(err)
	}
	var fetches atomic.Int32
	idp := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		_, _ = w.Write(doc)
	}))
	t.Cleanup(idp.Close)
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	d := testutil.FreshDB(t)
	a := newApp(t, d, tp, func(c *config.Config) { c.OutboundRootCAs = testutil.CertPool(idp); c.OutboundAllowPrivate = true })
	ten := testutil.NewTenant(t, d, "refresh")
	name, url := "Okta", idp.URL+"/metadata"
	conn, err := a.SSO.Create(ctx, ten, sso.Input{Name: &name, MetadataURL: &url}, audit.Who{ActorLabel: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if fetches.Load() != 1 || conn.MetadataFetchedAt == nil {
		t.Fatalf("creating the connection fetched %d times (fetched at %v), want once", fetches.Load(), conn.MetadataFetchedAt)
	}

	n := startNode(t, d, "refresher", tp, workers(t, a, housekeeping.BatchSize), nil)
	if _, err := n.client.Insert(ctx, housekeeping.MetadataRefreshArgs{}, nil); err != nil {
		t.Fatal(err)
	}
	kind := housekeeping.MetadataRefreshArgs{}.Kind()
	waitCompleted(t, d, kind, 1)
	if got := fetches.Load(); got != 2 {
		t.Fatalf("the IdP served its metadata %d times, want 2 (creation, refresh)", got)
	}
	got, err := a.SSO.Get(ctx, ten, conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.MetadataFetchedAt == nil || !got.MetadataFetchedAt.After(*conn.MetadataFetchedAt) || got.MetadataError != nil {
		t.Fatalf("after the refresh: fetched at %v (created %v), error %v", got.MetadataFetchedAt, conn.MetadataFetchedAt, got.MetadataError)
	}

	// The job's span ends just after River records the job as completed.
	var job sdktrace.ReadOnlySpan
	for deadline := time.Now().Add(10 * time.Second); job == nil; time.Sleep(20 * time.Millisecond) {
		for _, s := range sr.Ended() {
			if s.Name() == "job "+kind {
				job = s
			}
		}
		if job == nil && time.Now().After(deadline) {
			t.Fatalf("no span %q", "job "+kind)
		}
	}
	attrs := map[string]string{}
	for _, kv := range job.Attributes() {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	if job.SpanKind() != trace.SpanKindConsumer || attrs["gatehouse.job.outcome"] != "completed" || attrs["messaging.destination.name"] != housekeeping.Queue {
		t.Fatalf("job span kind %v attributes %v", job.SpanKind(), attrs)
	}
	sql := 0
	for _, s := range sr.Ended() {
		if s.Parent().SpanID() == job.SpanContext().SpanID() && s.SpanKind() == trace.SpanKindClient {
			sql++
		}
	}
	if sql < 2 { // list the tenants, list the connections, store the new metadata
		t.Errorf("job span has %d SQL children, want the worker's queries under it", sql)
	}
}
