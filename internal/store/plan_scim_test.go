package store_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestSCIMLookupsUseAnIndex: the look-ups an IdP makes before each create (filter userName
// eq, externalId eq, emails.value eq, and and/or of them) and the userName uniqueness check
// must find their rows by index under forced row-level security, not filter every
// directory user of the tenant (see TestLookupsByAddressUseAnIndex and migrations 000022,
// 000024). Each named index must appear with an
// Index Cond on its key, and no table may be read by a sequential scan.
func TestSCIMLookupsUseAnIndex(t *testing.T) {
	d := testutil.PackageDB(t)
	ten := testutil.NewTenant(t, d, "scimplan")
	ctx := context.Background()
	// Each case: the query, its EXECUTE arguments, and the index look-ups its plan must hold.
	// FindSCIMUsersByKeys is the query of every filter planLookups answers (userName eq,
	// externalId eq, emails.value eq, their and/or): each branch by its index, whichever
	// arrays are filled (the plan is generic, as after pgx's fifth execution).
	one := "('someone@example.com')"
	keys := "('{someone@example.com}', '{ext-1}', '{someone@example.com}')"
	byKeys := []string{
		`directory_users_user_name_key on \w+[^\n]*\n\s+Index Cond: [^\n]*user_name_key = ANY`,
		`users_tenant_email_key on \w+[^\n]*\n\s+Index Cond: [^\n]*email_key = ANY`,
		`directory_users_external_idx on \w+[^\n]*\n\s+Index Cond: [^\n]*external_id = ANY`,
		`directory_user_emails_key_idx on \w+[^\n]*\n\s+Index Cond: [^\n]*value_key = ANY`,
	}
	for name, c := range map[string]struct {
		query, args string
		want        []string
	}{
		"FindSCIMUsersByKeys":    {"FindSCIMUsersByKeys", keys, byKeys},
		"GetDirectoryUserByName": {"GetDirectoryUserByName", one, []string{`directory_users_user_name_key on \w+[^\n]*\n\s+Index Cond: [^\n]*user_name_key = `}},
	} {
		t.Run(name, func(t *testing.T) {
			sql, want, stmt := namedQuery(t, c.query), c.want, "plan_"+name
			tx, err := d.Store.Pool().Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			for _, s := range []string{
				"SELECT set_config('gatehouse.tenant_id', '" + ten.ID.String() + "', true)",
				"SET LOCAL enable_seqscan = off",
				"SET LOCAL plan_cache_mode = force_generic_plan",
				"PREPARE " + stmt + " AS " + strings.TrimSuffix(strings.TrimSpace(sql), ";"),
			} {
				if _, err := tx.Exec(ctx, s); err != nil {
					t.Fatalf("%s: %v", s, err)
				}
			}
			defer tx.Exec(ctx, "DEALLOCATE "+stmt) //nolint:errcheck // before the rollback
			rows, err := tx.Query(ctx, "EXPLAIN EXECUTE "+stmt+c.args)
			if err != nil {
				t.Fatal(err)
			}
			var plan []string
			for rows.Next() {
				var line string
				if err := rows.Scan(&line); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, line)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			text := strings.Join(plan, "\n")
			for _, re := range want {
				if !regexp.MustCompile(`using ` + re).MatchString(text) {
					t.Errorf("%s: no index look-up matching %q:\n%s", name, re, text)
				}
			}
			if strings.Contains(text, "Seq Scan") {
				t.Errorf("%s scans a table:\n%s", name, text)
			}
		})
	}
}
