package store

import (
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

type pgconnParseError = pgconn.ParseConfigError

// PostgreSQL error codes Gatehouse reacts to.
const (
	codeUniqueViolation      = "23505"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
)

// ErrNotFound is what a query that found no row returns: pgx.ErrNoRows, translated once
// at the edge (interpretError), so no domain package looks at the driver's errors.
var ErrNotFound = errors.New("store: not found")

// UniqueViolation is a write refused by a unique constraint or index, translated at the
// edge. It unwraps to the driver's *pgconn.PgError.
type UniqueViolation struct {
	Constraint string // the constraint or index, e.g. "users_tenant_email_key"
	pg         *pgconn.PgError
}

func (e *UniqueViolation) Error() string { return e.pg.Error() }
func (e *UniqueViolation) Unwrap() error { return e.pg }

// AsUniqueViolation returns the unique violation in err's chain.
func AsUniqueViolation(err error) (*UniqueViolation, bool) {
	var e *UniqueViolation
	ok := errors.As(err, &e)
	return e, ok
}

// interpretError translates the two driver errors domain code reacts to — no rows and a
// unique violation — and returns every other error as it is, so the retry and connection
// classification below still sees the driver's own errors.
func interpretError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == codeUniqueViolation {
		return &UniqueViolation{Constraint: pe.ConstraintName, pg: pe}
	}
	return err
}

// retryable decides whether a failed transaction may run again.
func retryable(err error, idempotent bool) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == codeSerializationFailure, pe.Code == codeDeadlockDetected:
			return true // rolled back by the server: nothing happened
		case strings.HasPrefix(pe.Code, "08"), pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03":
			return idempotent // connection lost or server restarting
		}
		return false
	}
	var te *txError
	if errors.As(err, &te) && te.stage == "begin" && pgconn.SafeToRetry(te.err) {
		return true // nothing was sent
	}
	if !idempotent {
		return false
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	return pgconn.SafeToRetry(err) || errors.As(err, &ne) || errors.As(err, &ce) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// Unavailable reports whether err says the database could not be reached, lost the
// connection or is shutting down or starting up (an outage, not a refusal of the query):
// job workers wait for it instead of spending an attempt.
func Unavailable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
