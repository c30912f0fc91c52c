package store_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// namedQuery returns the SQL of one sqlc query in queries/*.sql with its @params and
// sqlc.arg(…) replaced by $1, $2, …
func namedQuery(t *testing.T, name string) string {
	t.Helper()
	files, err := filepath.Glob("../../queries/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("queries: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, rest, ok := strings.Cut(string(b), "-- name: "+name+" ")
		if !ok {
			continue
		}
		_, body, _ := strings.Cut(rest, "\n")
		body, _, _ = strings.Cut(body, "-- name: ")
		params := map[string]string{}
		return regexp.MustCompile(`@\w+`).ReplaceAllStringFunc(body, func(p string) string {
			if _, ok := params[p]; !ok {
				params[p] = "$" + strconv.Itoa(len(params)+1)
			}
			return params[p]
		})
	}
	t.Fatalf("query %s not found in queries/", name)
	return ""
}

// TestLookupsByAddressUseAnIndex: under forced row-level security only leakproof
// conditions can go into an index scan, so a lookup written as lower(email) = … scans the
// whole table (every tenant's users: 1.7 s per sign-in at 1M users). Each lookup by
// address must have a plan with an index on the table, as the application role, with the
// tenant set and the generic plan a prepared statement ends up with.
func TestLookupsByAddressUseAnIndex(t *testing.T) {
	d := testutil.PackageDB(t)
	ten := testutil.NewTenant(t, d, "plan")
	ctx := context.Background()
	for name, index := range map[string]string{
		"GetUserWithPassword":      "users_tenant_email_key",
		"GetUserByEmail":           "users_tenant_email_key",
		"GetOpenInvitationByEmail": "invitations_email_idx",
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
				"SET LOCAL enable_seqscan = off", // an index that can be used will be
				"SET LOCAL plan_cache_mode = force_generic_plan",
				"PREPARE plan_" + name + " AS " + strings.TrimSuffix(strings.TrimSpace(sql), ";"),
			} {
				if _, err := tx.Exec(ctx, s); err != nil {
					t.Fatalf("%s: %v", s, err)
				}
			}
			n := strings.Count(sql, "$")
			args := strings.TrimSuffix(strings.Repeat("NULL, ", n), ", ")
			if strings.Contains(sql, "$1") && name == "MarkEmailVerified" {
				args = "'00000000-0000-0000-0000-000000000000', 'a@example.com'"
			}
			defer tx.Exec(ctx, "DEALLOCATE plan_"+name) //nolint:errcheck // before the rollback
			rows, err := tx.Query(ctx, "EXPLAIN EXECUTE plan_"+name+"("+args+")")
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
			// The address must be an index condition of the address index, not a filter
			// over every row of the tenant (or of all tenants).
			text := strings.Join(plan, "\n")
			if !regexp.MustCompile(`using ` + index + ` on \w+[^\n]*\n\s+Index Cond: [^\n]*email_key = `).MatchString(text) {
				t.Fatalf("%s does not look the address up in %s:\n%s", name, index, text)
			}
		})
	}
}
