package cli_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/sso/samltest"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestTenantsApplyDirectories: directories: in a tenant file are created by name, tied to a
// declared SSO connection by slug, with their role-mapping use and delete mode; a token
// comes from the variable token_env names or is generated and printed once (the file never
// holds one) and either works at /scim/v2; an unchanged file changes nothing; a change is
// an update, a new token_env value an added token (the old one keeps working); mistakes
// are refused.
func TestTenantsApplyDirectories(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	srv := testutil.NewServer(t, d)
	entraToken := "gh_scim_" + strings.Repeat("E", 43)
	env := map[string]string{"DATABASE_URL": d.AppURL, "GATEHOUSE_SECRET_KEY": srv.Config.SecretKey, "ENTRA_TOKEN": entraToken}
	dir := t.TempDir()
	slug := testutil.UniqueSlug("applydirs")
	idp, err := samltest.NewIdP("https://idp.example/dirs")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "okta.xml"), idp.Metadata("https://idp.example/sso", ""), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, slug+".yaml")
	write := func(directories string) {
		t.Helper()
		y := fmt.Sprintf("slug: %s\nname: Apply Directories\nsso_connections:\n  - slug: okta\n    name: Okta\n    metadata_file: okta.xml\n    role_mapping: {Admins: admin}\n%s", slug, directories)
		if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
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
	type dirRow struct {
		Name, Provider, DeleteMode string
		Conn                       string
		MapRoles                   bool
		Tokens                     int
	}
	rows := func() map[string]dirRow {
		t.Helper()
		out := map[string]dirRow{}
		rs, err := d.Admin.Query(ctx, `SELECT r.declared_name, r.name, r.provider, r.delete_mode, coalesce(c.slug, ''), r.map_roles,
			(SELECT count(*) FROM directory_tokens k WHERE k.tenant_id = r.tenant_id AND k.directory_id = r.id AND k.revoked_at IS NULL)
			FROM directories r JOIN tenants t ON t.id = r.tenant_id LEFT JOIN sso_connections c ON c.tenant_id = r.tenant_id AND c.id = r.sso_connection_id
			WHERE t.slug = $1`, slug)
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		for rs.Next() {
			var key string
			var r dirRow
			if err := rs.Scan(&key, &r.Name, &r.Provider, &r.DeleteMode, &r.Conn, &r.MapRoles, &r.Tokens); err != nil {
				t.Fatal(err)
			}
			out[key] = r
		}
		return out
	}
	directoryOf := func(tok string) string {
		t.Helper()
		ten, err := srv.App.Tenants.Get(ctx, slug)
		if err != nil {
			t.Fatal(err)
		}
		c, err := srv.App.SCIM.Authenticate(ctx, ten, tok, audit.Who{})
		if err != nil {
			return ""
		}
		return *c.Directory.DeclaredName
	}

	files := `directories:
  - name: okta-scim
    display_name: Okta provisioning
    provider: okta
    sso_connection: okta
    purge_on_delete: true
  - name: entra
    provider: entra
    sso_connection: okta
    role_mapping: false
    token_env: ENTRA_TOKEN
`
	write(files)
	if out := apply("dry run", "--dry-run"); !strings.Contains(out, "create directory okta-scim (tenant "+slug+")") || !strings.Contains(out, "create directory entra") {
		t.Fatalf("dry run: %s", out)
	}
	out := apply("first apply")
	m := regexp.MustCompile(`SCIM token of directory okta-scim \(tenant [^)]+\), shown once; paste it into the IdP with the base URL (\S+):\n  (gh_scim_\S+)`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "create directory entra") || strings.Contains(out, "SCIM token of directory entra") || strings.Contains(out, entraToken) ||
		!strings.HasSuffix(m[1], "/scim/v2") {
		t.Fatalf("first apply: %s", out)
	}
	want := map[string]dirRow{
		"okta-scim": {Name: "Okta provisioning", Provider: "okta", DeleteMode: "purge", Conn: "okta", MapRoles: true, Tokens: 1},
		"entra":     {Name: "entra", Provider: "entra", DeleteMode: "lifecycle", Conn: "okta", MapRoles: false, Tokens: 1},
	}
	if got := rows(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("directories %v, want %v", got, want)
	}
	if directoryOf(m[2]) != "okta-scim" || directoryOf(entraToken) != "entra" {
		t.Fatalf("tokens: generated → %q, token_env → %q", directoryOf(m[2]), directoryOf(entraToken))
	}
	if out := apply("re-apply"); strings.Count(out, "unchanged directory") != 2 || strings.Contains(out, "gh_scim_") {
		t.Fatalf("re-apply: %s", out)
	}

	// A change, and a new token in the environment (rotation): the old one keeps working.
	write(strings.Replace(files, "role_mapping: false", "role_mapping: true", 1))
	env["ENTRA_TOKEN"] = "gh_scim_" + strings.Repeat("F", 43)
	if out := apply("update"); !strings.Contains(out, "update directory entra") || !strings.Contains(out, "add token directory entra") ||
		!strings.Contains(out, "unchanged directory okta-scim") {
		t.Fatalf("update: %s", out)
	}
	want["entra"] = dirRow{Name: "entra", Provider: "entra", DeleteMode: "lifecycle", Conn: "okta", MapRoles: true, Tokens: 2}
	if got := rows(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after update %v, want %v", got, want)
	}
	if directoryOf(entraToken) != "entra" || directoryOf(env["ENTRA_TOKEN"]) != "entra" {
		t.Fatal("a token of entra does not work after the rotation")
	}

	// Mistakes are refused.
	for name, body := range map[string]string{
		"unknown connection":           "directories:\n  - name: x\n    sso_connection: nope\n",
		"unset token_env":              "directories:\n  - name: x\n    token_env: UNSET_TOKEN\n",
		"not a token":                  "directories:\n  - name: x\n    token_env: DATABASE_URL\n",
		"another's token":              "directories:\n  - name: x\n    token_env: ENTRA_TOKEN\n  - name: entra\n    provider: entra\n",
		"mapping without a connection": "directories:\n  - name: x\n    role_mapping: true\n",
		"bad name":                     "directories:\n  - name: Has Spaces\n",
	} {
		write(body)
		if name == "another's token" {
			write("directories:\n  - name: entra\n    provider: entra\n    sso_connection: okta\n    token_env: OTHER\n  - name: okta-scim\n    display_name: Okta provisioning\n    provider: okta\n    sso_connection: okta\n    purge_on_delete: true\n    token_env: ENTRA_TOKEN\n")
			env["OTHER"] = env["ENTRA_TOKEN"]
		}
		if r := run(ctx, env, "tenants", "apply", dir); r.err == nil {
			t.Errorf("%s: accepted\n%s", name, r.stdout)
		}
	}
	if got := rows(); len(got) != 2 || got["entra"].Tokens != 2 {
		t.Fatalf("a refused file changed directories: %v", got)
	}
}
