package tenant_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

func TestCreate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	svc := tenant.NewService(d.Store, time.Now)
	slug := testutil.UniqueSlug("create")

	c, err := svc.Create(ctx, tenant.CreateInput{Slug: " " + strings.ToUpper(slug) + " ", Name: " Acme ", AdminEmail: "IT@Acme.Example"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Tenant.Slug != slug || c.Tenant.Name != "Acme" || c.Tenant.Status != tenant.StatusActive {
		t.Fatalf("created %+v", c.Tenant)
	}
	var email string
	if err := d.Admin.QueryRow(ctx, "SELECT email FROM users WHERE tenant_id = $1 AND id = $2", c.Tenant.ID, c.AdminUserID).Scan(&email); err != nil {
		t.Fatalf("admin user row: %v", err)
	}
	if email != "IT@acme.example" {
		t.Fatalf("admin email stored as %q, want the domain lower-cased", email)
	}

	tests := []struct {
		name string
		in   tenant.CreateInput
		code string
	}{
		{"duplicate slug", tenant.CreateInput{Slug: slug, Name: "Again"}, "tenant_exists"},
		{"invalid slug", tenant.CreateInput{Slug: "no_way", Name: "X"}, "invalid_slug"},
		{"reserved slug", tenant.CreateInput{Slug: "admin", Name: "X"}, "invalid_slug"},
		{"empty name", tenant.CreateInput{Slug: testutil.UniqueSlug("n"), Name: "  "}, "invalid_name"},
		{"bad admin email", tenant.CreateInput{Slug: testutil.UniqueSlug("e"), Name: "X", AdminEmail: "not-an-email"}, "invalid_email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.Create(ctx, tt.in)
			if !apperr.Is(err, tt.code) {
				t.Fatalf("err = %v, want %s", err, tt.code)
			}
			if tt.code != "tenant_exists" {
				if _, err := svc.Get(ctx, strings.TrimSpace(tt.in.Slug)); !tenant.IsNotFound(err) {
					t.Fatalf("a refused create left a tenant behind: %v", err)
				}
			}
		})
	}
}

func TestStatusAndDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	svc := tenant.NewService(d.Store, time.Now)

	c, err := svc.Create(ctx, tenant.CreateInput{Slug: testutil.UniqueSlug("del"), Name: "Del", AdminEmail: "a@del.example"})
	if err != nil {
		t.Fatal(err)
	}
	slug := c.Tenant.Slug
	if ten, err := svc.SetStatus(ctx, slug, tenant.StatusSuspended); err != nil || ten.Status != tenant.StatusSuspended {
		t.Fatalf("suspend: %v %v", ten.Status, err)
	}
	if _, err := svc.SetStatus(ctx, slug, "paused"); !apperr.Is(err, "invalid_status") {
		t.Fatalf("bad status: %v", err)
	}
	if _, err := svc.SetStatus(ctx, "no-such-tenant", tenant.StatusActive); !tenant.IsNotFound(err) {
		t.Fatalf("unknown tenant: %v", err)
	}
	if _, err := svc.SetStatus(ctx, slug, tenant.StatusActive); err != nil {
		t.Fatal(err)
	}

	// Delete with a grace period: suspended at once, rows kept until the purge.
	ten, err := svc.Delete(ctx, slug, 720*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if ten.Status != tenant.StatusSuspended || ten.PurgeAfter == nil || time.Until(*ten.PurgeAfter) < 719*time.Hour {
		t.Fatalf("after delete: %+v", ten)
	}
	if _, err := svc.SetStatus(ctx, slug, tenant.StatusActive); !apperr.Is(err, "tenant_pending_purge") {
		t.Fatalf("re-activating a tenant pending purge: %v", err)
	}
	if n, err := svc.PurgeDue(ctx); err != nil {
		t.Fatal(err)
	} else if _, err := svc.Get(ctx, slug); err != nil {
		t.Fatalf("purged %d before the grace period ended: %v", n, err)
	}

	// A clock two hours in the past makes a one-hour grace already over.
	past := tenant.NewService(d.Store, func() time.Time { return time.Now().Add(-2 * time.Hour) })
	c2, err := svc.Create(ctx, tenant.CreateInput{Slug: testutil.UniqueSlug("purge"), Name: "Purge", AdminEmail: "a@purge.example"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := past.Delete(ctx, c2.Tenant.Slug, time.Hour); err != nil {
		t.Fatal(err)
	}
	if n, err := svc.PurgeDue(ctx); err != nil || n < 1 {
		t.Fatalf("PurgeDue = %d, %v", n, err)
	}
	assertGone(t, d, c2.Tenant.Slug, c2.Tenant.ID.String())

	// Grace 0 purges now, cascading through the tenant's rows.
	c3, err := svc.Create(ctx, tenant.CreateInput{Slug: testutil.UniqueSlug("now"), Name: "Now", AdminEmail: "a@now.example"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Delete(ctx, c3.Tenant.Slug, 0); err != nil {
		t.Fatal(err)
	}
	assertGone(t, d, c3.Tenant.Slug, c3.Tenant.ID.String())
	if _, err := svc.Delete(ctx, "no-such-tenant", 0); !tenant.IsNotFound(err) {
		t.Fatalf("delete unknown: %v", err)
	}
}

func assertGone(t *testing.T, d *testutil.DB, slug, id string) {
	t.Helper()
	var tenants, users int
	err := d.Admin.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM tenants WHERE slug = $1),
		(SELECT count(*) FROM users WHERE tenant_id = $2::uuid)`, slug, id).Scan(&tenants, &users)
	if err != nil {
		t.Fatal(err)
	}
	if tenants != 0 || users != 0 {
		t.Fatalf("tenant %s not purged: %d tenant rows, %d user rows", slug, tenants, users)
	}
}

// node is one gatehouse process's view: its own pool, listener and resolver.
type node struct {
	resolver *tenant.Resolver
	listener *store.Listener
}

func newNode(t testing.TB, d *testutil.DB, run bool) node {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{URL: d.AppURL, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	l := st.NewListener(slog.New(slog.DiscardHandler))
	r := tenant.NewResolver(st, time.Hour, time.Now, l)
	if run {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { l.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		deadline := time.Now().Add(5 * time.Second)
		for !l.Healthy() {
			if time.Now().After(deadline) {
				t.Fatal("listener did not connect")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return node{resolver: r, listener: l}
}

// TestResolverInvalidationAcrossNodes: node B caches a tenant for an hour; suspending it
// through node A's service must make B answer not found within 100 ms.
func TestResolverInvalidationAcrossNodes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	svc := tenant.NewService(d.Store, time.Now)
	ten := testutil.NewTenant(t, d, "inval")
	b := newNode(t, d, true)

	if _, err := b.resolver.Lookup(ctx, ten.Slug); err != nil {
		t.Fatal(err)
	}
	// Prove the cache is in use: a change that sends no notification stays invisible.
	if _, err := d.Admin.Exec(ctx, "UPDATE tenants SET name = 'Renamed quietly' WHERE id = $1", ten.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.resolver.Lookup(ctx, ten.Slug); got.Name == "Renamed quietly" {
		t.Fatal("cache not used: the lookup read the database")
	}

	start := time.Now()
	if _, err := svc.SetStatus(ctx, ten.Slug, tenant.StatusSuspended); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := b.resolver.Lookup(ctx, ten.Slug)
		if tenant.IsNotFound(err) {
			break
		}
		if time.Since(start) > 100*time.Millisecond {
			t.Fatalf("node B still resolves the suspended tenant after %v", time.Since(start))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestResolverBypassesCacheWithoutListener: while notifications cannot arrive the cache
// is not used, so a change is visible at once.
func TestResolverBypassesCacheWithoutListener(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	ten := testutil.NewTenant(t, d, "bypass")
	n := newNode(t, d, false) // listener never connected
	if _, err := n.resolver.Lookup(ctx, ten.Slug); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Admin.Exec(ctx, "UPDATE tenants SET status = 'suspended' WHERE id = $1", ten.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := n.resolver.Lookup(ctx, ten.Slug); !tenant.IsNotFound(err) {
		t.Fatalf("suspended tenant still resolved without a listener: %v", err)
	}
	if _, err := n.resolver.Lookup(ctx, "unknown-"+ten.Slug); !tenant.IsNotFound(err) {
		t.Fatalf("unknown tenant: %v", err)
	}
}

func writeFile(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestApply(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	svc := tenant.NewService(d.Store, time.Now)
	dir := t.TempDir()
	slug := testutil.UniqueSlug("decl")
	writeFile(t, dir, slug+".yaml", "slug: "+slug+"\nname: Declared\npolicy:\n  verification:\n    mode: grace\n    grace_hours: 48\n")

	files, err := tenant.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	changes, err := svc.Apply(ctx, files, true)
	if err != nil || len(changes) != 1 || changes[0].Action != "create" {
		t.Fatalf("dry run: %v %v", changes, err)
	}
	if _, err := svc.Get(ctx, slug); !tenant.IsNotFound(err) {
		t.Fatalf("dry run created the tenant: %v", err)
	}
	if changes, err = svc.Apply(ctx, files, false); err != nil || changes[0].Action != "create" {
		t.Fatalf("apply: %v %v", changes, err)
	}
	got, err := svc.Get(ctx, slug)
	if err != nil || got.Policy.Verification.Mode != "grace" || got.Policy.Verification.GraceHours != 48 || got.Policy.Sessions.MaxPerUser != 50 {
		t.Fatalf("applied tenant: %+v %v", got, err)
	}
	if changes, err = svc.Apply(ctx, files, false); err != nil || changes[0].Action != "unchanged" {
		t.Fatalf("second apply must change nothing: %v %v", changes, err)
	}

	writeFile(t, dir, slug+".yaml", "slug: "+slug+"\nname: Declared Inc\npolicy:\n  sessions:\n    max_per_user: 5\n")
	files, err = tenant.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	changes, err = svc.Apply(ctx, files, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`name: "Declared" -> "Declared Inc"`,
		`policy.sessions.max_per_user: 50 -> 5`,
		`policy.verification.grace_hours: 48 -> 24`,
		`policy.verification.mode: "grace" -> "required"`,
	}
	if changes[0].Action != "update" || strings.Join(changes[0].Fields, "\n") != strings.Join(want, "\n") {
		t.Fatalf("diff:\n%s\nwant:\n%s", strings.Join(changes[0].Fields, "\n"), strings.Join(want, "\n"))
	}
	if _, err := svc.Apply(ctx, files, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := svc.Get(ctx, slug); got.Name != "Declared Inc" || got.Policy.Sessions.MaxPerUser != 5 {
		t.Fatalf("update not applied: %+v", got)
	}
}

func TestLoadDirRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, body, want string
	}{
		{"unknown key", "a.yaml", "slug: a\nname: A\nsso_conections: []\n", "unknown field"},
		{"unknown policy key", "a.yaml", "slug: a\nname: A\npolicy:\n  sesions: {}\n", "unknown field"},
		{"slug mismatch", "a.yaml", "slug: b\nname: B\n", "must match the file name"},
		{"bad policy", "a.yaml", "slug: a\nname: A\npolicy:\n  verification:\n    mode: never\n", "verification.mode"},
		{"bad yaml", "a.yaml", "slug: [a\n", "invalid YAML"},
		{"not a mapping", "a.yaml", "- a\n", "YAML mapping"},
		{"bad status", "a.yaml", "slug: a\nname: A\nstatus: gone\n", "status"},
		{"wrong type", "a.yaml", "slug: a\nname: A\npolicy:\n  sessions:\n    max_per_user: many\n", "max_per_user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, tt.file, tt.body)
			_, err := tenant.LoadDir(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.file) {
				t.Fatalf("err = %v, want one naming %s and containing %q", err, tt.file, tt.want)
			}
		})
	}
	if _, err := tenant.LoadDir(t.TempDir()); err == nil {
		t.Fatal("an empty directory must be an error")
	}
}

// TestExampleTenantFiles keeps tenants/*.yaml valid.
func TestExampleTenantFiles(t *testing.T) {
	t.Parallel()
	files, err := tenant.LoadDir("../../tenants")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no example tenant files")
	}
}

func TestLoadDirNamesLines(t *testing.T) {
	t.Parallel()
	tests := []struct{ body, want string }{
		{"slug: a\nname: A\npolicy:\n  verification:\n    mode: never\n", "a.yaml:5: policy.verification.mode"},
		{"slug: a\nname: A\npolicy:\n  sessions:\n    idle_timeout_seconds: 60\n    max_per_user: lots\n", "a.yaml:6: policy.sessions.max_per_user: must be of type int"},
		{"slug: a\nname: A\npolicy:\n  step_up:\n    rules:\n      - action: email.change\n        max_age_seconds: 60\n        methods: [password]\n      - action: launch.rockets\n        max_age_seconds: 60\n        methods: [password]\n", "a.yaml:9: policy.step_up.rules[1].action"},
		{"slug: a\nname: A\n\nsso_conections: []\n", `a.yaml:4: unknown field "sso_conections"`},
		{"slug: a\nname: A\nroles:\n  king: [x@a.example]\n", "a.yaml:4: roles.king"},
		{"slug: a\nname: A\nroles:\n  admin: [x@a.example, nope]\n", "a.yaml:4: roles.admin[1]"},
		{"slug: a\nname: A\napps:\n  - client_id: Short\n    name: X\n", "a.yaml:4: apps[0].client_id"},
		{"slug: a\nname: A\napps:\n  - client_id: web-client\n    name: X\n  - client_id: web-client\n    name: Y\n", `a.yaml:6: apps[1].client_id: "web-client" is declared twice`},
		{"slug: a\nname: A\napps:\n  - client_id: web-client\n    name: X\n    type: public\n    client_secret_env: WEB_SECRET\n", "a.yaml:7: apps[0].client_secret_env: a public app has no secret"},
		{"slug: a\nname: A\napps:\n  - client_id: web-client\n    name: X\n    client_secret_env: web-secret\n", "a.yaml:6: apps[0].client_secret_env"},
		{"slug: a\nname: A\napps:\n  - client_id: web-client\n", "apps[0].name: required"},
		{"slug: a\nname: A\napps:\n  - client_id: web-client\n    name: X\n    secret: hunter2\n", `a.yaml:6: unknown field "secret"`},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		writeFile(t, dir, "a.yaml", tt.body)
		_, err := tenant.LoadDir(dir)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("err = %v, want it to contain %q", err, tt.want)
		}
	}
}

func TestApplyRoles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	svc := tenant.NewService(d.Store, time.Now)
	dir := t.TempDir()
	slug := testutil.UniqueSlug("roles")
	writeFile(t, dir, slug+".yaml", "slug: "+slug+"\nname: Roles Co\nroles:\n  owner: [Boss@Roles.Example]\n  admin: [ops@roles.example]\n")
	files, err := tenant.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	changes, err := svc.Apply(ctx, files, true)
	if err != nil || changes[0].Action != "create" || len(changes[0].Fields) != 2 || !strings.Contains(changes[0].Fields[0], "roles.owner: + Boss@roles.example") {
		t.Fatalf("dry run: %+v %v", changes, err)
	}
	if _, err := svc.Apply(ctx, files, false); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := d.Admin.QueryRow(ctx, `SELECT count(*) FROM role_bindings b JOIN users u ON u.tenant_id = b.tenant_id AND u.id = b.user_id
		JOIN tenants t ON t.id = b.tenant_id WHERE t.slug = $1 AND ((lower(u.email) = 'boss@roles.example' AND b.role = 'owner') OR (u.email = 'ops@roles.example' AND b.role = 'admin'))`, slug).Scan(&n); err != nil || n != 2 {
		t.Fatalf("bindings after apply: %d (%v)", n, err)
	}
	if changes, err := svc.Apply(ctx, files, false); err != nil || changes[0].Action != "unchanged" {
		t.Fatalf("re-apply: %+v %v", changes, err)
	}
}
