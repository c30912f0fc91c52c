package cli_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/cli"
	"github.com/gatehouse-id/gatehouse/internal/migrate"
	"github.com/gatehouse-id/gatehouse/internal/secretbox"
	"github.com/gatehouse-id/gatehouse/internal/sso/samltest"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

type result struct {
	err            error
	stdout, stderr string
}

// syncBuffer is a bytes.Buffer safe for a reader and a writer at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func run(ctx context.Context, env map[string]string, args ...string) result {
	return runTo(ctx, env, &syncBuffer{}, args...)
}

func runTo(ctx context.Context, env map[string]string, out *syncBuffer, args ...string) result {
	var errOut syncBuffer
	err := cli.Run(ctx, append([]string{"gatehouse"}, args...), cli.Env{
		Getenv: func(k string) string { return env[k] },
		Stdout: out, Stderr: &errOut,
	})
	return result{err: err, stdout: out.String(), stderr: errOut.String()}
}

func TestServeRefusesPrivilegedRoles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)

	if os.Getenv("TEST_DATABASE_URL") == "" { // the harness's admin URL is a superuser
		r := run(ctx, map[string]string{"DATABASE_URL": d.AdminURL}, "serve", "--addr", "127.0.0.1:0")
		if r.err == nil || !strings.Contains(r.err.Error(), "superuser") || !strings.Contains(r.err.Error(), `"postgres"`) {
			t.Fatalf("serve as superuser: %v", r.err)
		}
	}

	// A role with BYPASSRLS is refused too.
	var b [4]byte
	_, _ = rand.Read(b[:])
	role := "gh_bypass_" + hex.EncodeToString(b[:])
	if _, err := d.Admin.Exec(ctx, "CREATE ROLE "+role+" LOGIN BYPASSRLS"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+role) })
	u, _ := url.Parse(d.AdminURL)
	u.User = url.User(role)
	r := run(ctx, map[string]string{"DATABASE_URL": u.String()}, "serve", "--addr", "127.0.0.1:0")
	if r.err == nil || !strings.Contains(r.err.Error(), "BYPASSRLS") || !strings.Contains(r.err.Error(), role) {
		t.Fatalf("serve with BYPASSRLS: %v", r.err)
	}
}

func TestServeRejectsBadConfig(t *testing.T) {
	t.Parallel()
	r := run(context.Background(), map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1/x", "GATEHOUSE_PUBLIC_SCHEME": "ftp"}, "serve")
	if r.err == nil || !strings.HasPrefix(r.err.Error(), "GATEHOUSE_PUBLIC_SCHEME") {
		t.Fatalf("err = %v, want one line naming the variable", r.err)
	}
	r = run(context.Background(), map[string]string{}, "serve")
	if r.err == nil || !strings.HasPrefix(r.err.Error(), "DATABASE_URL") {
		t.Fatalf("err = %v", r.err)
	}
}

// TestDevSeedIsIdempotent runs `gatehouse dev` twice against one database (DATABASE_URL
// set, so no private cluster): the demo tenant and its admin exist exactly once.
func TestDevSeedIsIdempotent(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	env := map[string]string{"DATABASE_URL": d.AppURL, "GATEHOUSE_ADMIN_DATABASE_URL": d.AdminURL, "GATEHOUSE_LOG_LEVEL": "warn"}
	var demoApp string // the demo app's URL in the last run
	for i := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan result, 1)
		out := &syncBuffer{}
		go func() {
			done <- runTo(ctx, env, out, "dev", "--addr", "127.0.0.1:0", "--idp-addr", "127.0.0.1:0", "--oidc-idp-addr", "127.0.0.1:0", "--app-addr", "127.0.0.1:0", "--data-dir", t.TempDir())
		}()
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(out.String(), "Gatehouse dev is running") {
			select {
			case r := <-done:
				t.Fatalf("run %d: dev exited: %v\n%s", i, r.err, r.stderr)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %d: dev did not start", i)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if i == 0 {
			checkDevCLIEnvironment(t, out.String())
		}
		if m := regexp.MustCompile(`Demo app:\s+(http://127\.0\.0\.1:\d+)/`).FindStringSubmatch(out.String()); m != nil {
			demoApp = m[1]
		}
		cancel()
		if r := <-done; r.err != nil {
			t.Fatalf("run %d: %v\n%s", i, r.err, r.stderr)
		}
	}
	var tenants, users int
	if err := d.Admin.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM tenants WHERE slug NOT LIKE 'devcli%'),
		(SELECT count(*) FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE t.slug = 'acme')`).Scan(&tenants, &users); err != nil {
		t.Fatal(err)
	}
	if tenants != 1 || users != 2 {
		t.Fatalf("after two dev runs: %d tenants, %d acme users; want 1 and 2 (admin and demo user)", tenants, users)
	}
	var conns, oidcConns, verified int
	if err := d.Admin.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM sso_connections WHERE protocol = 'saml'),
		(SELECT count(*) FROM sso_connections WHERE protocol = 'oidc'),
		(SELECT count(*) FROM sso_domains WHERE domain = 'acme.test' AND verified_at IS NOT NULL)`).Scan(&conns, &oidcConns, &verified); err != nil {
		t.Fatal(err)
	}
	if conns != 1 || oidcConns != 1 || verified != 1 {
		t.Fatalf("after two dev runs: %d SAML and %d OIDC connections, %d verified acme.test; want 1, 1 and 1", conns, oidcConns, verified)
	}
	// The demo app is registered once, as a first-party public client, with the URIs of
	// the last run's address.
	var apps int
	var redirects []string
	if err := d.Admin.QueryRow(context.Background(), `SELECT count(*), max(redirect_uris::text)::text[] FROM apps
		WHERE name = 'Demo app (gatehouse dev)' AND type = 'public' AND first_party AND secret_hash IS NULL
		AND backchannel_logout_uri LIKE 'http://127.0.0.1:%/backchannel-logout'`).Scan(&apps, &redirects); err != nil {
		t.Fatal(err)
	}
	if apps != 1 || len(redirects) != 1 || demoApp == "" || redirects[0] != demoApp+"/callback" {
		t.Fatalf("after two dev runs: %d demo apps with redirect URIs %v; want 1 with %s/callback", apps, redirects, demoApp)
	}
}

// checkDevCLIEnvironment takes the environment `dev` prints for the CLI and runs
// `tenant create --admin-email` with it: the setup link it prints must point at the dev
// server's scheme, host and port (issue 14 finding 10, issue 16 item 3).
func checkDevCLIEnvironment(t *testing.T, out string) {
	t.Helper()
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "export DATABASE_URL=") {
			line = strings.TrimPrefix(strings.TrimSpace(l), "export ")
		}
	}
	if line == "" {
		t.Fatalf("dev printed no CLI environment:\n%s", out)
	}
	env := map[string]string{}
	for _, kv := range strings.Fields(line) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = strings.Trim(v, "'")
	}
	if env["GATEHOUSE_PUBLIC_SCHEME"] != "http" || env["GATEHOUSE_PUBLIC_PORT"] == "" || env["GATEHOUSE_PUBLIC_PORT"] == "0" {
		t.Fatalf("CLI environment %v", env)
	}
	slug := testutil.UniqueSlug("devcli")
	r := run(context.Background(), env, "tenant", "create", slug, "--name", "Dev CLI", "--admin-email", "owner@devcli.example")
	if r.err != nil {
		t.Fatalf("tenant create with dev's environment: %v %s", r.err, r.stderr)
	}
	want := "http://" + slug + "." + env["GATEHOUSE_BASE_DOMAIN"] + ":" + env["GATEHOUSE_PUBLIC_PORT"] + "/password/reset?"
	if !strings.Contains(r.stdout, want) {
		t.Fatalf("setup link is not %s…:\n%s", want, r.stdout)
	}
}

func TestTenantCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	env := map[string]string{"DATABASE_URL": d.AppURL}
	slug := testutil.UniqueSlug("cli")

	r := run(ctx, env, "tenant", "create", slug, "--name", "CLI Co", "--admin-email", "it@cli.example")
	if r.err != nil || !strings.Contains(r.stdout, "created tenant "+slug) || !strings.Contains(r.stdout, "it@cli.example") {
		t.Fatalf("create: %v %q", r.err, r.stdout)
	}
	if r = run(ctx, env, "tenant", "create", slug, "--name", "Again"); r.err == nil || !strings.Contains(r.err.Error(), "tenant_exists") {
		t.Fatalf("duplicate create: %v", r.err)
	}
	if r = run(ctx, env, "tenant", "create", slug+"-x"); r.err == nil || !cli.IsUsage(r.err) {
		t.Fatalf("create without --name: %v", r.err)
	}
	if r = run(ctx, env, "tenant", "list"); r.err != nil || !strings.Contains(r.stdout, slug) || !strings.Contains(r.stdout, "CLI Co") {
		t.Fatalf("list: %v %q", r.err, r.stdout)
	}
	if r = run(ctx, env, "tenant", "show", slug); r.err != nil || !strings.Contains(r.stdout, `"users": 1`) || !strings.Contains(r.stdout, `"verification"`) {
		t.Fatalf("show: %v %q", r.err, r.stdout)
	}
	if r = run(ctx, env, "tenant", "suspend", slug); r.err != nil || !strings.Contains(r.stdout, "suspended") {
		t.Fatalf("suspend: %v %q", r.err, r.stdout)
	}
	if r = run(ctx, env, "tenant", "activate", slug); r.err != nil || !strings.Contains(r.stdout, "active") {
		t.Fatalf("activate: %v %q", r.err, r.stdout)
	}
	if r = run(ctx, env, "tenant", "delete", slug, "--grace", "48h"); r.err != nil || !strings.Contains(r.stdout, "purged after") {
		t.Fatalf("delete with grace: %v %q", r.err, r.stdout)
	}
	if r = run(ctx, env, "tenant", "delete", slug, "--grace", "0"); r.err != nil || !strings.Contains(r.stdout, "purged") {
		t.Fatalf("delete now: %v %q", r.err, r.stdout)
	}
	if r = run(ctx, env, "tenant", "show", slug); r.err == nil || !strings.Contains(r.err.Error(), "tenant_not_found") {
		t.Fatalf("show after delete: %v", r.err)
	}
}

func TestTenantsApplyCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	env := map[string]string{"DATABASE_URL": d.AppURL}
	dir := t.TempDir()
	slug := testutil.UniqueSlug("apply")
	if err := os.WriteFile(filepath.Join(dir, slug+".yaml"), []byte("slug: "+slug+"\nname: Applied\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(ctx, env, "tenants", "apply", dir, "--dry-run")
	if r.err != nil || !strings.Contains(r.stdout, "create "+slug) || !strings.Contains(r.stdout, "dry run") {
		t.Fatalf("dry run: %v %q", r.err, r.stdout)
	}
	if r = run(ctx, env, "tenant", "show", slug); r.err == nil {
		t.Fatal("dry run created the tenant")
	}
	if r = run(ctx, env, "tenants", "apply", dir); r.err != nil || !strings.Contains(r.stdout, "create "+slug) {
		t.Fatalf("apply: %v %q", r.err, r.stdout)
	}
	if r = run(ctx, env, "tenants", "apply", dir); r.err != nil || !strings.Contains(r.stdout, "unchanged "+slug) {
		t.Fatalf("re-apply: %v %q", r.err, r.stdout)
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{}, {"frobnicate"}, {"migrate"}, {"migrate", "sideways"}, {"tenant"}, {"tenants", "apply"}} {
		r := run(context.Background(), map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1:1/x"}, args...)
		if !cli.IsUsage(r.err) {
			t.Errorf("%v: err = %v, want a usage error", args, r.err)
		}
	}
}

func TestMigrateCommand(t *testing.T) {
	t.Parallel()
	d := testutil.EmptyDB(t)
	env := map[string]string{"GATEHOUSE_ADMIN_DATABASE_URL": d.AdminURL}
	r := run(context.Background(), env, "migrate", "up")
	if want := fmt.Sprintf("schema version %d", migrate.Latest()); r.err != nil || !strings.Contains(r.stdout, want) {
		t.Fatalf("up: %v %q", r.err, r.stdout)
	}
	r = run(context.Background(), env, "migrate", "down", "--all")
	if r.err != nil || !strings.Contains(r.stdout, "schema version 0") {
		t.Fatalf("down: %v %q", r.err, r.stdout)
	}
	r = run(context.Background(), env, "migrate", "version")
	if r.err != nil || !strings.Contains(r.stdout, "schema version 0") {
		t.Fatalf("version: %v %q", r.err, r.stdout)
	}
}

// TestTenantsApplySSO: connections, domains and mappings declared in a tenant file (IdP
// metadata from a file next to it) are created, left alone when unchanged, and updated.
func TestTenantsApplySSO(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	env := map[string]string{"DATABASE_URL": d.AppURL, "GATEHOUSE_SECRET_KEY": secretbox.NewKey()}
	dir := t.TempDir()
	slug := testutil.UniqueSlug("applysso")
	idp, err := samltest.NewIdP("https://idp.example/declared")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "okta.xml"), idp.Metadata("https://idp.example/sso", ""), 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(enforce bool) {
		y := fmt.Sprintf(`slug: %s
name: Declared
sso_connections:
  - slug: okta
    name: Okta
    provider: okta
    metadata_file: okta.xml
    domains: [declared.example]
    enforce: %v
    attribute_mapping: {groups: memberOf}
    role_mapping: {Admins: admin}
`, slug, enforce)
		if err := os.WriteFile(filepath.Join(dir, slug+".yaml"), []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(false)
	if r := run(ctx, env, "tenants", "apply", dir, "--dry-run"); r.err != nil || !strings.Contains(r.stdout, "create sso connection okta") {
		t.Fatalf("dry run: %v %q", r.err, r.stdout)
	}
	if r := run(ctx, env, "tenants", "apply", dir); r.err != nil || !strings.Contains(r.stdout, "create sso connection okta") {
		t.Fatalf("apply: %v %q", r.err, r.stdout)
	}
	if r := run(ctx, env, "tenants", "apply", dir); r.err != nil || strings.Contains(r.stdout, "sso connection") {
		t.Fatalf("re-apply should change nothing: %v %q", r.err, r.stdout)
	}
	write(true)
	if r := run(ctx, env, "tenants", "apply", dir); r.err != nil || !strings.Contains(r.stdout, "update sso connection okta: enforce") {
		t.Fatalf("update: %v %q", r.err, r.stdout)
	}
	var enforce bool
	var domain string
	if err := d.Admin.QueryRow(ctx, `SELECT c.enforce, d.domain FROM sso_connections c JOIN tenants t ON t.id = c.tenant_id
		JOIN sso_domains d ON d.connection_id = c.id WHERE t.slug = $1 AND c.slug = 'okta'`, slug).Scan(&enforce, &domain); err != nil {
		t.Fatal(err)
	}
	if !enforce || domain != "declared.example" {
		t.Fatalf("stored: enforce %v, domain %q", enforce, domain)
	}
}

func TestHealthcheck(t *testing.T) {
	t.Parallel()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer ok.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	defer down.Close()
	if r := run(context.Background(), nil, "healthcheck", ok.URL+"/readyz"); r.err != nil {
		t.Fatalf("healthy: %v", r.err)
	}
	if r := run(context.Background(), nil, "healthcheck", down.URL+"/readyz"); r.err == nil || !strings.Contains(r.err.Error(), "503") {
		t.Fatalf("unhealthy: %v", r.err)
	}
}
