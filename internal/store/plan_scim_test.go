package store_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestSCIMLookupsUseAnIndex: the look-ups an IdP makes before each create (filter userName
// eq, externalId eq) and the userName uniqueness check must find their rows by index under
// forced row-level security, not filter every directory user of the tenant (see
// TestLookupsByAddressUseAnIndex and migration 000022). Each named index must appear with an
// Index Cond on its key, and no table may be read by a sequential scan.
func TestSCIMLookupsUseAnIndex(t *testing.T) {
	d := testutil.PackageDB(t)
	ten := testutil.NewTenant(t, d, "scimplan")
	ctx := context.Background()
	for name, want := range map[string][]string{
		"FindSCIMUsersByName":       {`directory_users_user_name_key on \w+[^\n]*\n\s+Index Cond: [^\n]*user_name_key = `, `users_tenant_email_key on \w+[^\n]*\n\s+Index Cond: [^\n]*email_key = `},
		"FindSCIMUsersByExternalID": {`directory_users_external_idx on \w+[^\n]*\n\s+Index Cond: [^\n]*external_id = `},
		"GetDirectoryUserByName":    {`directory_users_user_name_key on \w+[^\n]*\n\s+Index Cond: [^\n]*user_name_key = `},
	} {
		t.Run(name, func(t *testing.T) {
			sql := namedQuery(t, name)
			tx, err := d.Store.Pool().Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			for _, s := range []string{
				"SELECT set_config('gatehouse.tenant_id', '" + ten.ID.String() + "', true)",
				"SET LOCAL enable_seqscan = off",
				"SET LOCAL plan_cache_mode = force_generic_plan",
				"PREPARE plan_" + name + " AS " + strings.TrimSuffix(strings.TrimSpace(sql), ";"),
			} {
				if _, err := tx.Exec(ctx, s); err != nil {
					t.Fatalf("%s: %v", s, err)
				}
			}
			defer tx.Exec(ctx, "DEALLOCATE plan_"+name) //nolint:errcheck // before the rollback
			rows, err := tx.Query(ctx, "EXPLAIN EXECUTE plan_"+name+"('someone@example.com')")
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
