package store_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestQueriesReturnTranslatedErrors: a query's "no rows" and unique violation reach domain
// code, inside the closure and out of InTenant, as the store's errors (the constraint
// named), never as the driver's, and a unique violation is not retried.
func TestQueriesReturnTranslatedErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	ten := testutil.NewTenant(t, d, "interpret")

	t.Run("no rows is ErrNotFound", func(t *testing.T) {
		var inside error
		err := d.Store.InTenant(ctx, ten.ID, func(q *sqlcgen.Queries) error {
			_, inside = q.GetUserByID(ctx, uuid.New())
			return inside
		}, store.ReadOnly())
		if !errors.Is(inside, store.ErrNotFound) {
			t.Errorf("inside the transaction: err = %v, want store.ErrNotFound", inside)
		}
		if !errors.Is(err, store.ErrNotFound) || errors.Is(err, pgx.ErrNoRows) {
			t.Errorf("out of InTenant: err = %v, want store.ErrNotFound and not pgx.ErrNoRows", err)
		}
		if _, ok := store.AsUniqueViolation(err); ok {
			t.Errorf("a missing row is not a unique violation: %v", err)
		}
	})

	unique := func(t *testing.T, insert func(q *sqlcgen.Queries) error, constraint string) {
		t.Helper()
		if err := d.Store.InTenant(ctx, ten.ID, insert); err != nil {
			t.Fatalf("first insert: %v", err)
		}
		attempts := 0
		var inside error
		err := d.Store.InTenant(ctx, ten.ID, func(q *sqlcgen.Queries) error {
			attempts++
			inside = insert(q)
			return inside
		})
		if _, ok := store.AsUniqueViolation(inside); !ok {
			t.Errorf("inside the transaction: err = %v, want a unique violation", inside)
		}
		uv, ok := store.AsUniqueViolation(err)
		if !ok || uv.Constraint != constraint {
			t.Fatalf("out of InTenant: err = %v (unique violation %v), want one of %s", err, ok, constraint)
		}
		if attempts != 1 {
			t.Errorf("attempts = %d, want 1: a unique violation is not retried", attempts)
		}
		// The driver's error stays in the chain for logs and the retry classification.
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "23505" {
			t.Errorf("err = %v, want it to unwrap to the PgError 23505", err)
		}
		if errors.Is(err, store.ErrNotFound) {
			t.Errorf("a unique violation is not ErrNotFound: %v", err)
		}
	}
	t.Run("unique violation of a row query", func(t *testing.T) {
		unique(t, func(q *sqlcgen.Queries) error {
			_, err := q.CreateUser(ctx, sqlcgen.CreateUserParams{Email: "twice@example.com"})
			return err
		}, "users_tenant_email_key")
	})
	t.Run("unique violation of an exec", func(t *testing.T) {
		var userID uuid.UUID
		if err := d.Store.InTenant(ctx, ten.ID, func(q *sqlcgen.Queries) error {
			u, err := q.CreateUser(ctx, sqlcgen.CreateUserParams{Email: "codes@example.com"})
			userID = u.ID
			return err
		}); err != nil {
			t.Fatal(err)
		}
		hash := bytes.Repeat([]byte{7}, 32)
		unique(t, func(q *sqlcgen.Queries) error {
			return q.InsertRecoveryCode(ctx, sqlcgen.InsertRecoveryCodeParams{UserID: userID, CodeHash: hash})
		}, "recovery_codes_pkey")
	})
	t.Run("other errors are the driver's", func(t *testing.T) {
		err := d.Store.InTenant(ctx, ten.ID, func(q *sqlcgen.Queries) error {
			_, err := q.CreateUser(ctx, sqlcgen.CreateUserParams{Email: "x"}) // violates the length check
			return err
		})
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "23514" {
			t.Fatalf("err = %v, want the PgError 23514", err)
		}
		if _, ok := store.AsUniqueViolation(err); ok || errors.Is(err, store.ErrNotFound) {
			t.Errorf("a check violation was translated: %v", err)
		}
	})
}
