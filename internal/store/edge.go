package store

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

// edge is the sqlcgen.DBTX every generated query runs through: the one place where the
// driver's errors become the store's (interpretError), as each query returns them. The
// pgx.Tx handed to InTenantTx and InPlatformTx closures stays raw, for code such as River
// that reads the driver's errors itself.
type edge struct{ tx pgx.Tx }

var _ sqlcgen.DBTX = edge{}

func (e edge) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := e.tx.Exec(ctx, sql, args...)
	return tag, interpretError(err)
}

func (e edge) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := e.tx.Query(ctx, sql, args...)
	if err != nil {
		return rows, interpretError(err)
	}
	return edgeRows{rows}, nil
}

func (e edge) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return edgeRow{e.tx.QueryRow(ctx, sql, args...)}
}

// edgeRow translates the error of a single-row query, where pgx reports both "no rows"
// and the statement's own failure.
type edgeRow struct{ row pgx.Row }

func (r edgeRow) Scan(dest ...any) error { return interpretError(r.row.Scan(dest...)) }

// edgeRows translates the error of a multi-row query, which pgx reports from Err once the
// rows are read (a unique violation of an INSERT … RETURNING, for instance).
type edgeRows struct{ pgx.Rows }

func (r edgeRows) Err() error { return interpretError(r.Rows.Err()) }
