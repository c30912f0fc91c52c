package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// auditRow is one audit event as TestTenantsApplyAuditAndSetupMail compares it.
type auditRow struct {
	Action, Actor, Subject, File string
	Changes                      []string `json:",omitempty"`
	Extra                        string   // granted role and new_account for role.assigned
}

func (r auditRow) String() string {
	b, _ := json.Marshal(r)
	return string(b)
}

// TestTenantsApplyAuditAndSetupMail: every change `tenants apply` makes is in the tenant's
// audit log under the actor "tenants apply" with the file, an unchanged file writes
// nothing, and a new owner gets the setup mail and the link on the terminal (issue 16
// item 6).
func TestTenantsApplyAuditAndSetupMail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.FreshDB(t) // the server's worker delivers the CLI's mail
	srv := testutil.NewServer(t, d)
	env := map[string]string{"DATABASE_URL": d.AppURL, "GATEHOUSE_PUBLIC_SCHEME": "http",
		"GATEHOUSE_BASE_DOMAIN": "localhost", "GATEHOUSE_PUBLIC_PORT": strconv.Itoa(srv.Port)}
	dir := t.TempDir()
	slug := testutil.UniqueSlug("applyaudit")
	path := filepath.Join(dir, slug+".yaml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte("slug: "+slug+"\n"+body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rows := func() []string {
		t.Helper()
		rs, err := d.Admin.Query(ctx, `SELECT e.action, e.actor_label, e.subject_label, coalesce(e.details->>'file', ''),
			coalesce(e.details->'changes', '[]'), coalesce(e.details->>'granted', '') || coalesce(' new_account=' || (e.details->>'new_account'), '')
			FROM audit_events e JOIN tenants t ON t.id = e.tenant_id WHERE t.slug = $1 ORDER BY 1, 3, 6`, slug)
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		var out []string
		for rs.Next() {
			var r auditRow
			var changes []byte
			if err := rs.Scan(&r.Action, &r.Actor, &r.Subject, &r.File, &changes, &r.Extra); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(changes, &r.Changes); err != nil {
				t.Fatal(err)
			}
			out = append(out, r.String())
		}
		if err := rs.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	check := func(step string, want ...auditRow) {
		t.Helper()
		var ws []string
		for _, w := range want {
			ws = append(ws, w.String())
		}
		if got := rows(); strings.Join(got, "\n") != strings.Join(ws, "\n") {
			t.Fatalf("%s: audit rows\n%s\nwant\n%s", step, strings.Join(got, "\n"), strings.Join(ws, "\n"))
		}
	}

	owner := "boss@" + slug + ".example"
	write("name: Apply Audit\nroles:\n  owner: [" + owner + "]\n")
	if r := run(ctx, env, "tenants", "apply", dir, "--dry-run"); r.err != nil || strings.Contains(r.stdout, "setup link") {
		t.Fatalf("dry run: %v %q", r.err, r.stdout)
	}
	r := run(ctx, env, "tenants", "apply", dir)
	if r.err != nil {
		t.Fatalf("apply: %v %s", r.err, r.stderr)
	}
	printed := regexp.MustCompile(`owner ` + regexp.QuoteMeta(owner) + ` \([0-9a-f-]{36}\) of tenant ` + slug +
		`\nsetup link \(shown once, also mailed, valid 7 days\):\n  (http://` + slug + `\.localhost:` + strconv.Itoa(srv.Port) + `/password/reset\?token=\S+)\n`).FindStringSubmatch(r.stdout)
	if printed == nil {
		t.Fatalf("apply did not print the owner's setup link like tenant create:\n%s", r.stdout)
	}
	m := srv.WaitMail(t, owner, "Set up your Apply Audit owner account")
	if tok := testutil.TokenFrom(t, m, "/password/reset"); !strings.Contains(printed[1], "token="+tok) {
		t.Fatalf("mailed token %q is not the printed link %s", tok, printed[1])
	}
	created := []auditRow{
		{Action: "role.assigned", Actor: "tenants apply", Subject: owner, File: path, Extra: "owner new_account=true"},
		{Action: "tenant.created", Actor: "tenants apply", Subject: slug, File: path},
	}
	check("after create", created...)

	if r = run(ctx, env, "tenants", "apply", dir); r.err != nil || !strings.Contains(r.stdout, "unchanged "+slug) || strings.Contains(r.stdout, "setup link") {
		t.Fatalf("re-apply: %v %q", r.err, r.stdout)
	}
	check("after an unchanged apply", created...)

	ops := "ops@" + slug + ".example"
	write(`name: Apply Audit Inc
roles:
  owner: [` + owner + `]
  admin: [` + ops + `, ` + owner + `]
policy:
  branding:
    primary_color: "#aa3300"
  step_up:
    rules:
      - action: email.change
        max_age_seconds: 120
        methods: [password]
`)
	if r = run(ctx, env, "tenants", "apply", dir); r.err != nil || !strings.Contains(r.stdout, "update "+slug) || strings.Contains(r.stdout, "setup link") {
		t.Fatalf("update: %v %q", r.err, r.stdout)
	}
	updated := []auditRow{
		{Action: "role.assigned", Actor: "tenants apply", Subject: owner, File: path, Extra: "admin new_account=false"},
		created[0],
		{Action: "role.assigned", Actor: "tenants apply", Subject: ops, File: path, Extra: "admin new_account=true"},
		{Action: "tenant.branding_updated", Actor: "tenants apply", Subject: slug, File: path,
			Changes: []string{`policy.branding.primary_color: "" -> "#aa3300"`}},
		created[1],
		{Action: "tenant.policy_updated", Actor: "tenants apply", Subject: slug, File: path,
			Changes: []string{`policy.step_up.rules: [] -> [{"action":"email.change","max_age_seconds":120,"methods":["password"]}]`}},
		{Action: "tenant.updated", Actor: "tenants apply", Subject: slug, File: path,
			Changes: []string{`name: "Apply Audit" -> "Apply Audit Inc"`}},
	}
	check("after the update", updated...)
	if r = run(ctx, env, "tenants", "apply", dir); r.err != nil || !strings.Contains(r.stdout, "unchanged "+slug) {
		t.Fatalf("re-apply: %v %q", r.err, r.stdout)
	}
	check("after a second unchanged apply", updated...)
	if n := len(srv.Mails(t, owner)); n != 1 {
		t.Fatalf("the owner got %d mails, want the one setup mail", n)
	}
	if n := len(srv.Mails(t, ops)); n != 0 {
		t.Fatalf("the new admin got %d mails", n)
	}
}
