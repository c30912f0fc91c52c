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
	codeForeignKeyViolation  = "23503"
	codeCheckViolation       = "23514"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
)

// IsNotFound reports whether err is pgx.ErrNoRows.
func IsNotFound(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

// IsUniqueViolation reports whether err is a unique-constraint violation, optionally of
// the named constraint (or index).
func IsUniqueViolation(err error, constraint ...string) bool {
	return hasCode(err, codeUniqueViolation, constraint)
}

// IsForeignKeyViolation reports whether err is a foreign-key violation.
func IsForeignKeyViolation(err error) bool { return hasCode(err, codeForeignKeyViolation, nil) }

// IsCheckViolation reports whether err is a CHECK-constraint violation.
func IsCheckViolation(err error) bool { return hasCode(err, codeCheckViolation, nil) }

func hasCode(err error, code string, constraint []string) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != code {
		return false
	}
	if len(constraint) == 0 {
		return true
	}
	for _, c := range constraint {
		if pe.ConstraintName == c {
			return true
		}
	}
	return false
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
