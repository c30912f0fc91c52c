package scim_test

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/scim"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestPushdownMatchesGoEvaluation: on a mixed data set — directory users written through
// SCIM with several addresses in mixed case and non-ASCII letters, accounts no directory
// manages, an account pending deletion, and records of odd shapes written before migration
// 000024 (keys by its backfill) — every filter answered by index lists exactly the users,
// in the same order, that the Go evaluation over every user lists; filters that cannot use
// an index are listed too, as a control. The backfill's keys hold every key the
// application would write for the same record.
func TestPushdownMatchesGoEvaluation(t *testing.T) {
	srv := testutil.NewServer(t, testutil.PackageDB(t))
	d := newDir(t, srv, "scimpush", nil)
	ctx := context.Background()
	other := newDir(t, srv, "scimpushother", nil) // another tenant: never listed
	r, _ := other.scim(http.MethodPost, "/Users", oktaUser("ann@work.example", "Other", "Tenant"))
	other.want(r, 201, "")

	// Records of odd shapes, as a directory may have stored them before migration 000024:
	// inserted by SQL, their keys written by the migration's backfill.
	odd := map[string]string{
		"spelled@example.com":   `{"emails":[{"VALUE":"Spelled@Example.com","type":"work"}]}`,
		"object@example.com":    `{"emails":{"value":"Object@Example.com","type":"work"}}`,
		"listed@example.com":    `{"emails":[{"value":["Listed@Example.com",{"value":"Nested@Example.com"}],"type":"work"}]}`,
		"numbers@example.com":   `{"emails":[{"value":42,"type":"work"},{"value":true,"type":"home"}]}`,
		"strings@example.com":   `{"emails":["NotAnObject@example.com"]}`,
		"empty@example.com":     `{"emails":[]}`,
		"unrelated@example.com": `{"displayName":"Unrelated","emails":[{"type":"work"}]}`,
	}
	admin := testutil.PackageDB(t).Admin
	for email, attrs := range odd {
		if _, err := admin.Exec(ctx, `WITH u AS (INSERT INTO users (tenant_id, email, name) VALUES ($1, $2, 'Odd') RETURNING id)
			INSERT INTO directory_users (tenant_id, user_id, directory_id, user_name, attributes) SELECT $1, u.id, $3, $2, $4::jsonb FROM u`,
			d.Tenant.ID, email, d.id, attrs); err != nil {
			t.Fatal(err)
		}
	}
	backfill(t, d) // before the users below: their keys are the application's own
	post := func(body map[string]any) {
		t.Helper()
		r, _ := d.scim(http.MethodPost, "/Users", body)
		d.want(r, 201, "")
	}
	ann := oktaUser("Ann.Mixed@Example.com", "Ann", "Mixed")
	ann["emails"] = []any{map[string]any{"value": "ANN@Work.Example", "type": "work", "primary": true}, map[string]any{"value": "ann@home.example", "type": "home"}}
	post(ann)
	elodie := oktaUser("Élodie@example.com", "Élodie", "Weiß")
	elodie["emails"] = []any{map[string]any{"value": "ÉLODIE.WEISS@Example.com", "type": "work"}}
	post(elodie)
	noEmails := oktaUser("bare.username@example.com", "Bare", "Name")
	delete(noEmails, "emails") // the account's address is userName; the resource shows it as emails
	post(noEmails)
	shared := oktaUser("shared.one@example.com", "Shared", "One")
	shared["emails"] = []any{map[string]any{"value": "team@example.com", "type": "other"}, map[string]any{"value": "shared.one@example.com", "type": "work", "primary": true}}
	post(shared)
	shared2 := oktaUser("shared.two@example.com", "Shared", "Two")
	shared2["emails"] = []any{map[string]any{"value": "TEAM@example.com", "type": "work"}, map[string]any{"value": "shared.two@example.com", "type": "home", "primary": true}}
	shared2["externalId"] = "Ext-Two"
	post(shared2)
	listy := oktaUser("listy@example.com", "Listy", "Values")
	listy["emails"] = []any{map[string]any{"Value": []any{"Listy.One@Example.com", map[string]any{"value": "Listy.Two@Example.com"}}, "type": "work"}}
	post(listy)
	moved := oktaUser("moved@example.com", "Moved", "Addresses")
	moved["emails"] = []any{map[string]any{"value": "Old.Address@example.com", "type": "work", "primary": true}}
	r, u := d.scim(http.MethodPost, "/Users", moved)
	d.want(r, 201, "")
	r, _ = d.scim(http.MethodPatch, "/Users/"+u["id"].(string), map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "path": "emails", "value": []any{map[string]any{"value": "New.Address@example.com", "type": "work", "primary": true}}}}})
	d.want(r, 200, "")
	d.Site.User(t, "Plain.Account@example.com", "member")
	d.Site.User(t, "team@example.com", "member") // an unmanaged account whose address another user lists
	gone := d.Site.User(t, "gone@example.com", "member")

	if _, err := admin.Exec(ctx, `UPDATE users SET status = 'pending_deletion' WHERE tenant_id = $1 AND id = $2`, d.Tenant.ID, gone); err != nil {
		t.Fatal(err)
	}
	checkBackfillKeys(t, d)

	c, err := d.Srv.App.SCIM.Authenticate(ctx, d.Tenant, d.token, audit.Who{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		filter  string
		byIndex bool
		want    int // users the filter lists
	}{
		{`emails.value eq "ann@work.example"`, true, 1},
		{`emails.value eq "ANN@HOME.EXAMPLE"`, true, 1},
		{`urn:ietf:params:scim:schemas:core:2.0:User:emails.value eq "ann@home.example"`, true, 1},
		{`emails.value eq "élodie.weiss@example.com"`, true, 1},
		{`emails.value eq "ÉLODIE.WEISS@EXAMPLE.COM"`, true, 1},
		{`emails.value eq "bare.username@example.com"`, true, 1},
		{`emails.value eq "plain.account@example.com"`, true, 1},
		{`emails.value eq "team@example.com"`, true, 3},
		{`emails.value eq "gone@example.com"`, true, 0},
		{`emails.value eq "nobody@example.com"`, true, 0},
		{`emails.value eq "spelled@example.com"`, true, 1},
		{`emails.value eq "object@example.com"`, true, 1},
		{`emails.value eq "listed@example.com"`, true, 0},  // a list is not a value of emails.value…
		{`emails[value eq "listed@example.com"]`, true, 1}, // …but its items are values of value
		{`emails[value eq "nested@example.com"]`, true, 1},
		{`emails.value eq "42"`, true, 1},
		{`emails.value eq "4.2e1"`, true, 0}, // compared as the decimal "42"
		{`emails.value eq "TRUE"`, true, 1},
		{`emails.value eq "notanobject@example.com"`, true, 0},
		{`emails[type eq "work"].value eq "ann@work.example"`, true, 1},
		{`emails[type eq "work"].value eq "ann@home.example"`, true, 0},
		{`emails[type eq "work"].value eq "team@example.com"`, true, 2},
		{`emails[type eq "work" and value eq "TEAM@example.com"]`, true, 2},
		{`emails[value eq "team@example.com" or value eq "ann@home.example"]`, true, 4},
		{`emails[value eq "listy.one@example.com"]`, true, 1},
		{`emails[value eq "LISTY.TWO@example.com"]`, true, 1},
		{`emails.value eq "new.address@example.com"`, true, 1},
		{`emails.value eq "old.address@example.com"`, true, 0},
		{`userName eq "ann.mixed@example.com"`, true, 1},
		{`userName eq "ÉLODIE@EXAMPLE.COM"`, true, 1},
		{`userName eq "TEAM@example.com"`, true, 1},
		{`userName eq "ann.mixed@example.com" or emails.value eq "team@example.com"`, true, 4},
		{`userName eq "shared.two@example.com" and emails.value eq "team@example.com"`, true, 1},
		{`userName eq "shared.one@example.com" and emails.value eq "ann@work.example"`, true, 0},
		{`emails.value eq "team@example.com" and displayName co "Two"`, true, 1},
		{`externalId eq "Ext-Two" or userName eq "plain.account@example.com"`, true, 2},
		{`externalId eq "ext-two"`, true, 0},
		{`emails.value eq "team@example.com" or displayName co "Mixed"`, false, 4},
		{`not (emails.value eq "team@example.com")`, false, 14},
		{`emails.value co "team@"`, false, 3},
		{`emails[type eq "work"].value pr`, false, 14},
	} {
		t.Run(tc.filter, func(t *testing.T) {
			f, err := scim.ParseFilter(tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			if got := scim.ByIndex(f); got != tc.byIndex {
				t.Fatalf("answered by index: %v, want %v", got, tc.byIndex)
			}
			lq := scim.ListQuery{Filter: f, StartIndex: 1, Count: scim.MaxCount}
			indexed, err := d.Srv.App.SCIM.ListUsers(ctx, c, lq)
			if err != nil {
				t.Fatal(err)
			}
			scanned, err := d.Srv.App.SCIM.ListUsersByScan(ctx, c, lq)
			if err != nil {
				t.Fatal(err)
			}
			got, want := names(indexed), names(scanned)
			if !slices.Equal(got, want) {
				t.Fatalf("by index %v, by the Go evaluation %v", got, want)
			}
			if len(got) != tc.want {
				t.Fatalf("lists %d users %v, want %d", len(got), got, tc.want)
			}
		})
	}
}

func names(l scim.ListResponse) []string {
	var out []string
	for _, r := range l.Resources {
		out = append(out, r["userName"].(string))
	}
	return out
}

// backfill runs migration 000024's backfill statement in d's tenant (as the owner: the
// statement covers every tenant, like the migration).
func backfill(t *testing.T, d *dir) {
	t.Helper()
	up, err := os.ReadFile("../../db/migrations/000024_scim_email_keys.up.sql")
	if err != nil {
		t.Fatal(err)
	}
	sql := string(up)
	i := strings.Index(sql, "INSERT INTO directory_user_emails")
	if i < 0 {
		t.Fatal("no backfill in migration 000024")
	}
	stmt, _, _ := strings.Cut(sql[i:], ";") // the backfill statement only (the file goes on)
	if _, err := testutil.PackageDB(t).Admin.Exec(context.Background(), stmt); err != nil {
		t.Fatalf("backfill: %v", err)
	}
}

// checkBackfillKeys: for every directory user of d, the stored keys hold every key the
// application computes from the record.
func checkBackfillKeys(t *testing.T, d *dir) {
	t.Helper()
	rows, err := testutil.PackageDB(t).Admin.Query(context.Background(), `SELECT du.user_id, du.attributes,
		coalesce((SELECT array_agg(value_key) FROM directory_user_emails e WHERE e.tenant_id = du.tenant_id AND e.user_id = du.user_id), '{}')
		FROM directory_users du WHERE du.tenant_id = $1`, d.Tenant.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id uuid.UUID
		var attrs []byte
		var stored []string
		if err := rows.Scan(&id, &attrs, &stored); err != nil {
			t.Fatal(err)
		}
		n++
		for _, k := range scim.EmailKeys(attrs) {
			if !slices.Contains(stored, k) {
				t.Errorf("user %s (%s): key %q not stored (stored %v)", id, attrs, k, stored)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("only %d directory users", n)
	}
}
