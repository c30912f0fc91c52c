package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse-id/gatehouse/internal/secretbox"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// localhostClient reaches every *.localhost host on 127.0.0.1, as a browser does.
func localhostClient() *http.Client {
	dialer := &net.Dialer{}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, _ := net.SplitHostPort(addr)
		if strings.HasSuffix(host, ".localhost") {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return dialer.DialContext(ctx, network, addr)
	}}}
}

// TestTenantsApplyApps: apps: in a tenant file are created with their declared client_id,
// a confidential app's secret comes from the variable client_secret_env names (and then
// works at the real token endpoint) or is generated and printed once; an unchanged file
// changes and audits nothing; a change is an update with its diff, audited with the file;
// a changed secret variable rotates the secret (the previous one keeps working for the
// overlap); bad declarations change nothing; apps not in the file stay unless
// prune_apps: true.
func TestTenantsApplyApps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	srv := testutil.NewServer(t, d)
	crmSecret := strings.Repeat("s3cr3t-", 6)
	env := map[string]string{"DATABASE_URL": d.AppURL, "GATEHOUSE_SECRET_KEY": srv.Config.SecretKey, "GATEHOUSE_PUBLIC_SCHEME": "http",
		"GATEHOUSE_BASE_DOMAIN": "localhost", "GATEHOUSE_PUBLIC_PORT": strconv.Itoa(srv.Port), "CRM_SECRET": crmSecret}
	dir := t.TempDir()
	slug := testutil.UniqueSlug("applyapps")
	path := filepath.Join(dir, slug+".yaml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte("slug: "+slug+"\nname: Apply Apps\n"+body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	apply := func(step string, args ...string) string {
		t.Helper()
		r := run(ctx, env, append([]string{"tenants", "apply", dir}, args...)...)
		if r.err != nil {
			t.Fatalf("%s: %v\n%s", step, r.err, r.stdout)
		}
		return r.stdout
	}
	type appRow struct {
		ClientID, Name, Type string
		Redirects            []string
		FirstParty           bool
		Grants               []string
		AccessTTL            int
		Updated              time.Time
	}
	apps := func() []appRow {
		t.Helper()
		rows, err := d.Admin.Query(ctx, `SELECT a.client_id, a.name, a.type, a.redirect_uris, a.first_party, a.grant_types,
			a.access_token_ttl_seconds, a.updated_at FROM apps a JOIN tenants t ON t.id = a.tenant_id WHERE t.slug = $1 ORDER BY 1`, slug)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []appRow
		for rows.Next() {
			var r appRow
			if err := rows.Scan(&r.ClientID, &r.Name, &r.Type, &r.Redirects, &r.FirstParty, &r.Grants, &r.AccessTTL, &r.Updated); err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		return out
	}
	audits := func() []string {
		t.Helper()
		rows, err := d.Admin.Query(ctx, `SELECT e.action || ' ' || e.subject_label || ' by ' || e.actor_label || ' file=' || coalesce(e.details->>'file', '')
			|| coalesce(' changes=' || (e.details->'changes')::text, '') || coalesce(' source=' || (e.details->>'source'), '')
			|| coalesce(' secret=' || (e.details->>'secret'), '')
			FROM audit_events e JOIN tenants t ON t.id = e.tenant_id WHERE t.slug = $1 AND e.action LIKE 'app.%' ORDER BY e.id`, slug)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		slices.Sort(out) // one transaction: one created_at; ids are random
		return out
	}
	hc := localhostClient()
	tokenURL := fmt.Sprintf("http://%s.localhost:%d/oauth2/token", slug, srv.Port)
	token := func(clientID, secret string) error {
		cc := clientcredentials.Config{ClientID: clientID, ClientSecret: secret, TokenURL: tokenURL}
		tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, hc))
		if err == nil && tok.AccessToken == "" {
			return fmt.Errorf("no access token")
		}
		return err
	}

	apps1 := `apps:
  - client_id: crm-backend
    name: CRM backend
    grant_types: [client_credentials]
    client_secret_env: CRM_SECRET
  - client_id: report-runner
    name: Reports
    grant_types: [client_credentials]
    access_token_ttl_seconds: 120
  - client_id: web-spa-client
    name: Web
    type: public
    redirect_uris: [https://web.example/callback]
    first_party: true
`
	write(apps1)
	out := apply("dry run", "--dry-run")
	for _, want := range []string{"create " + slug, "create app crm-backend (tenant " + slug + ")\n  client_secret: from CRM_SECRET",
		"create app report-runner (tenant " + slug + ")\n  client_secret: generated, shown once", "create app web-spa-client (tenant " + slug + ")\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "ghs_") || strings.Contains(out, crmSecret) {
		t.Fatalf("a dry run printed a secret:\n%s", out)
	}

	out = apply("apply")
	printed := regexp.MustCompile(`client secret of app report-runner \(tenant ` + slug + `\), shown once; store it in your app's secret store:\n  (ghs_\S+)\n`).FindStringSubmatch(out)
	if printed == nil || strings.Count(out, "ghs_") != 1 || strings.Contains(out, crmSecret) {
		t.Fatalf("apply must print the generated secret once and no other:\n%s", out)
	}
	got := apps()
	if len(got) != 3 || got[0].ClientID != "crm-backend" || got[0].Type != "confidential" || !slices.Equal(got[0].Grants, []string{"client_credentials"}) ||
		got[1].ClientID != "report-runner" || got[1].AccessTTL != 120 ||
		got[2].ClientID != "web-spa-client" || got[2].Type != "public" || !got[2].FirstParty || !slices.Equal(got[2].Redirects, []string{"https://web.example/callback"}) {
		t.Fatalf("apps after the apply: %+v", got)
	}
	file := " by tenants apply file=" + path
	created := []string{"app.created CRM backend" + file + " secret=env CRM_SECRET", "app.created Reports" + file + " secret=generated", "app.created Web" + file}
	if a := audits(); !slices.Equal(a, created) {
		t.Fatalf("audit after the apply:\n%s\nwant\n%s", strings.Join(a, "\n"), strings.Join(created, "\n"))
	}
	// The secrets work at the token endpoint; a wrong one does not.
	if err := token("crm-backend", crmSecret); err != nil {
		t.Fatalf("client_credentials with the secret from CRM_SECRET: %v", err)
	}
	if err := token("report-runner", printed[1]); err != nil {
		t.Fatalf("client_credentials with the generated secret: %v", err)
	}
	if err := token("crm-backend", crmSecret+"x"); err == nil {
		t.Fatal("a wrong secret got a token")
	}

	// Unchanged: nothing printed for apps, nothing written, nothing audited.
	if out = apply("re-apply"); strings.Contains(out, " app ") || strings.Contains(out, "ghs_") || !strings.Contains(out, "unchanged "+slug) {
		t.Fatalf("an unchanged apply printed:\n%s", out)
	}
	if again := apps(); !slices.EqualFunc(again, got, func(a, b appRow) bool { return a.Updated.Equal(b.Updated) }) {
		t.Fatal("an unchanged apply touched the apps")
	}
	if a := audits(); !slices.Equal(a, created) {
		t.Fatalf("an unchanged apply audited:\n%s", strings.Join(a, "\n"))
	}

	// A change, and a new secret in CRM_SECRET: both applied, with their diff.
	write(strings.Replace(strings.Replace(apps1, "https://web.example/callback", "https://web.example/cb2", 1), "    first_party: true\n", "", 1))
	newSecret := strings.Repeat("n3w-s3cr3t-", 4)
	env["CRM_SECRET"] = newSecret
	out = apply("change")
	for _, want := range []string{"update app web-spa-client (tenant " + slug + ")\n  redirect_uris: [\"https://web.example/callback\"] -> [\"https://web.example/cb2\"]\n  first_party: true -> false",
		"update app crm-backend (tenant " + slug + ")\n  client_secret: from CRM_SECRET (the previous secret works 24h0m0s more)"} {
		if !strings.Contains(out, want) {
			t.Fatalf("change output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "report-runner") || strings.Contains(out, newSecret) {
		t.Fatalf("change output:\n%s", out)
	}
	changed := append(slices.Clone(created),
		`app.secret_rotated CRM backend`+file+` source=env CRM_SECRET`,
		`app.updated Web`+file+` changes=["redirect_uris: [\"https://web.example/callback\"] -> [\"https://web.example/cb2\"]", "first_party: true -> false"]`)
	slices.Sort(changed)
	if a := audits(); !slices.Equal(a, changed) {
		t.Fatalf("audit after the change:\n%s\nwant\n%s", strings.Join(a, "\n"), strings.Join(changed, "\n"))
	}
	if err := token("crm-backend", newSecret); err != nil {
		t.Fatalf("the new secret: %v", err)
	}
	if err := token("crm-backend", crmSecret); err != nil {
		t.Fatalf("the previous secret within the overlap: %v", err)
	}
	if out = apply("re-apply after the change"); strings.Contains(out, " app ") {
		t.Fatalf("re-apply after the change printed:\n%s", out)
	}

	// Refused before anything is written: an unset or short secret variable, a bad
	// setting, a type change. The tenant's own change in the same file is not applied.
	for _, tc := range []struct {
		name, body, want string
		env              map[string]string
	}{
		{"unset secret variable", apps1, "CRM_SECRET is not set", map[string]string{"CRM_SECRET": ""}},
		{"short secret", apps1, "from 32 to 512 characters", map[string]string{"CRM_SECRET": "short"}},
		{"bad redirect", strings.Replace(apps1, "https://web.example/callback", "http://web.example/callback", 1), "apps web-spa-client: redirect_uris: use https", nil},
		{"type change", strings.Replace(apps1, "    type: public\n", "", 1), "apps web-spa-client: type: the type of an app cannot change", nil},
	} {
		if err := os.WriteFile(path, []byte("slug: "+slug+"\nname: Renamed\n"+tc.body), 0o600); err != nil {
			t.Fatal(err)
		}
		e := map[string]string{}
		for k, v := range env {
			e[k] = v
		}
		for k, v := range tc.env {
			e[k] = v
		}
		r := run(ctx, e, "tenants", "apply", dir)
		if r.err == nil || !strings.Contains(r.err.Error(), tc.want) || !strings.Contains(r.err.Error(), path) {
			t.Fatalf("%s: %v, want an error naming the file and %q", tc.name, r.err, tc.want)
		}
		var name string
		if err := d.Admin.QueryRow(ctx, `SELECT name FROM tenants WHERE slug = $1`, slug).Scan(&name); err != nil || name != "Apply Apps" {
			t.Fatalf("%s: the tenant is now named %q (%v): a refused file changed something", tc.name, name, err)
		}
		if a := audits(); !slices.Equal(a, changed) {
			t.Fatalf("%s: a refused file audited:\n%s", tc.name, strings.Join(a, "\n"))
		}
	}

	// An app only in the database stays, unless the file says prune_apps.
	only := "apps:\n  - client_id: crm-backend\n    name: CRM backend\n    grant_types: [client_credentials]\n    client_secret_env: CRM_SECRET\n"
	write(only)
	if out = apply("fewer apps"); strings.Contains(out, " app ") || len(apps()) != 3 {
		t.Fatalf("apps left out of the file were touched (%d apps):\n%s", len(apps()), out)
	}
	write("prune_apps: true\n" + only)
	if out = apply("prune dry run", "--dry-run"); !strings.Contains(out, "delete app report-runner (tenant "+slug+")") ||
		!strings.Contains(out, "delete app web-spa-client (tenant "+slug+")") || len(apps()) != 3 {
		t.Fatalf("prune dry run (%d apps):\n%s", len(apps()), out)
	}
	apply("prune")
	if got := apps(); len(got) != 1 || got[0].ClientID != "crm-backend" {
		t.Fatalf("after the prune: %+v", got)
	}
	pruned := append(slices.Clone(changed), "app.deleted Reports"+file, "app.deleted Web"+file)
	slices.Sort(pruned)
	if a := audits(); !slices.Equal(a, pruned) {
		t.Fatalf("audit after the prune:\n%s\nwant\n%s", strings.Join(a, "\n"), strings.Join(pruned, "\n"))
	}
	if err := token("report-runner", printed[1]); err == nil {
		t.Fatal("a pruned app still gets tokens")
	}
}

// TestTenantRotateKeys: `tenant rotate-keys` prints the new kid and when it signs, the
// JWKS publishes it at once, and the rotation is in the tenant's audit log.
func TestTenantRotateKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	srv := testutil.NewServer(t, d)
	env := map[string]string{"DATABASE_URL": d.AppURL, "GATEHOUSE_SECRET_KEY": srv.Config.SecretKey}
	ten := testutil.NewTenant(t, d, "rotkeys")
	r := run(ctx, env, "tenant", "rotate-keys", ten.Slug)
	first := regexp.MustCompile(`^tenant ` + ten.Slug + `: new signing key ([a-z2-7]{16}), published in the JWKS now\n  signs from (\S+) \(the tenant's first key: at once\)\n$`).FindStringSubmatch(r.stdout)
	if r.err != nil || first == nil {
		t.Fatalf("first rotation: %v %q", r.err, r.stdout)
	}
	before := time.Now()
	r = run(ctx, env, "tenant", "rotate-keys", ten.Slug, "--json")
	var rot struct {
		Kid           string    `json:"kid"`
		SignsFrom     time.Time `json:"signs_from"`
		PreviousUntil time.Time `json:"previous_published_until"`
	}
	if r.err != nil || json.Unmarshal([]byte(r.stdout), &rot) != nil || rot.Kid == first[1] ||
		rot.SignsFrom.Before(before.Add(2*time.Minute-time.Second)) || rot.SignsFrom.After(time.Now().Add(2*time.Minute)) ||
		!rot.PreviousUntil.Equal(rot.SignsFrom.Add(24*time.Hour+5*time.Minute)) {
		t.Fatalf("second rotation: %v %q", r.err, r.stdout)
	}
	resp, err := localhostClient().Get(fmt.Sprintf("http://%s.localhost:%d/oauth2/jwks", ten.Slug, srv.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || len(set.Keys) != 2 ||
		!slices.ContainsFunc(set.Keys, func(k struct {
			Kid string `json:"kid"`
		}) bool {
			return k.Kid == rot.Kid
		}) {
		t.Fatalf("jwks after the rotations: %+v %v", set, err)
	}
	var n int
	if err := d.Admin.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND action = 'oidc.keys_rotated'
		AND actor_label = 'operator' AND details->>'kid' IN ($2, $3)`, ten.ID, first[1], rot.Kid).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d audited rotations (%v), want 2", n, err)
	}
	if r := run(ctx, env, "tenant", "rotate-keys", "no-such-tenant"); r.err == nil {
		t.Fatal("rotate-keys of an unknown tenant succeeded")
	}
}

// TestExampleTenantFilesDryRun: the sample files in tenants/ pass a dry run, their apps'
// settings included (which only the OpenID Provider checks).
func TestExampleTenantFilesDryRun(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t) // the samples' slugs (acme, globex) are not created by other tests here
	env := map[string]string{"DATABASE_URL": d.AppURL, "GATEHOUSE_SECRET_KEY": secretbox.NewKey()}
	r := run(context.Background(), env, "tenants", "apply", "../../tenants", "--dry-run")
	if r.err != nil || !strings.Contains(r.stdout, "create app acme-reports (tenant acme)\n  client_secret: generated, shown once") {
		t.Fatalf("dry run of tenants/: %v\n%s", r.err, r.stdout)
	}
}
