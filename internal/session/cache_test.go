package session_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestCacheHonoursDeadlines uses an injected clock: a cached check is trusted no longer
// than the cache TTL, nor past the session's own idle deadline. Each step first changes
// the database behind the cache's back (a silent revocation, no broadcast), so a 200 can
// only come from the cache and a 401 only from the database.
func TestCacheHonoursDeadlines(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.FreshDB(t)
	ten := testutil.NewTenant(t, d, "cache")
	var uid uuid.UUID
	if err := d.Admin.QueryRow(ctx, "INSERT INTO users (tenant_id, email) VALUES ($1, 'c@example.com') RETURNING id", ten.ID).Scan(&uid); err != nil {
		t.Fatal(err)
	}
	l := d.Store.NewListener(slog.New(slog.DiscardHandler))
	lctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { l.Run(lctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	for !l.Healthy() {
		time.Sleep(5 * time.Millisecond)
	}
	clk := testutil.NewClock()
	svc, err := session.NewService(d.Store, clk.Now, l, session.Config{CacheSize: 100, CacheTTL: 10 * time.Minute}, &endLog{})
	if err != nil {
		t.Fatal(err)
	}

	newSession := func(idle int) (string, uuid.UUID) {
		var iss session.Issued
		err := d.Store.InTenantTx(ctx, ten.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
			var err error
			iss, _, err = svc.Create(ctx, tx, q, uid, tenant.SessionPolicy{IdleTimeoutSeconds: idle, AbsoluteTimeoutSeconds: 3600, MaxPerUser: 10}, session.Meta{}, []string{"password"}, time.Now())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return iss.Token, iss.Session.ID
	}
	silentRevoke := func(id uuid.UUID) {
		if _, err := d.Admin.Exec(ctx, "UPDATE sessions SET revoked_at = now() WHERE id = $1", id); err != nil {
			t.Fatal(err)
		}
	}
	check := func(tok string, want bool) {
		t.Helper()
		_, err := svc.Authenticate(ctx, ten.ID, tok)
		if (err == nil) != want {
			t.Fatalf("valid = %v, want %v (%v)", err == nil, want, err)
		}
	}

	tok, id := newSession(120) // idle timeout 2 minutes, cache TTL 10 minutes
	check(tok, true)
	silentRevoke(id)
	check(tok, true) // served from the cache: proves it is in use
	clk.Advance(110 * time.Second)
	check(tok, true)
	clk.Advance(15 * time.Second) // past the idle deadline: the cache lets go, the database says no
	check(tok, false)

	tok, id = newSession(3600) // idle timeout 1 hour: now the cache TTL (10 minutes) bounds
	check(tok, true)
	silentRevoke(id)
	clk.Advance(9 * time.Minute)
	check(tok, true)
	clk.Advance(2 * time.Minute)
	check(tok, false)
}
