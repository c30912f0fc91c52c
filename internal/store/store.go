// Package store owns the PostgreSQL pool and the only two ways to run queries:
// InTenant (tenant-scoped, under row-level security) and InPlatform (global tables).
// Their queries report a missing row as ErrNotFound and a unique violation as
// *UniqueViolation (see interpretError); every other error is the driver's.
package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

// Config configures the pool.
type Config struct {
	URL      string
	MaxConns int32 // 0: pgx's default (max(4, cores))
	MinConns int32
	// ExecMode selects pgx's query execution mode: "cache_statement" (default, prepared
	// statements cached per connection), "cache_describe", "describe_exec", "exec" or
	// "simple_protocol". The last three work behind PgBouncer in transaction mode.
	ExecMode       string
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// Store runs transactions against PostgreSQL.
type Store struct {
	pool       *pgxpool.Pool
	maxRetries int
	backoff    time.Duration
}

// Open connects a pool and checks it with a ping.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", redactParseError(err))
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	if cfg.MinConns > 0 {
		pc.MinConns = cfg.MinConns
	}
	mode, err := ParseExecMode(cfg.ExecMode)
	if err != nil {
		return nil, err
	}
	pc.ConnConfig.DefaultQueryExecMode = mode
	pc.ConnConfig.RuntimeParams["application_name"] = "gatehouse"
	var opts []otelpgx.Option
	if cfg.TracerProvider != nil {
		opts = append(opts, otelpgx.WithTracerProvider(cfg.TracerProvider))
	}
	if cfg.MeterProvider != nil {
		opts = append(opts, otelpgx.WithMeterProvider(cfg.MeterProvider))
	}
	pc.ConnConfig.Tracer = otelpgx.NewTracer(append(opts, otelpgx.WithTrimSQLInSpanName())...)

	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("create pool: %w", err)
	}
	if cfg.MeterProvider != nil {
		if err := otelpgx.RecordStats(pool, otelpgx.WithStatsMeterProvider(cfg.MeterProvider)); err != nil {
			pool.Close()
			return nil, fmt.Errorf("pool metrics: %w", err)
		}
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return &Store{pool: pool, maxRetries: 3, backoff: 20 * time.Millisecond}, nil
}

// ParseExecMode maps a configuration word to a pgx exec mode.
func ParseExecMode(s string) (pgx.QueryExecMode, error) {
	switch s {
	case "", "cache_statement":
		return pgx.QueryExecModeCacheStatement, nil
	case "cache_describe":
		return pgx.QueryExecModeCacheDescribe, nil
	case "describe_exec":
		return pgx.QueryExecModeDescribeExec, nil
	case "exec":
		return pgx.QueryExecModeExec, nil
	case "simple_protocol":
		return pgx.QueryExecModeSimpleProtocol, nil
	}
	return 0, fmt.Errorf("unknown query exec mode %q (want cache_statement, cache_describe, describe_exec, exec or simple_protocol)", s)
}

// redactParseError keeps a password in a malformed URL out of error messages.
func redactParseError(err error) error {
	var pe *pgconnParseError
	if errors.As(err, &pe) {
		return errors.New("invalid connection string")
	}
	return err
}

// Pool exposes the pool for infrastructure that needs raw connections (LISTEN, health).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes the pool, waiting for acquired connections to be released.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// TxOption changes how a transaction is run.
type TxOption func(*txOptions)

type txOptions struct {
	idempotent bool
	readOnly   bool
}

// Idempotent marks fn as safe to run again after a connection was lost mid-transaction
// (the outcome of a commit that never answered is unknown, so only idempotent work may be
// retried then). Serialization failures and deadlocks are retried without it: PostgreSQL
// rolled the transaction back, nothing happened.
func Idempotent() TxOption { return func(o *txOptions) { o.idempotent = true } }

// ReadOnly runs the transaction READ ONLY.
func ReadOnly() TxOption { return func(o *txOptions) { o.readOnly = true } }

// InTenant runs fn in a transaction in which gatehouse.tenant_id is set to tenantID, so
// row-level security confines every query to that tenant. It commits when fn returns nil
// and rolls back otherwise (also when ctx was cancelled).
func (s *Store) InTenant(ctx context.Context, tenantID uuid.UUID, fn func(q *sqlcgen.Queries) error, opts ...TxOption) error {
	if tenantID == uuid.Nil {
		return errors.New("store: InTenant called without a tenant")
	}
	return s.run(ctx, tenantID, func(_ pgx.Tx, q *sqlcgen.Queries) error { return fn(q) }, opts)
}

// InTenantTx is InTenant for code that also needs the transaction itself (for example to
// enqueue a job in the same transaction).
func (s *Store) InTenantTx(ctx context.Context, tenantID uuid.UUID, fn func(tx pgx.Tx, q *sqlcgen.Queries) error, opts ...TxOption) error {
	if tenantID == uuid.Nil {
		return errors.New("store: InTenantTx called without a tenant")
	}
	return s.run(ctx, tenantID, fn, opts)
}

// InPlatform runs fn in a transaction without a tenant: global tables only. Every
// tenant-scoped table reads empty and refuses writes there.
func (s *Store) InPlatform(ctx context.Context, fn func(q *sqlcgen.Queries) error, opts ...TxOption) error {
	return s.run(ctx, uuid.Nil, func(_ pgx.Tx, q *sqlcgen.Queries) error { return fn(q) }, opts)
}

func (s *Store) run(ctx context.Context, tenantID uuid.UUID, fn func(pgx.Tx, *sqlcgen.Queries) error, opts []TxOption) error {
	var o txOptions
	for _, opt := range opts {
		opt(&o)
	}
	var err error
	for attempt := 0; ; attempt++ {
		err = s.once(ctx, tenantID, fn, o)
		if err == nil || attempt >= s.maxRetries || !retryable(err, o.idempotent) || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(s.backoff << attempt)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// CountTransactions returns a context under which every transaction this package runs
// (each attempt of a retried one included) adds one to the counter: tests hold a code path
// to the number of transactions it takes.
func CountTransactions(ctx context.Context) (context.Context, *atomic.Int64) {
	n := new(atomic.Int64)
	return context.WithValue(ctx, txCountKey{}, n), n
}

type txCountKey struct{}

func (s *Store) once(ctx context.Context, tenantID uuid.UUID, fn func(pgx.Tx, *sqlcgen.Queries) error, o txOptions) (err error) {
	if n, ok := ctx.Value(txCountKey{}).(*atomic.Int64); ok {
		n.Add(1)
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{BeginQuery: beginSQL(tenantID, o.readOnly)})
	if err != nil {
		return &txError{stage: "begin", err: err}
	}
	defer func() {
		if err != nil {
			// Roll back even when ctx is already cancelled, so the connection goes back clean.
			rbCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = tx.Rollback(rbCtx)
		}
	}()
	if err := fn(tx, sqlcgen.New(edge{tx})); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return &txError{stage: "commit", err: err}
	}
	return nil
}

// beginSQL starts a transaction and, for a tenant, sets the tenant in the same round trip:
// one simple-protocol message of two statements (pgx sends a query without arguments that
// way). The tenant id is inlined, which is safe because uuid.UUID.String is hex digits and
// dashes only. A failure of either statement fails the begin, and pgxpool destroys a
// connection returned in a transaction, so a half-begun one is never reused.
func beginSQL(tenantID uuid.UUID, readOnly bool) string {
	b := "BEGIN"
	if readOnly {
		b = "BEGIN READ ONLY"
	}
	if tenantID == uuid.Nil {
		return b
	}
	return b + "; SELECT set_config('gatehouse.tenant_id', '" + tenantID.String() + "', true)"
}

// txError wraps infrastructure errors of the transaction itself with the stage they hit.
type txError struct {
	stage string
	err   error
}

func (e *txError) Error() string { return "store: " + e.stage + ": " + e.err.Error() }
func (e *txError) Unwrap() error { return e.err }

// InPlatformTx is InPlatform for code that needs the transaction itself, such as creating a
// tenant and its first rows atomically (see SetTenant).
func (s *Store) InPlatformTx(ctx context.Context, fn func(tx pgx.Tx, q *sqlcgen.Queries) error, opts ...TxOption) error {
	return s.run(ctx, uuid.Nil, fn, opts)
}

// SetTenant switches an open platform transaction to tenantID for the rest of the
// transaction. Only for bootstrapping a tenant created in the same transaction; everything
// else uses InTenant.
func SetTenant(ctx context.Context, tx pgx.Tx, tenantID uuid.UUID) error {
	if tenantID == uuid.Nil {
		return errors.New("store: SetTenant without a tenant")
	}
	if _, err := tx.Exec(ctx, "SELECT set_config('gatehouse.tenant_id', $1, true)", tenantID.String()); err != nil {
		return fmt.Errorf("set tenant: %w", err)
	}
	return nil
}
