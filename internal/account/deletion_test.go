package account_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/pquerna/otp/totp"

	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// rowsNaming counts, per table and uuid column, the rows that hold id.
func rowsNaming(t *testing.T, e *env, id uuid.UUID) map[string]int {
	t.Helper()
	ctx := context.Background()
	rows, err := e.d.Admin.Query(ctx, `SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = 'public' AND data_type = 'uuid' ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var a, b string
		err := r.Scan(&a, &b)
		return [2]string{a, b}, err
	})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, c := range cols {
		var n int
		q := fmt.Sprintf("SELECT count(*) FROM %s WHERE %s = $1", pgx.Identifier{c[0]}.Sanitize(), pgx.Identifier{c[1]}.Sanitize())
		if err := e.d.Admin.QueryRow(ctx, q, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			out[c[0]+"."+c[1]] = n
		}
	}
	return out
}

func userID(t *testing.T, e *env, email string) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	if err := e.d.Admin.QueryRow(context.Background(), "SELECT id FROM users WHERE tenant_id = $1 AND lower(email) = lower($2)", e.Tenant.ID, email).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestPurgeErasesEverything: a user with rows in every tenant-scoped table deletes their
// account (grace 0): afterwards no row anywhere names them, audit events remain
// pseudonymised, a receipt is kept, other users are untouched row for row, and the
// address can sign up again.
func TestPurgeErasesEverything(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(p *tenant.Policy) { p.Deletion.GraceDays = 0 })
	ctx := context.Background()
	e.SignupVerified(t, "gone@example.com")
	e.SignupVerified(t, "stays@example.com")
	other := newEnv(t, nil)
	other.SignupVerified(t, "gone@example.com")
	gone, stays, twin := userID(t, e, "gone@example.com"), userID(t, e, "stays@example.com"), userID(t, other, "gone@example.com")
	if err := e.Srv.App.Store().InTenant(ctx, e.Tenant.ID, func(q *sqlcgen.Queries) error { return authz.Grant(ctx, q, gone, authz.Admin) }); err != nil {
		t.Fatal(err)
	}

	tok := e.Login(t, "gone@example.com", goodPassword)
	e.Do(t, "POST", "/api/v1/password/forgot", "", map[string]string{"email": "gone@example.com"})
	e.Do(t, "POST", "/api/v1/admin/invitations", tok, map[string]string{"email": "friend@example.com", "role": "member"})
	r := e.Do(t, "POST", "/api/v1/mfa/totp", tok, nil)
	var en struct {
		Secret        string
		RecoveryCodes []string `json:"recovery_codes"`
	}
	r.JSON(t, &en)
	code, _ := totp.GenerateCode(en.Secret, time.Now())
	r = e.Do(t, "POST", "/api/v1/mfa/totp/confirm", tok, map[string]string{"code": code})
	e.expect(t, r, 200, "")
	// The recovery codes come with the confirmation.
	r.JSON(t, &en)
	r = e.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": "gone@example.com", "password": goodPassword}) // leaves a login challenge
	if !strings.Contains(string(r.Body), "mfa_required") {
		t.Fatalf("login: %s", r.Body)
	}
	e.Srv.WaitMail(t, "gone@example.com", "Two-factor authentication turned on")

	before := rowsNaming(t, e, gone)
	for _, tbl := range []string{"sessions.user_id", "email_tokens.user_id", "password_credentials.user_id", "known_devices.user_id",
		"totp_credentials.user_id", "recovery_codes.user_id", "login_challenges.user_id", "mail_outbox.user_id", "role_bindings.user_id",
		"audit_events.actor_id", "invitations.invited_by", "users.id"} {
		if before[tbl] == 0 {
			t.Fatalf("setup left no row in %s (have %v)", tbl, before)
		}
	}
	stayBefore, twinBefore := rowsNaming(t, e, stays), rowsNaming(t, other, twin)

	// With a second factor, deleting the account needs two factors within 5 minutes.
	e.expect(t, e.Do(t, "DELETE", "/api/v1/account", tok, nil), 403, "step_up_required")
	r = e.Do(t, "POST", "/api/v1/reauth", tok, map[string]string{"code": en.RecoveryCodes[0]})
	e.expect(t, r, 200, "")
	var re struct{ Session struct{ Token string } }
	r.JSON(t, &re)
	e.expect(t, e.Do(t, "DELETE", "/api/v1/account", re.Session.Token, nil), 202, "")
	if after := rowsNaming(t, e, gone); len(after) != 0 {
		t.Fatalf("rows still naming the purged user: %v", after)
	}
	var pseud, left int
	if err := e.d.Admin.QueryRow(ctx, `SELECT count(*) FILTER (WHERE actor_label LIKE 'deleted-user:%' OR subject_label LIKE 'deleted-user:%'),
		count(*) FILTER (WHERE actor_label = 'gone@example.com' OR subject_label = 'gone@example.com' OR details::text LIKE '%gone@example.com%')
		FROM audit_events WHERE tenant_id = $1`, e.Tenant.ID).Scan(&pseud, &left); err != nil {
		t.Fatal(err)
	}
	if pseud == 0 || left != 0 {
		t.Fatalf("audit: %d pseudonymised, %d still naming the address", pseud, left)
	}
	var receipts int
	if err := e.d.Admin.QueryRow(ctx, "SELECT count(*) FROM deletion_receipts WHERE tenant_id = $1 AND (counts->>'sessions')::int > 0", e.Tenant.ID).Scan(&receipts); err != nil || receipts != 1 {
		t.Fatalf("receipts: %d %v", receipts, err)
	}
	stayAfter, twinAfter := rowsNaming(t, e, stays), rowsNaming(t, other, twin)
	// The survivor may have gained audit rows of their own meanwhile only if they acted; they did not.
	if fmt.Sprint(stayBefore) != fmt.Sprint(stayAfter) || fmt.Sprint(twinBefore) != fmt.Sprint(twinAfter) {
		t.Fatalf("other users changed:\n%v\n%v\n%v\n%v", stayBefore, stayAfter, twinBefore, twinAfter)
	}
	e.Signup(t, "gone@example.com") // the address is free again
	if id := userID(t, e, "gone@example.com"); id == gone {
		t.Fatal("the old account came back")
	}
}

// TestDeletionGrace: during the grace period login is refused and the cancel link
// restores the account; after it, the purge runs exactly once even with racing workers.
func TestDeletionGrace(t *testing.T) {
	t.Parallel()
	clk := testutil.NewClock()
	e := newEnv(t, nil, testutil.WithClock(clk))
	e.SignupVerified(t, "leaving@example.com")
	tok := e.Login(t, "leaving@example.com", goodPassword)
	r := e.Do(t, "DELETE", "/api/v1/account", tok, nil)
	e.expect(t, r, 202, "")
	var d struct {
		Status     string
		PurgeAfter time.Time `json:"purge_after"`
	}
	r.JSON(t, &d)
	if d.Status != "pending_deletion" || d.PurgeAfter.Sub(clk.Now()) < 13*24*time.Hour {
		t.Fatalf("deletion: %+v", d)
	}
	e.expect(t, e.Do(t, "GET", "/api/v1/session", tok, nil), 401, "unauthenticated")
	e.expect(t, e.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": "leaving@example.com", "password": goodPassword}), 403, "account_pending_deletion")
	m := e.Srv.WaitMail(t, "leaving@example.com", "will be deleted")
	cancel := testutil.TokenFrom(t, m, "/account/deletion/cancel")
	e.expect(t, e.Do(t, "POST", "/api/v1/account/deletion/cancel", "", map[string]string{"token": cancel}), 200, "")
	e.expect(t, e.Do(t, "POST", "/api/v1/account/deletion/cancel", "", map[string]string{"token": cancel}), 409, "token_used")
	tok = e.Login(t, "leaving@example.com", goodPassword)

	e.expect(t, e.Do(t, "DELETE", "/api/v1/account", tok, nil), 202, "")
	ctx := context.Background()
	if n, err := e.Srv.App.Accounts.PurgeDue(ctx, e.Tenant); err != nil || n != 0 {
		t.Fatalf("purged during the grace period: %d %v", n, err)
	}
	clk.Advance(15 * 24 * time.Hour)
	var wg sync.WaitGroup
	counts := make([]int, 4)
	for i := range counts {
		wg.Go(func() {
			n, err := e.Srv.App.Accounts.PurgeDue(ctx, e.Tenant)
			if err != nil {
				t.Error(err)
			}
			counts[i] = n
		})
	}
	wg.Wait()
	sort.Ints(counts)
	if counts[0]+counts[1]+counts[2]+counts[3] != 1 {
		t.Fatalf("racing purges purged %v accounts, want exactly 1 in total", counts)
	}
	var receipts int
	if err := e.d.Admin.QueryRow(ctx, "SELECT count(*) FROM deletion_receipts WHERE tenant_id = $1", e.Tenant.ID).Scan(&receipts); err != nil || receipts != 1 {
		t.Fatalf("receipts: %d", receipts)
	}
	e.Signup(t, "leaving@example.com")
}

func TestAdminDeletesUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	e.SignupVerified(t, "boss@example.com")
	e.SignupVerified(t, "fired@example.com")
	boss := userID(t, e, "boss@example.com")
	if err := e.Srv.App.Store().InTenant(ctx, e.Tenant.ID, func(q *sqlcgen.Queries) error { return authz.Grant(ctx, q, boss, authz.Admin) }); err != nil {
		t.Fatal(err)
	}
	tok := e.Login(t, "boss@example.com", goodPassword)
	fired := userID(t, e, "fired@example.com")
	e.expect(t, e.Do(t, "DELETE", "/api/v1/admin/users/"+fired.String()+"?immediate=true", tok, nil), 202, "")
	if left := rowsNaming(t, e, fired); len(left) != 0 {
		t.Fatalf("rows left: %v", left)
	}
	e.expect(t, e.Do(t, "DELETE", "/api/v1/admin/users/"+fired.String(), tok, nil), 404, "not_found")
}

// TestTenantPurgeKeepsOthersServing: purging a tenant of 10,000 users in batches while
// another tenant keeps signing people in; the other tenant's login latency is reported.
func TestTenantPurgeKeepsOthersServing(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 10,000 users")
	}
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	big, err := e.Srv.App.Tenants.Create(ctx, tenant.CreateInput{Slug: testutil.UniqueSlug("big"), Name: "Big"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.Admin.Exec(ctx, `INSERT INTO users (tenant_id, email) SELECT $1, 'u' || g || '@big.example' FROM generate_series(1, 10000) g`, big.Tenant.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.Admin.Exec(ctx, `INSERT INTO sessions (tenant_id, user_id, token_hash, idle_timeout, expires_at)
		SELECT tenant_id, id, sha256(id::text::bytea), interval '1 hour', now() + interval '1 day' FROM users WHERE tenant_id = $1`, big.Tenant.ID); err != nil {
		t.Fatal(err)
	}
	e.SignupVerified(t, "steady@example.com")
	done := make(chan struct{})
	var lat []time.Duration
	go func() {
		defer close(done)
		start := time.Now()
		// Each login comes from its own client address: the per-IP attempt limit is not
		// what this test measures.
		for i := 1; time.Since(start) < 3*time.Second; i++ {
			t0 := time.Now()
			ip := fmt.Sprintf("10.9.%d.%d", i/250, i%250+1)
			r := e.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": "steady@example.com", "password": goodPassword}, "X-Forwarded-For", ip)
			if r.StatusCode != 200 {
				t.Errorf("login during the purge: %d %s", r.StatusCode, r.Body)
				return
			}
			lat = append(lat, time.Since(t0))
		}
	}()
	t0 := time.Now()
	if _, err := e.Srv.App.Tenants.Delete(ctx, big.Tenant.Slug, 0); err != nil {
		t.Fatal(err)
	}
	purge := time.Since(t0)
	<-done
	var n int
	if err := e.d.Admin.QueryRow(ctx, "SELECT (SELECT count(*) FROM users WHERE tenant_id = $1) + (SELECT count(*) FROM sessions WHERE tenant_id = $1)", big.Tenant.ID).Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows left after the tenant purge: %d %v", n, err)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) == 0 {
		t.Fatal("no logins measured")
	}
	t.Logf("purged 10,000 users + sessions in %v; other tenant's logins meanwhile: %d, p50 %v, p99 %v",
		purge, len(lat), lat[len(lat)/2], lat[len(lat)*99/100])
}
