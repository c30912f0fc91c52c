package scim_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestSuspensionAcrossNodes: a user's session is checked on node B in a tight loop (warm
// in B's session cache) while the directory suspends the user through node A; B refuses
// the session within 100 ms of A's answer.
func TestSuspensionAcrossNodes(t *testing.T) {
	db := testutil.PackageDB(t)
	nodeA := testutil.NewServer(t, db)
	nodeB := testutil.NewServer(t, db)
	d := newDir(t, nodeA, "scimnodes", nil)
	uid, session := d.Person(t, "leaver@example.com")
	r, _ := d.scim(http.MethodPost, "/Users", oktaUser("leaver@example.com", "Lea", "Ver"))
	d.want(r, 201, "")
	onB := d.On(nodeB)

	var refusedAt atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 { // session-check load on B
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp := onB.Do(t, http.MethodGet, "/api/v1/session", session, nil)
				if resp.StatusCode == http.StatusUnauthorized {
					refusedAt.CompareAndSwap(0, time.Now().UnixNano())
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond) // B's cache is warm
	if refusedAt.Load() != 0 {
		t.Fatal("session refused before the suspension")
	}
	r, _ = d.scim(http.MethodPatch, "/Users/"+uid.String(), map[string]any{"Operations": []any{map[string]any{"op": "Replace", "path": "active", "value": "False"}}})
	answered := time.Now()
	d.want(r, 200, "")
	deadline := answered.Add(2 * time.Second)
	for refusedAt.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	at := refusedAt.Load()
	if at == 0 {
		t.Fatal("node B still accepts the suspended user's session after 2 s")
	}
	lag := time.Duration(at - answered.UnixNano())
	t.Logf("node B refused the session %v after node A answered", lag)
	if lag > 100*time.Millisecond {
		t.Fatalf("node B refused the session %v after the suspension, want ≤ 100 ms", lag)
	}
}

// TestSuspensionEndsAppTokens: the OpenID Provider's refresh and access tokens issued under
// the user's session are revoked in the transaction that suspends the user (the session
// service's ender), so no app keeps access.
func TestSuspensionEndsAppTokens(t *testing.T) {
	db := testutil.PackageDB(t)
	srv := testutil.NewServer(t, db)
	d := newDir(t, srv, "scimtokens", nil)
	uid, _ := d.Person(t, "app.user@example.com")
	r, _ := d.scim(http.MethodPost, "/Users", oktaUser("app.user@example.com", "App", "User"))
	d.want(r, 201, "")
	ctx := context.Background()
	var appID uuid.UUID
	if err := db.Admin.QueryRow(ctx, `INSERT INTO apps (tenant_id, client_id, name, type) VALUES ($1, 'app_scimtokens01', 'Notes', 'public') RETURNING id`,
		d.Tenant.ID).Scan(&appID); err != nil {
		t.Fatal(err)
	}
	// Tokens bound to the user's live session, as the provider records them.
	if _, err := db.Admin.Exec(ctx, `INSERT INTO oidc_tokens (tenant_id, kind, app_id, user_id, session_id, token_hash, family_id, expires_at)
		SELECT s.tenant_id, k, $2, s.user_id, s.id, CASE k WHEN 'refresh' THEN sha256(gen_random_uuid()::text::bytea) END,
		       CASE k WHEN 'refresh' THEN gen_random_uuid() END, now() + interval '1 day'
		FROM sessions s, unnest(ARRAY['access', 'refresh']) k WHERE s.tenant_id = $1 AND s.user_id = $3 AND s.revoked_at IS NULL`,
		d.Tenant.ID, appID, uid); err != nil {
		t.Fatal(err)
	}
	live := func() int {
		var n int
		if err := db.Admin.QueryRow(ctx, `SELECT count(*) FROM oidc_tokens WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL`, d.Tenant.ID, uid).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := live(); n != 2 {
		t.Fatalf("%d live tokens before, want 2", n)
	}
	r, _ = d.scim(http.MethodPatch, "/Users/"+uid.String(), map[string]any{"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"active": false}}}})
	d.want(r, 200, "")
	if n := live(); n != 0 {
		t.Fatalf("%d app tokens still live after suspension", n)
	}
}
