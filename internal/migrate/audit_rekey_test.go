package migrate_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/migrate"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestAuditPseudonymsRekeyed: migration 000010 re-keys the pseudonyms that purges made
// before it, which anyone knowing the tenant id and a former user id could recompute
// (hex(HMAC(key = tenant id, user id))[:16]): afterwards neither the audit events nor the
// deletion receipt carry that value, both carry the same re-keyed ref, and other events are
// untouched.
func TestAuditPseudonymsRekeyed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.FreshDB(t)
	mg, err := migrate.Open(d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer mg.Close()
	const before = 9 // the last version without 000010
	// Step down one migration at a time: versions may have gaps (a number reserved by a
	// branch not merged yet), so Latest()-before is not the number of steps.
	for {
		v, _, err := mg.Version()
		if err != nil {
			t.Fatal(err)
		}
		if v <= before {
			if v != before {
				t.Fatalf("version %d, want %d", v, before)
			}
			break
		}
		if err := mg.Down(1); err != nil {
			t.Fatal(err)
		}
	}

	// A purge as the application did it before 000010.
	tid, user := uuid.New(), uuid.New()
	old := hmac.New(sha256.New, tid[:])
	old.Write(user[:])
	oldRef := hex.EncodeToString(old.Sum(nil)[:16])
	for _, stmt := range []struct {
		sql  string
		args []any
	}{
		{"INSERT INTO tenants (id, slug, name) VALUES ($1, $2, 'Rekey')", []any{tid, testutil.UniqueSlug("rekey")}},
		{"INSERT INTO audit_events (tenant_id, action, actor_id, actor_label, ip) VALUES ($1, 'session.login', $2, 'gone@example.com', '192.0.2.1')", []any{tid, user}},
		{"INSERT INTO audit_events (tenant_id, action, actor_label, subject_label) VALUES ($1, 'user.purged', 'system', $2)", []any{tid, "deleted-user:" + oldRef}},
		{"INSERT INTO audit_events (tenant_id, action, actor_label) VALUES ($1, 'session.login', 'stays@example.com')", []any{tid}},
		{"INSERT INTO deletion_receipts (tenant_id, user_ref, counts) VALUES ($1, $2, '{}')", []any{tid, oldRef}},
	} {
		if _, err := d.Admin.Exec(ctx, stmt.sql, stmt.args...); err != nil {
			t.Fatalf("%s: %v", stmt.sql, err)
		}
	}
	conn, err := pgx.Connect(ctx, d.AppURL)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT set_config('gatehouse.tenant_id', $1, true)", tid.String()); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT audit_pseudonymise($1, $2)", user, "deleted-user:"+oldRef); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	if err := mg.Up(); err != nil {
		t.Fatal(err)
	}
	var key []byte
	if err := d.Admin.QueryRow(ctx, "SELECT key FROM audit_pseudonym_key").Scan(&key); err != nil {
		t.Fatal(err)
	}
	oldBytes, _ := hex.DecodeString(oldRef)
	m := hmac.New(sha256.New, key)
	m.Write([]byte("v0:"))
	m.Write(oldBytes)
	newRef := hex.EncodeToString(m.Sum(nil)[:16])

	rows, err := d.Admin.Query(ctx, "SELECT action, actor_label, subject_label FROM audit_events WHERE tenant_id = $1 ORDER BY occurred_at", tid)
	if err != nil {
		t.Fatal(err)
	}
	type ev struct{ Action, Actor, Subject string }
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[ev])
	if err != nil {
		t.Fatal(err)
	}
	want := []ev{
		{"session.login", "deleted-user:" + newRef, ""},
		{"user.purged", "system", "deleted-user:" + newRef},
		{"session.login", "stays@example.com", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d: %+v, want %+v (old ref %s)", i, got[i], want[i], oldRef)
		}
	}
	var receipt string
	if err := d.Admin.QueryRow(ctx, "SELECT user_ref FROM deletion_receipts WHERE tenant_id = $1", tid).Scan(&receipt); err != nil {
		t.Fatal(err)
	}
	if receipt != newRef {
		t.Errorf("receipt user_ref %s, want %s (old ref %s)", receipt, newRef, oldRef)
	}
}
