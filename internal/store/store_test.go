package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

func openStore(t *testing.T, url string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{URL: url, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestInTenantCommitsAndRollsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	ten := testutil.NewTenant(t, d, "tx")

	err := d.Store.InTenant(ctx, ten.ID, func(q *sqlcgen.Queries) error {
		_, err := q.CreateUser(ctx, sqlcgen.CreateUserParams{Email: "kept@example.com"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err = d.Store.InTenant(ctx, ten.ID, func(q *sqlcgen.Queries) error {
		if _, err := q.CreateUser(ctx, sqlcgen.CreateUserParams{Email: "dropped@example.com"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	var n int64
	if err := d.Store.InTenant(ctx, ten.ID, func(q *sqlcgen.Queries) (err error) { n, err = q.CountUsers(ctx); return }); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("users = %d, want 1 (the failed transaction must leave nothing)", n)
	}
	// The same email in another tenant is another person.
	other := testutil.NewTenant(t, d, "tx-other")
	if err := d.Store.InTenant(ctx, other.ID, func(q *sqlcgen.Queries) error {
		_, err := q.CreateUser(ctx, sqlcgen.CreateUserParams{Email: "KEPT@example.com"})
		return err
	}); err != nil {
		t.Fatalf("same email in another tenant: %v", err)
	}
	// But not twice in one tenant, whatever the case.
	err = d.Store.InTenant(ctx, ten.ID, func(q *sqlcgen.Queries) error {
		_, err := q.CreateUser(ctx, sqlcgen.CreateUserParams{Email: "KEPT@example.com"})
		return err
	})
	if uv, ok := store.AsUniqueViolation(err); !ok || uv.Constraint != "users_tenant_email_key" {
		t.Fatalf("duplicate email: err = %v, want unique violation", err)
	}
}

func TestInTenantRequiresTenant(t *testing.T) {
	t.Parallel()
	d := testutil.PackageDB(t)
	err := d.Store.InTenant(context.Background(), uuid.Nil, func(*sqlcgen.Queries) error { return nil })
	if err == nil {
		t.Fatal("InTenant without a tenant must fail")
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	ten := testutil.NewTenant(t, d, "retry")

	t.Run("serialization failure is retried", func(t *testing.T) {
		attempts := 0
		err := d.Store.InTenant(ctx, ten.ID, func(q *sqlcgen.Queries) error {
			attempts++
			if attempts == 1 {
				return &pgconn.PgError{Code: "40001", Message: "could not serialize access"}
			}
			return nil
		})
		if err != nil || attempts != 2 {
			t.Fatalf("err = %v, attempts = %d; want nil after 2", err, attempts)
		}
	})
	t.Run("retries are bounded", func(t *testing.T) {
		attempts := 0
		err := d.Store.InTenant(ctx, ten.ID, func(q *sqlcgen.Queries) error {
			attempts++
			return &pgconn.PgError{Code: "40P01", Message: "deadlock detected"}
		})
		if err == nil || attempts != 4 {
			t.Fatalf("err = %v, attempts = %d; want an error after 4 attempts", err, attempts)
		}
	})
	t.Run("other errors are not retried", func(t *testing.T) {
		attempts := 0
		err := d.Store.InTenant(ctx, ten.ID, func(q *sqlcgen.Queries) error {
			attempts++
			_, err := q.CreateUser(ctx, sqlcgen.CreateUserParams{Email: "x"}) // violates the length check
			return err
		})
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "23514" || attempts != 1 {
			t.Fatalf("err = %v, attempts = %d; want one check violation", err, attempts)
		}
	})
	// The connection-drop cases get a database of their own, so terminating "the idle
	// transaction of gatehouse_app" cannot hit a parallel test's connection.
	killOnce := func(t *testing.T, opts ...store.TxOption) (int, error) {
		d := testutil.FreshDB(t)
		ten := testutil.NewTenant(t, d, "kill")
		st := openStore(t, d.AppURL)
		attempts := 0
		err := st.InTenant(ctx, ten.ID, func(q *sqlcgen.Queries) error {
			attempts++
			if attempts == 1 {
				// Drop this transaction's connection from the server side, like a failover.
				if _, err := d.Admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
					WHERE datname = current_database() AND usename = 'gatehouse_app' AND state = 'idle in transaction'`); err != nil {
					t.Fatal(err)
				}
			}
			_, err := q.CountUsers(ctx)
			return err
		}, opts...)
		return attempts, err
	}
	t.Run("dropped connection is retried for idempotent work", func(t *testing.T) {
		attempts, err := killOnce(t, store.Idempotent())
		if err != nil || attempts != 2 {
			t.Fatalf("err = %v, attempts = %d; want success on the second attempt", err, attempts)
		}
	})
	t.Run("dropped connection is not retried otherwise", func(t *testing.T) {
		attempts, err := killOnce(t)
		if err == nil || attempts != 1 {
			t.Fatalf("err = %v, attempts = %d; want the error after one attempt", err, attempts)
		}
	})
}
