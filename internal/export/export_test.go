package export_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/export"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// TestRegistryCoversEveryTable: every tenant-scoped table says how it is exported and
// erased.
func TestRegistryCoversEveryTable(t *testing.T) {
	t.Parallel()
	d := testutil.PackageDB(t)
	rows, err := d.Admin.Query(context.Background(), `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind = 'r'
		  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var missing []string
	n := 0
	for rows.Next() {
		var tbl string
		if err := rows.Scan(&tbl); err != nil {
			t.Fatal(err)
		}
		n++
		if _, ok := export.Registry[tbl]; !ok {
			missing = append(missing, tbl)
		}
	}
	if n == 0 {
		t.Fatal("no tenant-scoped tables found")
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("tenant-scoped tables missing from export.Registry: %v", missing)
	}
}

// TestExportHasEveryTableAndNobodyElse: the export has a section for every registered
// table, holds the user's data, and nothing of another user or tenant.
func TestExportHasEveryTableAndNobodyElse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	mk := func(slug string) tenant.Tenant {
		p := tenant.DefaultPolicy()
		p.Verification.Mode = tenant.VerificationOptional
		c, err := srv.App.Tenants.Create(ctx, tenant.CreateInput{Slug: testutil.UniqueSlug(slug), Name: "Export Co", Policy: &p})
		if err != nil {
			t.Fatal(err)
		}
		return c.Tenant
	}
	a, b := mk("exp-a"), mk("exp-b")
	login := func(ten tenant.Tenant, email string) string {
		if _, err := srv.App.Accounts.CreateVerifiedUser(ctx, ten, email, "purple monkey dishwasher", "Ann Export"); err != nil {
			t.Fatal(err)
		}
		r := srv.Do(t, testutil.Request{Method: "POST", Host: ten.Slug + ".localhost", Path: "/api/v1/login",
			Body: map[string]string{"email": email, "password": "purple monkey dishwasher"}})
		var l struct{ Session struct{ Token string } }
		r.JSON(t, &l)
		return l.Session.Token
	}
	ann := login(a, "ann@example.com")
	login(a, "bob@example.com")
	login(b, "ann@example.com") // the same address in another tenant

	r := srv.Do(t, testutil.Request{Host: a.Slug + ".localhost", Path: "/api/v1/account/export", Header: http.Header{"Authorization": {"Bearer " + ann}}})
	if r.StatusCode != 200 {
		t.Fatalf("export: %d %s", r.StatusCode, r.Body)
	}
	var doc struct{ Tables map[string]json.RawMessage }
	if err := json.Unmarshal(r.Body, &doc); err != nil {
		t.Fatal(err)
	}
	for tbl := range export.Registry {
		if _, ok := doc.Tables[tbl]; !ok {
			t.Errorf("export lacks %s", tbl)
		}
	}
	body := string(r.Body)
	if strings.Contains(body, "bob@example.com") || strings.Contains(body, b.ID.String()) {
		t.Fatal("the export holds another user's or tenant's data")
	}
	for _, want := range []string{"ann@example.com", "Ann Export", `"session.login"`, `"browser"`} {
		if !strings.Contains(body, want) {
			t.Errorf("export lacks %s", want)
		}
	}
	for _, secret := range []string{"token_hash", "argon2id", "secret_sealed", "code_hash", ann} {
		if strings.Contains(body, secret) {
			t.Errorf("export contains %q", secret)
		}
	}
}
