package scim_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// rowsNaming counts, per table and uuid column, the rows of the whole database that hold id.
func rowsNaming(t *testing.T, d *testutil.DB, id uuid.UUID) map[string]int {
	t.Helper()
	ctx := context.Background()
	rows, err := d.Admin.Query(ctx, `SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = 'public' AND data_type = 'uuid' ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var a, b string
		err := r.Scan(&a, &b)
		return [2]string{a, b}, err
	})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, c := range cols {
		var n int
		q := fmt.Sprintf("SELECT count(*) FROM %s WHERE %s = $1", pgx.Identifier{c[0]}.Sanitize(), pgx.Identifier{c[1]}.Sanitize())
		if err := d.Admin.QueryRow(ctx, q, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			out[c[0]+"."+c[1]] = n
		}
	}
	return out
}

// TestDeletePurges: a directory set to purge erases a user at DELETE: no row of the whole
// database names the user afterwards (its SCIM record, group memberships and request log
// references included), and the lifecycle mode leaves the user pending deletion.
func TestDeletePurges(t *testing.T) {
	db := testutil.PackageDB(t)
	srv := testutil.NewServer(t, db)
	d := newDir(t, srv, "scimpurge", map[string]any{"name": "Okta", "delete_mode": "purge"})
	uid, _ := d.Person(t, "gone@example.com")
	r, _ := d.scim(http.MethodPost, "/Users", oktaUser("gone@example.com", "Gone", "Soon"))
	d.want(r, 201, "")
	r, _ = d.scim(http.MethodPost, "/Groups", map[string]any{"displayName": "Staff", "members": []any{map[string]any{"value": uid.String()}}})
	d.want(r, 201, "")
	r, _ = d.scim(http.MethodPatch, "/Users/"+uid.String(), map[string]any{"Operations": []any{map[string]any{"op": "replace", "path": "title", "value": "Leaver"}}})
	d.want(r, 200, "")
	if before := rowsNaming(t, db, uid); before["directory_users.user_id"] != 1 || before["directory_group_members.user_id"] != 1 || before["directory_requests.user_id"] == 0 {
		t.Fatalf("before: %v", before)
	}
	r, _ = d.scim(http.MethodDelete, "/Users/"+uid.String(), nil)
	d.want(r, http.StatusNoContent, "")
	if left := rowsNaming(t, db, uid); len(left) != 0 {
		t.Fatalf("rows still naming the purged user: %v", left)
	}
	r, _ = d.scim(http.MethodGet, "/Users/"+uid.String(), nil)
	d.want(r, 404, "")
}
