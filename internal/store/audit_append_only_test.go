package store_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// The audit log is append-only for gatehouse_app, also through audit_expire and
// audit_pseudonymise (migration 000010, issue 14 finding 8). These tests run the functions
// as gatehouse_app with the tenant set, the way a compromised application could.

// appTx runs f as gatehouse_app in a transaction with the tenant set; commit decides
// whether the transaction commits (so the admin connection can see the effect) or rolls back.
func appTx(t *testing.T, d *testutil.DB, tid uuid.UUID, commit bool, f func(tx pgx.Tx)) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, d.AppURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT set_config('gatehouse.tenant_id', $1, true)", tid.String()); err != nil {
		t.Fatal(err)
	}
	f(tx)
	if commit {
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// auditAges inserts one event per age (in days) for the tenant; the actor label records
// the age, so survivingAges can list what is left.
func auditAges(t *testing.T, d *testutil.DB, tid uuid.UUID, ages ...int) {
	t.Helper()
	for _, age := range ages {
		if _, err := d.Admin.Exec(context.Background(), `INSERT INTO audit_events (tenant_id, action, actor_label, occurred_at)
			VALUES ($1, 'session.login', $2, now() - make_interval(days => $3) + interval '1 minute')`, tid, strconv.Itoa(age), age); err != nil {
			t.Fatal(err)
		}
	}
}

func survivingAges(t *testing.T, d *testutil.DB, tid uuid.UUID) []string {
	t.Helper()
	rows, err := d.Admin.Query(context.Background(), "SELECT actor_label FROM audit_events WHERE tenant_id = $1 ORDER BY occurred_at DESC", tid)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAuditExpireKeepsRetention: whatever cut-off gatehouse_app passes (the future, now,
// NULL, infinity), audit_expire deletes no event younger than the tenant's retention, and
// that retention never goes below 30 days even when the stored policy says less. An earlier
// cut-off than the retention is still honoured (it only ever deletes less).
func TestAuditExpireKeepsRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)

	def := testutil.NewTenant(t, d, "exp-def") // policy.audit.retention_days = 365
	auditAges(t, d, def.ID, 0, 1, 29, 31, 364, 366, 800)
	for _, cutoff := range []string{"now() + interval '1 day'", "now()", "'infinity'::timestamptz", "NULL"} {
		appTx(t, d, def.ID, true, func(tx pgx.Tx) {
			if _, err := tx.Exec(ctx, "SELECT audit_expire("+cutoff+")"); err != nil {
				t.Fatalf("audit_expire(%s): %v", cutoff, err)
			}
		})
		if got := survivingAges(t, d, def.ID); len(got) != 5 || got[4] != "364" {
			t.Fatalf("after audit_expire(%s) with a 365-day retention, events of ages %v days remain, want 0 1 29 31 364", cutoff, got)
		}
	}
	// A temporary "tenants" table of the caller with a 30-day retention, readable by the
	// functions' owner, does not stand in for the real one (search_path ends with pg_temp).
	appTx(t, d, def.ID, true, func(tx pgx.Tx) {
		for _, stmt := range []string{
			"CREATE TEMP TABLE tenants (id uuid, policy jsonb) ON COMMIT DROP",
			"GRANT SELECT ON pg_temp.tenants TO PUBLIC",
			`INSERT INTO pg_temp.tenants VALUES ('` + def.ID.String() + `', '{"audit": {"retention_days": 30}}')`,
			"SELECT audit_expire('infinity')",
		} {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
	})
	if got := survivingAges(t, d, def.ID); len(got) != 5 {
		t.Fatalf("with a temporary tenants table, events of ages %v days remain, want 0 1 29 31 364", got)
	}
	// An earlier cut-off than the retention deletes less, never more.
	auditAges(t, d, def.ID, 800)
	appTx(t, d, def.ID, true, func(tx pgx.Tx) {
		var n int64
		if err := tx.QueryRow(ctx, "SELECT audit_expire(now() - interval '1000 days')").Scan(&n); err != nil || n != 0 {
			t.Fatalf("audit_expire(1000 days ago) deleted %d events (%v), want 0", n, err)
		}
	})

	// A policy below the minimum (the application validates 30..3650; the table does not):
	// the function keeps 30 days regardless.
	short := testutil.NewTenant(t, d, "exp-short")
	if _, err := d.Admin.Exec(ctx, `UPDATE tenants SET policy = jsonb_set(policy, '{audit,retention_days}', '1') WHERE id = $1`, short.ID); err != nil {
		t.Fatal(err)
	}
	auditAges(t, d, short.ID, 0, 2, 29, 31)
	appTx(t, d, short.ID, true, func(tx pgx.Tx) {
		if _, err := tx.Exec(ctx, "SELECT audit_expire(now() + interval '1 year')"); err != nil {
			t.Fatal(err)
		}
	})
	if got := survivingAges(t, d, short.ID); len(got) != 3 || got[2] != "29" {
		t.Fatalf("retention_days 1 stored: events of ages %v days remain, want 0 2 29 (a 30-day floor)", got)
	}

	// No retention stored at all: the default, 365 days.
	bare := testutil.NewTenant(t, d, "exp-bare")
	if _, err := d.Admin.Exec(ctx, `UPDATE tenants SET policy = '{}' WHERE id = $1`, bare.ID); err != nil {
		t.Fatal(err)
	}
	auditAges(t, d, bare.ID, 200, 366)
	appTx(t, d, bare.ID, true, func(tx pgx.Tx) {
		if _, err := tx.Exec(ctx, "SELECT audit_expire(now())"); err != nil {
			t.Fatal(err)
		}
	})
	if got := survivingAges(t, d, bare.ID); len(got) != 1 || got[0] != "200" {
		t.Fatalf("no retention stored: events of ages %v days remain, want 200", got)
	}
}

// auditRow is an event's changeable columns; NULL reads as "".
type auditRow struct {
	ActorID, SubjectID       string
	ActorLabel, SubjectLabel string
	IP, UserAgent            string
}

func auditRowsOf(t *testing.T, d *testutil.DB, tid uuid.UUID) map[uuid.UUID]auditRow {
	t.Helper()
	rows, err := d.Admin.Query(context.Background(), `SELECT id, COALESCE(actor_id::text, ''), COALESCE(subject_id::text, ''),
		       actor_label, subject_label, COALESCE(host(ip), ''), user_agent
		  FROM audit_events WHERE tenant_id = $1`, tid)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[uuid.UUID]auditRow{}
	for rows.Next() {
		var id uuid.UUID
		var r auditRow
		if err := rows.Scan(&id, &r.ActorID, &r.SubjectID, &r.ActorLabel, &r.SubjectLabel, &r.IP, &r.UserAgent); err != nil {
			t.Fatal(err)
		}
		out[id] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// seedUserEvents creates a user of the tenant with an event they did, one done to them by
// another user, and one of the other user alone. It returns (user, other).
func seedUserEvents(t *testing.T, d *testutil.DB, tid uuid.UUID) (uuid.UUID, uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	var user, other uuid.UUID
	for _, p := range []*uuid.UUID{&user, &other} {
		if err := d.Admin.QueryRow(ctx, "INSERT INTO users (tenant_id, email) VALUES ($1, $2) RETURNING id", tid, uuid.NewString()+"@example.com").Scan(p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Admin.Exec(ctx, `INSERT INTO audit_events (tenant_id, action, actor_id, actor_label, subject_id, subject_label, ip, user_agent) VALUES
		($1, 'session.login', $2, 'ann@example.com', NULL, '', '192.0.2.1', 'Firefox'),
		($1, 'role.assigned', $3, 'bob@example.com', $2, 'ann@example.com', '192.0.2.2', 'Chrome'),
		($1, 'session.login', $3, 'bob@example.com', NULL, '', '192.0.2.2', 'Chrome')`, tid, user, other); err != nil {
		t.Fatal(err)
	}
	return user, other
}

// TestAuditPseudonymiseRefusesLiveUser: gatehouse_app cannot rewrite who did what for a
// user who still exists, also not with a temporary "users" table shadowing the real one.
func TestAuditPseudonymiseRefusesLiveUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	ten := testutil.NewTenant(t, d, "pse-live")
	user, _ := seedUserEvents(t, d, ten.ID)
	before := auditRowsOf(t, d, ten.ID)

	for _, shadow := range []bool{false, true} {
		appTx(t, d, ten.ID, true, func(tx pgx.Tx) {
			if shadow {
				if _, err := tx.Exec(ctx, "CREATE TEMP TABLE users (tenant_id uuid, id uuid) ON COMMIT DROP"); err != nil {
					t.Fatal(err)
				}
				if _, err := tx.Exec(ctx, "GRANT SELECT ON pg_temp.users TO PUBLIC"); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := tx.Exec(ctx, "SAVEPOINT s"); err != nil {
				t.Fatal(err)
			}
			_, err := tx.Exec(ctx, "SELECT * FROM audit_pseudonymise($1)", user)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "55006" || pe.Message != "audit_pseudonymise: the user still exists" {
				t.Fatalf("pseudonymising a live user (temporary users table: %v): err = %v, want object_in_use 'the user still exists'", shadow, err)
			}
			if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT s"); err != nil {
				t.Fatal(err)
			}
		})
	}
	after := auditRowsOf(t, d, ten.ID)
	if len(after) != len(before) {
		t.Fatalf("rows: %d before, %d after", len(before), len(after))
	}
	for id, r := range before {
		if after[id] != r {
			t.Errorf("event %s changed: %+v -> %+v", id, r, after[id])
		}
	}
}

// TestAuditPseudonymiseDeletedUser: once the user is deleted, their events get a pseudonym
// the function derives itself — HMAC-SHA256 under the database's key, not the former
// HMAC(key = tenant id, user id) that anyone knowing both ids could recompute — stable for
// the same user, different for another user, and not influenced by a temporary table of
// the caller named audit_pseudonym_key.
func TestAuditPseudonymiseDeletedUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	ten := testutil.NewTenant(t, d, "pse-gone")
	user, other := seedUserEvents(t, d, ten.ID)
	before := auditRowsOf(t, d, ten.ID)

	var ref string
	var events int64
	appTx(t, d, ten.ID, true, func(tx pgx.Tx) {
		if _, err := tx.Exec(ctx, "DELETE FROM users WHERE id = $1", user); err != nil {
			t.Fatal(err)
		}
		if err := tx.QueryRow(ctx, "SELECT user_ref, events FROM audit_pseudonymise($1)", user).Scan(&ref, &events); err != nil {
			t.Fatalf("pseudonymise a deleted user: %v", err)
		}
	})
	if events != 2 {
		t.Fatalf("pseudonymised %d events, want 2", events)
	}

	old := hmac.New(sha256.New, ten.ID[:])
	old.Write(user[:])
	if oldRef := hex.EncodeToString(old.Sum(nil)[:16]); ref == oldRef {
		t.Fatalf("pseudonym %s is still HMAC(tenant id, user id)", ref)
	}
	var key []byte
	if err := d.Admin.QueryRow(ctx, "SELECT key FROM audit_pseudonym_key").Scan(&key); err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write(ten.ID[:])
	m.Write(user[:])
	if want := hex.EncodeToString(m.Sum(nil)[:16]); ref != want {
		t.Fatalf("pseudonym %s, want HMAC-SHA256(database key, tenant id || user id)[:16] = %s", ref, want)
	}

	label := "deleted-user:" + ref
	after := auditRowsOf(t, d, ten.ID)
	for id, r := range before {
		a := after[id]
		switch {
		case r.ActorID == user.String():
			if a.ActorID != "" || a.ActorLabel != label || a.IP != "" || a.UserAgent != "" {
				t.Errorf("event done by the user not pseudonymised: %+v", a)
			}
		case r.SubjectID == user.String():
			if a.SubjectID != "" || a.SubjectLabel != label || a.IP != "" || a.UserAgent != "" || a.ActorID != other.String() || a.ActorLabel != r.ActorLabel {
				t.Errorf("event about the user not pseudonymised (or its actor lost): %+v", a)
			}
		default:
			if a != r {
				t.Errorf("another user's event changed: %+v -> %+v", r, a)
			}
		}
	}

	// Stable: a retried purge (or a later call) derives the same pseudonym and finds
	// nothing left to change, even when the caller shadows the key table with its own.
	appTx(t, d, ten.ID, false, func(tx pgx.Tx) {
		if _, err := tx.Exec(ctx, "CREATE TEMP TABLE audit_pseudonym_key (id boolean, key bytea, created_at timestamptz)"); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "GRANT SELECT ON pg_temp.audit_pseudonym_key TO PUBLIC"); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO pg_temp.audit_pseudonym_key VALUES (true, decode(repeat('00', 32), 'hex'), now())`); err != nil {
			t.Fatal(err)
		}
		var again string
		var n int64
		if err := tx.QueryRow(ctx, "SELECT user_ref, events FROM audit_pseudonymise($1)", user).Scan(&again, &n); err != nil {
			t.Fatal(err)
		}
		if again != ref || n != 0 {
			t.Fatalf("second call: pseudonym %s (first %s), %d events changed", again, ref, n)
		}
		// Another (deleted) user gets another pseudonym.
		var another string
		if err := tx.QueryRow(ctx, "SELECT user_ref FROM audit_pseudonymise($1)", uuid.New()).Scan(&another); err != nil {
			t.Fatal(err)
		}
		if another == ref {
			t.Fatal("two users got the same pseudonym")
		}
	})
}

// TestAuditPseudonymKeyUnreadable: gatehouse_app has no privilege at all on the key that
// makes the pseudonyms, so it cannot recompute a pseudonym from a former user id; the key
// exists, is 32 bytes and is not trivially zero.
func TestAuditPseudonymKeyUnreadable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	ten := testutil.NewTenant(t, d, "pse-key")

	var n, size int
	var zero bool
	if err := d.Admin.QueryRow(ctx, `SELECT count(*), max(length(key)), bool_or(key = decode(repeat('00', 32), 'hex')) FROM audit_pseudonym_key`).Scan(&n, &size, &zero); err != nil {
		t.Fatal(err)
	}
	if n != 1 || size != 32 || zero {
		t.Fatalf("audit_pseudonym_key: %d rows, %d bytes, zero %v; want one row of 32 random bytes", n, size, zero)
	}
	var privs []string
	if err := d.Admin.QueryRow(ctx, `SELECT COALESCE(array_agg(p), '{}') FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p
		WHERE has_table_privilege('gatehouse_app', 'public.audit_pseudonym_key', p)`).Scan(&privs); err != nil {
		t.Fatal(err)
	}
	if len(privs) != 0 {
		t.Errorf("gatehouse_app holds %v on audit_pseudonym_key", privs)
	}
	for _, stmt := range []string{
		"SELECT key FROM audit_pseudonym_key",
		"UPDATE audit_pseudonym_key SET key = decode(repeat('00', 32), 'hex')",
		"DELETE FROM audit_pseudonym_key",
		`INSERT INTO audit_pseudonym_key (id, key) VALUES (true, decode(repeat('00', 32), 'hex'))`,
		"COPY audit_pseudonym_key TO STDOUT",
	} {
		appTx(t, d, ten.ID, false, func(tx pgx.Tx) {
			if _, err := tx.Exec(ctx, stmt); !isPermissionDenied(err) {
				t.Errorf("%q as gatehouse_app: want permission denied, got %v", stmt, err)
			}
		})
	}
}

// TestAuditHMACMatchesGo: the SQL HMAC-SHA256 behind the pseudonyms (audit_hmac_sha256, built
// on the server's sha256 because pgcrypto is not assumed) agrees with crypto/hmac for keys
// shorter than, equal to and longer than the 64-byte block; gatehouse_app cannot call it.
func TestAuditHMACMatchesGo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	for _, size := range []int{0, 1, 16, 32, 63, 64, 65, 200} {
		key := make([]byte, size)
		for i := range key {
			key[i] = byte(i*7 + size)
		}
		for _, msg := range []string{"", "a", "tenant-and-user-0123456789abcdef", string(make([]byte, 300))} {
			var got []byte
			if err := d.Admin.QueryRow(ctx, "SELECT audit_hmac_sha256($1, $2)", key, []byte(msg)).Scan(&got); err != nil {
				t.Fatal(err)
			}
			m := hmac.New(sha256.New, key)
			m.Write([]byte(msg))
			if want := m.Sum(nil); !hmac.Equal(got, want) {
				t.Errorf("key %d bytes, message %d bytes: %x, want %x", size, len(msg), got, want)
			}
		}
	}
	var can bool
	if err := d.Admin.QueryRow(ctx, "SELECT has_function_privilege('gatehouse_app', 'public.audit_hmac_sha256(bytea, bytea)', 'EXECUTE')").Scan(&can); err != nil || can {
		t.Errorf("gatehouse_app may execute audit_hmac_sha256: %v (%v)", can, err)
	}
}
