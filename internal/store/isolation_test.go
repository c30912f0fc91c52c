package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// globalTables are the tables allowed to exist without tenant_id. Every other table must be
// tenant-scoped, so a new table that forgets tenant_id fails TestTenantScopedTables.
var globalTables = []string{"schema_migrations", "tenants",
	// The HMAC key of audit_pseudonymise (migration 000010): one row, no tenant data,
	// readable by gatehouse_owner only (TestAuditPseudonymKeyUnreadable).
	"audit_pseudonym_key",
	// The operator's webhook endpoints (migration 000018): operator configuration, no
	// tenant data; they receive every tenant's events.
	"platform_webhook_endpoints",
	// The housekeeping rotation's position (migration 000012): one row holding the last tenant
	// id claimed, no tenant data; the rotation spans every tenant, so no tenant scopes it.
	"housekeeping_rotation",
	// River's job queue: job args carry ids only (tenant id, row id), never tenant data.
	"river_client", "river_client_queue", "river_job", "river_leader", "river_migration", "river_notification", "river_queue"}

// fixtures insert one row of a tenant-scoped table for a tenant, as the superuser. A new
// tenant-scoped table without a fixture fails the isolation test until one is added.
var fixtures = map[string]func(ctx context.Context, tx pgx.Tx, tenantID uuid.UUID) error{
	"users": func(ctx context.Context, tx pgx.Tx, tid uuid.UUID) error {
		_, err := newUser(ctx, tx, tid)
		return err
	},
	"password_credentials": withUser(`INSERT INTO password_credentials (tenant_id, user_id, hash) VALUES ($1, $2, '$argon2id$x')`),
	"email_tokens": withUser(`INSERT INTO email_tokens (tenant_id, user_id, purpose, token_hash, email, expires_at)
		VALUES ($1, $2, 'verify_email', sha256(gen_random_uuid()::text::bytea), 'a@example.com', now() + interval '1 hour')`),
	"sessions": withUser(`INSERT INTO sessions (tenant_id, user_id, token_hash, idle_timeout, expires_at)
		VALUES ($1, $2, sha256(gen_random_uuid()::text::bytea), interval '1 hour', now() + interval '1 day')`),
	"totp_credentials": withUser(`INSERT INTO totp_credentials (tenant_id, user_id, key_id, secret_sealed) VALUES ($1, $2, 'k', '\x00')`),
	"recovery_codes":   withUser(`INSERT INTO recovery_codes (tenant_id, user_id, code_hash) VALUES ($1, $2, sha256(gen_random_uuid()::text::bytea))`),
	"passkeys": withUser(`INSERT INTO passkeys (tenant_id, user_id, credential_id, public_key, backup_eligible, backup_state, user_verified, name)
		VALUES ($1, $2, sha256(gen_random_uuid()::text::bytea), '\x01', false, false, true, 'fixture')`),
	"passkey_challenges": withUser(`INSERT INTO passkey_challenges (tenant_id, user_id, challenge_hash, purpose, session_data, expires_at)
		VALUES ($1, $2, sha256(gen_random_uuid()::text::bytea), 'reauth', '{}', now() + interval '5 minutes')`),
	"login_challenges": withUser(`INSERT INTO login_challenges (tenant_id, user_id, token_hash, expires_at) VALUES ($1, $2, sha256(gen_random_uuid()::text::bytea), now() + interval '5 minutes')`),
	"deletion_receipts": func(ctx context.Context, tx pgx.Tx, tid uuid.UUID) error {
		_, err := tx.Exec(ctx, `INSERT INTO deletion_receipts (tenant_id, user_ref, counts) VALUES ($1, md5(random()::text), '{}')`, tid)
		return err
	},
	"invitations": withUser(`INSERT INTO invitations (tenant_id, invited_by, email, role, token_hash, expires_at)
		VALUES ($1, $2, 'inv@example.com', 'member', sha256(gen_random_uuid()::text::bytea), now() + interval '1 day')`),
	"role_bindings": withUser(`INSERT INTO role_bindings (tenant_id, user_id, role) VALUES ($1, $2, 'member')`),
	"audit_events": func(ctx context.Context, tx pgx.Tx, tid uuid.UUID) error {
		_, err := tx.Exec(ctx, `INSERT INTO audit_events (tenant_id, action, actor_label) VALUES ($1, 'test.fixture', 'fixture')`, tid)
		return err
	},
	"known_devices": withUser(`INSERT INTO known_devices (tenant_id, user_id, fingerprint) VALUES ($1, $2, sha256(gen_random_uuid()::text::bytea))`),
	"mail_outbox": withUser(`INSERT INTO mail_outbox (tenant_id, user_id, template, to_address, subject)
		VALUES ($1, $2, 'verify_email', 'a@example.com', 'Hello')`),
	"rate_limits": func(ctx context.Context, tx pgx.Tx, tid uuid.UUID) error {
		_, err := tx.Exec(ctx, `INSERT INTO rate_limits (tenant_id, key, window_start, count, expires_at)
			VALUES ($1, gen_random_uuid()::text, now(), 1, now() + interval '1 hour')`, tid)
		return err
	},
	"sso_connections": func(ctx context.Context, tx pgx.Tx, tid uuid.UUID) error {
		_, err := newConnection(ctx, tx, tid)
		return err
	},
	"sso_domains": withConnection(`INSERT INTO sso_domains (tenant_id, domain, connection_id, verification_token)
		VALUES ($1, gen_random_uuid()::text || '.example', $2, 'gatehouse-verification=0123456789abcdef')`),
	"sso_identities": func(ctx context.Context, tx pgx.Tx, tid uuid.UUID) error {
		cid, err := newConnection(ctx, tx, tid)
		if err != nil {
			return err
		}
		uid, err := newUser(ctx, tx, tid)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO sso_identities (tenant_id, connection_id, name_id, user_id) VALUES ($1, $2, gen_random_uuid()::text, $3)`, tid, cid, uid)
		return err
	},
	"saml_requests": withConnection(`INSERT INTO saml_requests (tenant_id, id, connection_id, relay_hash, browser_hash, purpose, expires_at)
		VALUES ($1, '_' || md5(random()::text), $2, sha256(gen_random_uuid()::text::bytea), sha256(gen_random_uuid()::text::bytea), 'login', now() + interval '10 minutes')`),
	"sso_oidc_requests": withConnection(`INSERT INTO sso_oidc_requests (tenant_id, connection_id, state_hash, browser_hash, nonce_hash, verifier_key_id, verifier_sealed, purpose, expires_at)
		VALUES ($1, $2, sha256(gen_random_uuid()::text::bytea), sha256(gen_random_uuid()::text::bytea), sha256(gen_random_uuid()::text::bytea), 'k', '\x00', 'login', now() + interval '10 minutes')`),
	"saml_replay": withConnection(`INSERT INTO saml_replay (tenant_id, connection_id, message_id, expires_at)
		VALUES ($1, $2, md5(random()::text), now() + interval '10 minutes')`),
	"sso_attempts": withConnection(`INSERT INTO sso_attempts (tenant_id, connection_id, reference, mode, success, reason)
		VALUES ($1, $2, 'REF12345', 'login', false, 'test')`),
	"oidc_keys": func(ctx context.Context, tx pgx.Tx, tid uuid.UUID) error {
		_, err := tx.Exec(ctx, `INSERT INTO oidc_keys (tenant_id, kid, alg, key_id, private_sealed, public_jwk, active_from)
			VALUES ($1, 'k' || substr(md5(random()::text), 1, 12), 'RS256', 'k', '\x00', '{}', now())`, tid)
		return err
	},
	"apps": func(ctx context.Context, tx pgx.Tx, tid uuid.UUID) error {
		_, err := newApp(ctx, tx, tid)
		return err
	},
	"oidc_auth_requests": withApp(`INSERT INTO oidc_auth_requests (tenant_id, app_id, params, expires_at) VALUES ($1, $2, '{}', now() + interval '10 minutes')`),
	"oidc_tokens":        withApp(`INSERT INTO oidc_tokens (tenant_id, kind, app_id, expires_at) VALUES ($1, 'access', $2, now() + interval '5 minutes')`),
	"oidc_grants": func(ctx context.Context, tx pgx.Tx, tid uuid.UUID) error {
		aid, err := newApp(ctx, tx, tid)
		if err != nil {
			return err
		}
		uid, err := newUser(ctx, tx, tid)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO oidc_grants (tenant_id, user_id, app_id, scopes) VALUES ($1, $2, $3, '{openid}')`, tid, uid, aid)
		return err
	},
	"oidc_session_apps": func(ctx context.Context, tx pgx.Tx, tid uuid.UUID) error {
		aid, err := newApp(ctx, tx, tid)
		if err != nil {
			return err
		}
		uid, err := newUser(ctx, tx, tid)
		if err != nil {
			return err
		}
		var sid uuid.UUID
		if err := tx.QueryRow(ctx, `INSERT INTO sessions (tenant_id, user_id, token_hash, idle_timeout, expires_at)
			VALUES ($1, $2, sha256(gen_random_uuid()::text::bytea), interval '1 hour', now() + interval '1 hour') RETURNING id`, tid, uid).Scan(&sid); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO oidc_session_apps (tenant_id, session_id, app_id) VALUES ($1, $2, $3)`, tid, sid, aid)
		return err
	},
	"events": func(ctx context.Context, tx pgx.Tx, tid uuid.UUID) error {
		_, err := tx.Exec(ctx, `INSERT INTO events (tenant_id, type, data) VALUES ($1, 'user.created', '{}')`, tid)
		return err
	},
	"login_failures": func(ctx context.Context, tx pgx.Tx, tid uuid.UUID) error {
		_, err := tx.Exec(ctx, `INSERT INTO login_failures (tenant_id, key, failures, last_failure_at)
			VALUES ($1, gen_random_uuid()::text, 1, now())`, tid)
		return err
	},
}

func newUser(ctx context.Context, tx pgx.Tx, tid uuid.UUID) (uuid.UUID, error) {
	var id uuid.UUID
	err := tx.QueryRow(ctx, "INSERT INTO users (tenant_id, email) VALUES ($1, $2) RETURNING id", tid, uuid.NewString()+"@example.com").Scan(&id)
	return id, err
}

func newConnection(ctx context.Context, tx pgx.Tx, tid uuid.UUID) (uuid.UUID, error) {
	var id uuid.UUID
	err := tx.QueryRow(ctx, `INSERT INTO sso_connections (tenant_id, slug, name, idp_metadata, idp_entity_id, sp_key_id, sp_key_sealed, sp_cert_der)
		VALUES ($1, 'c' || substr(md5(random()::text), 1, 10), 'IdP', '<x/>', 'https://idp.example', 'k', '\x00', '\x00') RETURNING id`, tid).Scan(&id)
	return id, err
}

func newApp(ctx context.Context, tx pgx.Tx, tid uuid.UUID) (uuid.UUID, error) {
	var id uuid.UUID
	err := tx.QueryRow(ctx, `INSERT INTO apps (tenant_id, client_id, name, type) VALUES ($1, 'app_' || substr(md5(random()::text), 1, 20), 'App', 'public') RETURNING id`, tid).Scan(&id)
	return id, err
}

// withApp makes a fixture that inserts an app, then runs sql with ($1 tenant, $2 app).
func withApp(sql string) func(context.Context, pgx.Tx, uuid.UUID) error {
	return func(ctx context.Context, tx pgx.Tx, tid uuid.UUID) error {
		aid, err := newApp(ctx, tx, tid)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, sql, tid, aid)
		return err
	}
}

// withConnection makes a fixture that inserts an SSO connection, then runs sql with ($1 tenant, $2 connection).
func withConnection(sql string) func(context.Context, pgx.Tx, uuid.UUID) error {
	return func(ctx context.Context, tx pgx.Tx, tid uuid.UUID) error {
		cid, err := newConnection(ctx, tx, tid)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, sql, tid, cid)
		return err
	}
}

// withUser makes a fixture that inserts a user, then runs sql with ($1 tenant, $2 user).
func withUser(sql string) func(context.Context, pgx.Tx, uuid.UUID) error {
	return func(ctx context.Context, tx pgx.Tx, tid uuid.UUID) error {
		uid, err := newUser(ctx, tx, tid)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, sql, tid, uid)
		return err
	}
}

// appendOnly tables refuse UPDATE and DELETE to gatehouse_app altogether.
var appendOnly = []string{"audit_events"}

// definers are the reviewed SECURITY DEFINER functions (owned by gatehouse_owner, which is
// itself subject to the forced row-level security). They exist because gatehouse_app must
// not UPDATE or DELETE audit_events, nor read the pseudonym key, yet may expire events past
// the tenant's retention and pseudonymise a deleted user's events (docs/architecture.md,
// Isolation). Each must fix search_path with pg_temp last, so that a temporary table of the
// caller cannot shadow the tables they read.
var definers = []string{"audit_expire", "audit_pseudonymise"}

const policyExpr = `(tenant_id = (NULLIF(current_setting('gatehouse.tenant_id'::text, true), ''::text))::uuid)`

type tableInfo struct {
	name         string
	hasTenantID  bool
	rls, force   bool
	pkFirstIsTID bool
}

func tables(t *testing.T, ctx context.Context, d *testutil.DB) []tableInfo {
	t.Helper()
	rows, err := d.Admin.Query(ctx, `
		SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
		       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped),
		       COALESCE((SELECT a.attname = 'tenant_id' FROM pg_constraint k
		                   JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
		                  WHERE k.conrelid = c.oid AND k.contype = 'p'), false)
		  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
		 ORDER BY c.relname`)
	if err != nil {
		t.Fatal(err)
	}
	var out []tableInfo
	for rows.Next() {
		var ti tableInfo
		if err := rows.Scan(&ti.name, &ti.rls, &ti.force, &ti.hasTenantID, &ti.pkFirstIsTID); err != nil {
			t.Fatal(err)
		}
		out = append(out, ti)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTenantScopedTables checks the catalog: every table is global (listed) or carries
// tenant_id with RLS enabled and forced, the tenant policy, and tenant_id leading its
// primary key.
func TestTenantScopedTables(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	n := 0
	for _, ti := range tables(t, ctx, d) {
		if slices.Contains(globalTables, ti.name) {
			continue
		}
		n++
		t.Run(ti.name, func(t *testing.T) {
			if !ti.hasTenantID {
				t.Fatalf("table %s has no tenant_id column: make it tenant-scoped or list it in globalTables", ti.name)
			}
			if !ti.rls {
				t.Errorf("table %s: row-level security is not enabled", ti.name)
			}
			if !ti.force {
				t.Errorf("table %s: row-level security is not forced", ti.name)
			}
			if !ti.pkFirstIsTID {
				t.Errorf("table %s: primary key missing or not led by tenant_id", ti.name)
			}
			rows, err := d.Admin.Query(ctx, `SELECT policyname, permissive, cmd, COALESCE(qual, ''), COALESCE(with_check, '')
				FROM pg_policies WHERE schemaname = 'public' AND tablename = $1`, ti.name)
			if err != nil {
				t.Fatal(err)
			}
			policies := 0
			for rows.Next() {
				var name, permissive, cmd, qual, check string
				if err := rows.Scan(&name, &permissive, &cmd, &qual, &check); err != nil {
					t.Fatal(err)
				}
				policies++
				if permissive == "PERMISSIVE" && (qual != policyExpr || cmd != "ALL" && cmd != "SELECT" && check != policyExpr || cmd == "ALL" && check != policyExpr) {
					t.Errorf("table %s: policy %s (%s) is not the tenant policy:\n using %s\n check %s", ti.name, name, cmd, qual, check)
				}
			}
			if policies == 0 {
				t.Errorf("table %s has no policy", ti.name)
			}
		})
	}
	if n == 0 {
		t.Fatal("found no tenant-scoped tables: the catalog query is broken")
	}
}

// TestTenantIsolation runs raw SQL as gatehouse_app against every tenant-scoped table: with
// tenant A set nothing of tenant B can be read, changed, deleted or created; without a
// tenant every table reads empty and refuses writes; a pooled connection that served A
// sees nothing afterwards.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	a := testutil.NewTenant(t, d, "iso-a")
	b := testutil.NewTenant(t, d, "iso-b")

	for _, ti := range tables(t, ctx, d) {
		if !ti.hasTenantID {
			continue
		}
		t.Run(ti.name, func(t *testing.T) {
			seed, ok := fixtures[ti.name]
			if !ok {
				t.Fatalf("no fixture for tenant-scoped table %s: add one to fixtures", ti.name)
			}
			tx, err := d.Admin.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, tid := range []uuid.UUID{a.ID, b.ID} {
				if err := seed(ctx, tx, tid); err != nil {
					t.Fatalf("seed %s: %v", ti.name, err)
				}
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			rowOf := func(tid uuid.UUID) []byte {
				var js []byte
				q := fmt.Sprintf("SELECT row_to_json(t) FROM %s t WHERE tenant_id = $1 LIMIT 1", pgx.Identifier{ti.name}.Sanitize())
				if err := d.Admin.QueryRow(ctx, q, tid).Scan(&js); err != nil {
					t.Fatalf("read fixture: %v", err)
				}
				return js
			}
			rowA, rowB := rowOf(a.ID), rowOf(b.ID)
			tbl := pgx.Identifier{ti.name}.Sanitize()

			conn, err := pgx.Connect(ctx, d.AppURL)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)

			// inTx runs f in a transaction as gatehouse_app with the tenant set (uuid.Nil: none),
			// always rolled back so each check starts from the seeded state.
			inTx := func(tid uuid.UUID, f func(tx pgx.Tx)) {
				t.Helper()
				tx, err := conn.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback(ctx)
				if tid != uuid.Nil {
					if _, err := tx.Exec(ctx, "SELECT set_config('gatehouse.tenant_id', $1, true)", tid.String()); err != nil {
						t.Fatal(err)
					}
				}
				f(tx)
			}
			count := func(tx pgx.Tx, where string, args ...any) int {
				t.Helper()
				var n int
				if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+tbl+" "+where, args...).Scan(&n); err != nil {
					t.Fatalf("count: %v", err)
				}
				return n
			}
			exec := func(tx pgx.Tx, sql string, args ...any) (int64, error) {
				t.Helper()
				if _, err := tx.Exec(ctx, "SAVEPOINT s"); err != nil {
					t.Fatal(err)
				}
				tag, err := tx.Exec(ctx, sql, args...)
				if _, rerr := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT s"); rerr != nil {
					t.Fatal(rerr)
				}
				return tag.RowsAffected(), err
			}
			// Every column but the generated ones (which cannot be written).
			var cols string
			if err := d.Admin.QueryRow(ctx, `SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
				WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''`, tbl).Scan(&cols); err != nil {
				t.Fatal(err)
			}
			insertCopy := "INSERT INTO " + tbl + " (" + cols + ") SELECT " + cols + " FROM json_populate_record(NULL::" + tbl + ", $1::json)"

			if slices.Contains(appendOnly, ti.name) {
				inTx(a.ID, func(tx pgx.Tx) {
					for _, stmt := range []string{"UPDATE " + tbl + " SET tenant_id = tenant_id WHERE tenant_id = $1", "DELETE FROM " + tbl + " WHERE tenant_id = $1"} {
						if _, err := exec(tx, stmt, a.ID); !isPermissionDenied(err) {
							t.Errorf("append-only %s: %q as gatehouse_app: want permission denied, got %v", ti.name, stmt, err)
						}
					}
					if n := count(tx, "WHERE tenant_id = $1", b.ID); n != 0 {
						t.Errorf("SELECT: tenant A sees %d rows of tenant B", n)
					}
					if _, err := exec(tx, insertCopy, rowB); !isRLSViolation(err) {
						t.Errorf("INSERT a row for tenant B as tenant A: want an RLS violation, got %v", err)
					}
				})
				inTx(uuid.Nil, func(tx pgx.Tx) {
					if n := count(tx, ""); n != 0 {
						t.Errorf("without a tenant, SELECT sees %d rows", n)
					}
					if _, err := exec(tx, insertCopy, rowA); !isRLSViolation(err) {
						t.Errorf("without a tenant, INSERT: want an RLS violation, got %v", err)
					}
				})
				return
			}
			inTx(a.ID, func(tx pgx.Tx) {
				if n := count(tx, "WHERE tenant_id = $1", a.ID); n == 0 {
					t.Errorf("tenant A cannot see its own rows (the checks below would prove nothing)")
				}
				if n := count(tx, "WHERE tenant_id = $1", b.ID); n != 0 {
					t.Errorf("SELECT: tenant A sees %d rows of tenant B", n)
				}
				if n := count(tx, "WHERE tenant_id <> $1", a.ID); n != 0 {
					t.Errorf("SELECT: tenant A sees %d rows of other tenants", n)
				}
				if n, err := exec(tx, "UPDATE "+tbl+" SET tenant_id = tenant_id WHERE tenant_id = $1", a.ID); err != nil || n == 0 {
					t.Errorf("UPDATE own rows: %d rows, %v (gatehouse_app must be able to write its own tenant)", n, err)
				}
				if n, err := exec(tx, "UPDATE "+tbl+" SET tenant_id = tenant_id WHERE tenant_id = $1", b.ID); err != nil || n != 0 {
					t.Errorf("UPDATE: tenant A changed %d rows of tenant B (err %v)", n, err)
				}
				if n, err := exec(tx, "DELETE FROM "+tbl+" WHERE tenant_id = $1", b.ID); err != nil || n != 0 {
					t.Errorf("DELETE: tenant A deleted %d rows of tenant B (err %v)", n, err)
				}
				if _, err := exec(tx, insertCopy, rowB); !isRLSViolation(err) {
					t.Errorf("INSERT a row for tenant B as tenant A: want an RLS violation, got %v", err)
				}
				if _, err := exec(tx, "UPDATE "+tbl+" SET tenant_id = $1 WHERE tenant_id = $2", b.ID, a.ID); !isRLSViolation(err) {
					t.Errorf("UPDATE moving a row to tenant B: want an RLS violation, got %v", err)
				}
				// Control: the same INSERT for tenant A passes the policy and reaches the
				// unique key, which proves the refusal above came from RLS.
				if _, err := exec(tx, insertCopy, rowA); isRLSViolation(err) {
					t.Errorf("INSERT for tenant A was refused by RLS: %v", err)
				}
			})
			inTx(uuid.Nil, func(tx pgx.Tx) {
				if n := count(tx, ""); n != 0 {
					t.Errorf("without a tenant, SELECT sees %d rows", n)
				}
				if n, err := exec(tx, "UPDATE "+tbl+" SET tenant_id = tenant_id"); err != nil || n != 0 {
					t.Errorf("without a tenant, UPDATE changed %d rows (err %v)", n, err)
				}
				if n, err := exec(tx, "DELETE FROM "+tbl); err != nil || n != 0 {
					t.Errorf("without a tenant, DELETE removed %d rows (err %v)", n, err)
				}
				if _, err := exec(tx, insertCopy, rowA); !isRLSViolation(err) {
					t.Errorf("without a tenant, INSERT: want an RLS violation, got %v", err)
				}
			})
			// Pool reuse: the transaction-local setting is gone after commit and the same
			// connection reads '' for it, which must mean "no tenant".
			inTx(a.ID, func(tx pgx.Tx) {})
			var setting string
			if err := conn.QueryRow(ctx, "SELECT current_setting('gatehouse.tenant_id', true)").Scan(&setting); err != nil {
				t.Fatal(err)
			}
			if setting != "" {
				t.Fatalf("setting after the transaction = %q, want empty", setting)
			}
			var n int
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+tbl).Scan(&n); err != nil || n != 0 {
				t.Errorf("a reused connection without a tenant sees %d rows (err %v)", n, err)
			}
		})
	}
}

func isRLSViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42501" && strings.Contains(pe.Message, "row-level security")
}

func isPermissionDenied(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42501" && strings.Contains(pe.Message, "permission denied")
}

// TestForeignKeysIncludeTenant: every foreign key between tenant-scoped tables leads with
// tenant_id on both sides, so no row can point into another tenant.
func TestForeignKeysIncludeTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	rows, err := d.Admin.Query(ctx, `
		SELECT k.conname, src.relname, dst.relname,
		       (SELECT attname FROM pg_attribute WHERE attrelid = k.conrelid AND attnum = k.conkey[1]),
		       (SELECT attname FROM pg_attribute WHERE attrelid = k.confrelid AND attnum = k.confkey[1]),
		       EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = k.confrelid AND attname = 'tenant_id')
		  FROM pg_constraint k
		  JOIN pg_class src ON src.oid = k.conrelid
		  JOIN pg_class dst ON dst.oid = k.confrelid
		  JOIN pg_namespace n ON n.oid = src.relnamespace
		 WHERE k.contype = 'f' AND n.nspname = 'public'
		   AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = k.conrelid AND attname = 'tenant_id')`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	checked := 0
	for rows.Next() {
		var name, src, dst, srcFirst, dstFirst string
		var dstScoped bool
		if err := rows.Scan(&name, &src, &dst, &srcFirst, &dstFirst, &dstScoped); err != nil {
			t.Fatal(err)
		}
		checked++
		switch {
		case dstScoped && (srcFirst != "tenant_id" || dstFirst != "tenant_id"):
			t.Errorf("foreign key %s (%s -> %s) does not lead with tenant_id on both sides", name, src, dst)
		case !dstScoped && dst == "tenants" && srcFirst != "tenant_id":
			t.Errorf("foreign key %s (%s -> tenants) is not on tenant_id", name, src)
		case !dstScoped && dst != "tenants":
			t.Errorf("foreign key %s: tenant-scoped %s points at global table %s", name, src, dst)
		}
	}
	if checked == 0 {
		t.Fatal("no foreign keys found: users must reference tenants")
	}
}

// TestUniqueKeysIncludeTenant: unique checks bypass RLS, so a unique key without tenant_id
// would let one tenant learn about another's rows.
func TestUniqueKeysIncludeTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	rows, err := d.Admin.Query(ctx, `
		SELECT i.indexrelid::regclass::text, c.relname,
		       COALESCE((SELECT attname FROM pg_attribute WHERE attrelid = c.oid AND attnum = i.indkey[0]), '')
		  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE i.indisunique AND n.nspname = 'public'
		   AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = c.oid AND attname = 'tenant_id')`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var idx, tbl, first string
		if err := rows.Scan(&idx, &tbl, &first); err != nil {
			t.Fatal(err)
		}
		if first != "tenant_id" {
			t.Errorf("unique index %s on %s does not lead with tenant_id", idx, tbl)
		}
	}
}

// TestNoRLSBypassObjects: views run with the caller's rights and no SECURITY DEFINER
// function exists in the schema but the reviewed definers, each owned by gatehouse_owner
// with search_path fixed and ending in pg_temp (RLS could be bypassed through either).
func TestNoRLSBypassObjects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	var views, found []string
	rows, err := d.Admin.Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind IN ('v', 'm')
		  AND NOT COALESCE('security_invoker=true' = ANY (c.reloptions), false)`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v string
		_ = rows.Scan(&v)
		views = append(views, v)
	}
	rows.Close()
	rows, err = d.Admin.Query(ctx, `SELECT p.proname, r.rolname, r.rolsuper OR r.rolbypassrls,
		       COALESCE((SELECT c FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%' LIMIT 1), '')
		  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_roles r ON r.oid = p.proowner
		 WHERE n.nspname = 'public' AND p.prosecdef`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var f, owner, cfg string
		var bypass bool
		_ = rows.Scan(&f, &owner, &bypass, &cfg)
		switch {
		case !slices.Contains(definers, f):
			found = append(found, f+" (not reviewed)")
		case owner != "gatehouse_owner" || bypass:
			found = append(found, f+" (owned by "+owner+", which may bypass RLS)")
		case !strings.Contains(cfg, "search_path="):
			found = append(found, f+" (no fixed search_path)")
		case !strings.HasSuffix(strings.ReplaceAll(cfg, " ", ""), ",pg_temp"):
			found = append(found, f+" (search_path does not end with pg_temp: "+cfg+")")
		}
	}
	rows.Close()
	if len(views) > 0 {
		t.Errorf("views without security_invoker: %v", views)
	}
	if len(found) > 0 {
		t.Errorf("SECURITY DEFINER functions: %v", found)
	}
}

// TestAppRole: gatehouse_app is no superuser, has no BYPASSRLS and owns nothing.
func TestAppRole(t *testing.T) {
	t.Parallel()
	d := testutil.PackageDB(t)
	if err := d.Store.CheckAppRole(context.Background()); err != nil {
		t.Fatalf("gatehouse_app refused: %v", err)
	}
	if os.Getenv("TEST_DATABASE_URL") == "" {
		// The admin connection is a superuser: CheckAppRole must refuse it.
		st := openStore(t, d.AdminURL)
		err := st.CheckAppRole(context.Background())
		if err == nil || !contains(err.Error(), "superuser") {
			t.Fatalf("superuser connection: err = %v, want a refusal naming superuser", err)
		}
	}
}

// TestAuditDefinersStayInTenant: the two functions that may change audit rows run as the
// owner, and the forced row-level security still confines them to the caller's tenant.
func TestAuditDefinersStayInTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	a := testutil.NewTenant(t, d, "aud-a")
	b := testutil.NewTenant(t, d, "aud-b")
	actor := uuid.New() // not (or no longer) a user of either tenant
	for _, tid := range []uuid.UUID{a.ID, b.ID} {
		// Two years old: past any retention, so audit_expire may delete it.
		if _, err := d.Admin.Exec(ctx, `INSERT INTO audit_events (tenant_id, action, actor_id, actor_label, ip, user_agent, occurred_at)
			VALUES ($1, 'session.login', $2, 'ann@example.com', '192.0.2.1', 'Firefox', now() - interval '730 days')`, tid, actor); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, d.AppURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	run := func(tid uuid.UUID, sql string, args ...any) (int64, error) {
		t.Helper()
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Commit(ctx)
		if tid != uuid.Nil {
			if _, err := tx.Exec(ctx, "SELECT set_config('gatehouse.tenant_id', $1, true)", tid.String()); err != nil {
				t.Fatal(err)
			}
		}
		var n int64
		err = tx.QueryRow(ctx, sql, args...).Scan(&n)
		return n, err
	}
	if _, err := run(uuid.Nil, "SELECT events FROM audit_pseudonymise($1)", actor); err == nil || !strings.Contains(err.Error(), "no tenant") {
		t.Fatalf("without a tenant: err = %v, want a refusal", err)
	}
	if n, err := run(a.ID, "SELECT events FROM audit_pseudonymise($1)", actor); err != nil || n != 1 {
		t.Fatalf("pseudonymised %d rows in tenant A (err %v), want 1", n, err)
	}
	var label string
	var ip *string
	if err := d.Admin.QueryRow(ctx, "SELECT actor_label, host(ip) FROM audit_events WHERE tenant_id = $1", b.ID).Scan(&label, &ip); err != nil {
		t.Fatal(err)
	}
	if label != "ann@example.com" || ip == nil {
		t.Fatalf("tenant B's event was changed from tenant A: %q %v", label, ip)
	}
	if err := d.Admin.QueryRow(ctx, "SELECT actor_label, host(ip) FROM audit_events WHERE tenant_id = $1", a.ID).Scan(&label, &ip); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(label, "deleted-user:") || ip != nil {
		t.Fatalf("tenant A's event not pseudonymised: %q %v", label, ip)
	}
	if n, err := run(uuid.Nil, "SELECT audit_expire(now())"); err != nil || n != 0 {
		t.Fatalf("without a tenant audit_expire deleted %d rows (err %v)", n, err)
	}
	if n, err := run(a.ID, "SELECT audit_expire(now() + interval '1 hour')"); err != nil || n != 1 {
		t.Fatalf("expired %d rows in tenant A (err %v), want 1", n, err)
	}
	var left int
	if err := d.Admin.QueryRow(ctx, "SELECT count(*) FROM audit_events WHERE tenant_id = $1", b.ID).Scan(&left); err != nil || left != 1 {
		t.Fatalf("tenant B's events after tenant A's expiry: %d (%v)", left, err)
	}
}
