package webhooks_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/events"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestNothingLostAcrossPostgresRestart: on a private PostgreSQL cluster of its own (the
// shared test server is never stopped), sign-ups are made while the receiver is down; with
// their deliveries retrying, PostgreSQL is stopped, left down for a few seconds, and started
// again on the same data directory; then the receiver comes back. Every event arrives,
// signed, none missing, duplicates only as repeats of the same webhook-id, and every
// delivery ends delivered. Then PostgreSQL stops while attempts are in flight and their
// answers come: those deliveries are sent again and recorded once it is back.
func TestNothingLostAcrossPostgresRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster of its own")
	}
	// Not parallel: starting and migrating a cluster of its own is heavy, and the package's
	// other tests (thirty concurrent sign-ups in TestOutageThenRecovery) need the machine.
	cl := testutil.NewCluster(t)
	srv := testutil.NewServer(t, cl.DB, testutil.WithConfig(fast), testutil.TrustProxyHeaders)
	site := testutil.NewSite(t, srv, "restart", testutil.SitePolicy(func(p *tenant.Policy) { p.Deletion.GraceDays = 0 }))
	_, admin := site.Person(t, "owner@example.com", authz.Owner)
	e := &env{Site: site, d: cl.DB, admin: admin}
	rc := newReceiver(t)
	c := e.create(t, map[string]any{"url": rc.URL(), "event_types": []string{events.UserCreated}})
	rc.trust("current", c.Secret)
	rc.stop() // connections refused

	const n = 20
	for i := range n {
		r := e.Do(t, "POST", "/api/v1/signup", "", map[string]string{"email": fmt.Sprintf("r%02d@example.com", i), "password": testutil.Password},
			"X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1))
		if r.StatusCode != http.StatusAccepted {
			t.Fatalf("signup %d: %d %s", i, r.StatusCode, r.Body)
		}
	}
	ctx := context.Background()
	var want []string
	rows, err := cl.DB.Admin.Query(ctx, `SELECT id::text FROM events WHERE type = 'user.created' AND data->>'email' LIKE 'r%@example.com'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		want = append(want, id)
	}
	rows.Close()
	if len(want) != n {
		t.Fatalf("%d events recorded, want %d", len(want), n)
	}
	// Every delivery has failed at least twice (retrying) before the database goes.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var retrying int
		if err := cl.DB.Admin.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE state = 'pending' AND attempts >= 2`).Scan(&retrying); err != nil {
			t.Fatal(err)
		}
		if retrying == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deliveries retrying", retrying, n)
		}
	}
	cl.Stop(t)
	time.Sleep(3 * time.Second) // attempts and their bookkeeping fail meanwhile
	cl.Start(t)
	rc.restart() // the receiver is back
	start := time.Now()
	got := rc.waitFor("every event after the restart", 3*time.Minute, func(ds []delivery) bool {
		seen := map[string]bool{}
		for _, d := range ds {
			seen[d.ID] = true
		}
		return len(seen) == n
	})
	t.Logf("all %d events arrived %s after PostgreSQL and the receiver were back", n, time.Since(start).Round(time.Millisecond))
	var ids []string
	for _, d := range got {
		if !slices.Contains(ids, d.ID) {
			ids = append(ids, d.ID)
		}
		if d.Body.Type != events.UserCreated || len(d.Verified) == 0 {
			t.Errorf("delivery %s: type %s, verified by %v", d.ID, d.Body.Type, d.Verified)
		}
	}
	slices.Sort(ids)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("delivered %v, recorded %v", ids, want)
	}
	if bad := rc.refused(); len(bad) > 0 {
		t.Errorf("unverified deliveries: %v", bad)
	}
	waitDelivered(t, cl, n)

	// Then PostgreSQL goes away while requests are in flight, and the receiver accepts
	// them: the outcome cannot be written. The deliveries must not stay pending without a
	// job: they are sent again once the database is back (same webhook-id), and recorded.
	hold := make(chan struct{})
	rc.mu.Lock()
	rc.hold = hold
	rc.mu.Unlock()
	const k = 4 // the per-endpoint limit of concurrent attempts
	for i := range k {
		r := e.Do(t, "POST", "/api/v1/signup", "", map[string]string{"email": fmt.Sprintf("s%02d@example.com", i), "password": testutil.Password},
			"X-Forwarded-For", fmt.Sprintf("198.51.100.%d", n+i+1))
		if r.StatusCode != http.StatusAccepted {
			t.Fatalf("signup %d: %d %s", i, r.StatusCode, r.Body)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		rc.mu.Lock()
		active := rc.active
		rc.mu.Unlock()
		if active == k {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests in flight", active, k)
		}
	}
	cl.Stop(t)
	rc.mu.Lock()
	rc.hold = nil
	rc.mu.Unlock()
	close(hold)                 // accepted while the database is down
	time.Sleep(3 * time.Second) // past the worker's bookkeeping retries (2 s with this unit)
	cl.Start(t)
	waitDelivered(t, cl, n+k)
	if got := rc.deliveries(); len(got) < n+k {
		t.Fatalf("%d deliveries received, want at least %d", len(got), n+k)
	}
}

// waitDelivered waits until want deliveries are recorded as delivered and none is pending.
func waitDelivered(t *testing.T, cl *testutil.Cluster, want int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var delivered, pending int
		if err := cl.DB.Admin.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE state = 'delivered'), count(*) FILTER (WHERE state = 'pending')
			FROM webhook_deliveries`).Scan(&delivered, &pending); err != nil {
			t.Logf("count deliveries: %v", err) // a pooled connection of before the restart
			continue
		}
		if delivered == want && pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries recorded as delivered, %d pending; want %d delivered", delivered, pending, want)
		}
	}
}
