package admin_test

import (
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

func newService(t *testing.T, d *testutil.DB) *admin.Service {
	t.Helper()
	listener := d.Store.NewListener(nil)
	svc, err := admin.NewService(d.Store, authz.NewService(d.Store, listener))
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// users inserts n users created one second apart (pairs share a timestamp, so the keyset
// must break ties by id) and returns their ids newest first.
func users(t *testing.T, d *testutil.DB, ten tenant.Tenant, n int, role string) {
	t.Helper()
	_, err := d.Admin.Exec(context.Background(), `
		WITH u AS (
			INSERT INTO users (tenant_id, email, created_at)
			SELECT $1, 'user' || g || '@dir.example', timestamptz '2026-01-01' + ((g / 2) * interval '1 second')
			FROM generate_series(1, $2) g
			RETURNING tenant_id, id)
		INSERT INTO role_bindings (tenant_id, user_id, role) SELECT tenant_id, id, $3 FROM u WHERE $3 <> ''`, ten.ID, n, role)
	if err != nil {
		t.Fatal(err)
	}
}

// TestDirectoryPagesEveryUserOnce walks the directory page by page: every user exactly
// once, newest first, ties on created_at broken by id.
func TestDirectoryPagesEveryUserOnce(t *testing.T) {
	d := testutil.PackageDB(t)
	ten := testutil.NewTenant(t, d, "dir")
	users(t, d, ten, 251, "")
	svc := newService(t, d)
	seen := map[uuid.UUID]bool{}
	var last admin.User
	cursor := ""
	pages := 0
	for {
		p, err := svc.ListUsers(context.Background(), ten, admin.Filter{Cursor: cursor, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, u := range p.Users {
			if seen[u.ID] {
				t.Fatalf("user %s listed twice", u.Email)
			}
			seen[u.ID] = true
			if last.ID != uuid.Nil && (u.CreatedAt.After(last.CreatedAt) || u.CreatedAt.Equal(last.CreatedAt) && u.ID.String() > last.ID.String()) {
				t.Fatalf("out of order: %s (%s) after %s (%s)", u.Email, u.CreatedAt, last.Email, last.CreatedAt)
			}
			last = u
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	if len(seen) != 251 || pages != 6 {
		t.Fatalf("%d users over %d pages, want 251 over 6", len(seen), pages)
	}
	if _, err := svc.ListUsers(context.Background(), ten, admin.Filter{Cursor: "bm90IGEgY3Vyc29y"}); err == nil {
		t.Fatal("a forged cursor was accepted")
	}
	for _, f := range []admin.Filter{{Limit: 201}, {Status: "sleeping"}, {Query: strings.Repeat("a", 255)}} {
		if _, err := svc.ListUsers(context.Background(), ten, f); err == nil {
			t.Errorf("filter %+v accepted", f)
		}
	}
}

// TestRolesPageHasNoCap: the roles page lists every member (it used to load 1000 users).
func TestRolesPageHasNoCap(t *testing.T) {
	d := testutil.PackageDB(t)
	ten := testutil.NewTenant(t, d, "roles")
	users(t, d, ten, 1203, authz.Member)
	roles, err := newService(t, d).Roles(context.Background(), ten)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		if r.Name == authz.Member && len(r.Members) != 1203 {
			t.Fatalf("member role lists %d members, want 1203", len(r.Members))
		}
	}
}

// TestSetRolesAuditsInTheSameTransaction: a role change and its audit event commit
// together, and a refused change leaves neither.
func TestSetRolesAuditsInTheSameTransaction(t *testing.T) {
	d := testutil.PackageDB(t)
	ten := testutil.NewTenant(t, d, "setroles")
	ctx := context.Background()
	var ownerID, memberID uuid.UUID
	if err := d.Admin.QueryRow(ctx, `INSERT INTO users (tenant_id, email) VALUES ($1, 'owner@r.example') RETURNING id`, ten.ID).Scan(&ownerID); err != nil {
		t.Fatal(err)
	}
	if err := d.Admin.QueryRow(ctx, `INSERT INTO users (tenant_id, email) VALUES ($1, 'member@r.example') RETURNING id`, ten.ID).Scan(&memberID); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Admin.Exec(ctx, `INSERT INTO role_bindings (tenant_id, user_id, role) VALUES ($1, $2, 'owner')`, ten.ID, ownerID); err != nil {
		t.Fatal(err)
	}
	svc := newService(t, d)
	by := audit.Who{ActorID: ownerID, ActorLabel: "owner@r.example"}
	count := func() (events int) {
		t.Helper()
		if err := d.Admin.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND action = 'role.assigned'`, ten.ID).Scan(&events); err != nil {
			t.Fatal(err)
		}
		return events
	}
	if err := svc.SetRoles(ctx, ten, by, memberID, []string{authz.Admin}); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d role.assigned events after one change", n)
	}
	if err := svc.SetRoles(ctx, ten, by, ownerID, []string{authz.Member}); err == nil {
		t.Fatal("the last owner stepped down")
	}
	if err := svc.SetRoles(ctx, ten, by, memberID, nil); err == nil {
		t.Fatal("nil roles accepted")
	}
	if err := svc.SetRoles(ctx, ten, audit.Who{ActorID: memberID}, memberID, []string{authz.Owner}); err == nil {
		t.Fatal("an admin granted themselves owner")
	}
	if n := count(); n != 1 {
		t.Fatalf("%d role.assigned events after refused changes, want 1", n)
	}
	if _, err := svc.User(ctx, ten, uuid.New()); err == nil {
		t.Fatal("an unknown user was found")
	}
}

// TestDirectoryUsesItsIndex: the directory's query, as the application role under forced
// row-level security with the generic plan a prepared statement ends up with, reads
// users_directory_idx rather than sorting the tenant's users.
func TestDirectoryUsesItsIndex(t *testing.T) {
	d := testutil.PackageDB(t)
	ten := testutil.NewTenant(t, d, "dirplan")
	b, err := os.ReadFile("../../queries/admin.sql")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(b), "-- name: ListUsers :many")
	sql, _, _ := strings.Cut(rest, "-- name: ")
	params := map[string]string{}
	sql = regexp.MustCompile(`sqlc\.narg\((\w+)\)|@\w+`).ReplaceAllStringFunc(sql, func(p string) string {
		if _, ok := params[p]; !ok {
			params[p] = "$" + strconv.Itoa(len(params)+1)
		}
		return params[p]
	})
	ctx := context.Background()
	var plan string
	tx, err := d.Store.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	for _, s := range []string{
		"SELECT set_config('gatehouse.tenant_id', '" + ten.ID.String() + "', true)",
		"SET LOCAL plan_cache_mode = force_generic_plan",
		"PREPARE dir AS " + strings.TrimSuffix(strings.TrimSpace(sql), ";"),
	} {
		if _, err := tx.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	args := make([]string, len(params))
	for i := range args {
		args[i] = "NULL"
	}
	args[len(args)-1] = "51"
	rows, err := tx.Query(ctx, "EXPLAIN EXECUTE dir("+strings.Join(args, ", ")+")")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var line string
		_ = rows.Scan(&line)
		plan += line + "\n"
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "users_directory_idx") {
		t.Fatalf("the directory query does not use users_directory_idx:\n%s", plan)
	}
}
