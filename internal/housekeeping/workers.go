package housekeeping

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/oidcop"
	"github.com/gatehouse-id/gatehouse/internal/sso"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// TenantPurgeWorker runs TenantPurgeArgs jobs.
type TenantPurgeWorker struct {
	river.WorkerDefaults[TenantPurgeArgs]
	tenants *tenant.Service
	logger  *slog.Logger
}

// NewTenantPurgeWorker returns the worker; it refuses a missing dependency.
func NewTenantPurgeWorker(tenants *tenant.Service, logger *slog.Logger) (*TenantPurgeWorker, error) {
	switch {
	case tenants == nil:
		return nil, errors.New("housekeeping: tenant purge: no tenant service")
	case logger == nil:
		return nil, errors.New("housekeeping: tenant purge: no logger")
	}
	return &TenantPurgeWorker{tenants: tenants, logger: logger}, nil
}

// Timeout bounds a run: purging a large tenant takes many short transactions, and a purge cut
// off here continues in the next run.
func (*TenantPurgeWorker) Timeout(*river.Job[TenantPurgeArgs]) time.Duration { return 30 * time.Minute }

// Work purges every tenant whose grace period is over.
func (w *TenantPurgeWorker) Work(ctx context.Context, _ *river.Job[TenantPurgeArgs]) error {
	n, err := w.tenants.PurgeDue(ctx)
	if n > 0 {
		w.logger.InfoContext(ctx, "purged tenants past their grace period", "count", n)
	}
	if err != nil {
		if ctx.Err() == nil {
			w.logger.ErrorContext(ctx, "tenant purge failed; the next run retries", "err", err)
		}
		return err
	}
	return nil
}

// RotationWorker runs RotationArgs jobs.
type RotationWorker struct {
	river.WorkerDefaults[RotationArgs]
	store    *store.Store
	tenants  *tenant.Service
	accounts *account.Service
	sso      *sso.Service
	oidc     *oidcop.Service
	batch    int
	logger   *slog.Logger
}

// NewRotationWorker returns the worker, which visits batch tenants per run (BatchSize in
// production); it refuses a missing dependency.
func NewRotationWorker(st *store.Store, tenants *tenant.Service, accounts *account.Service, ssoSvc *sso.Service,
	oidc *oidcop.Service, batch int, logger *slog.Logger) (*RotationWorker, error) {
	switch {
	case st == nil:
		return nil, errors.New("housekeeping: rotation: no store")
	case tenants == nil:
		return nil, errors.New("housekeeping: rotation: no tenant service")
	case accounts == nil:
		return nil, errors.New("housekeeping: rotation: no account service")
	case ssoSvc == nil:
		return nil, errors.New("housekeeping: rotation: no SSO service")
	case oidc == nil:
		return nil, errors.New("housekeeping: rotation: no OpenID Provider service")
	case logger == nil:
		return nil, errors.New("housekeeping: rotation: no logger")
	case batch < 1:
		return nil, fmt.Errorf("housekeeping: rotation: batch of %d tenants", batch)
	}
	return &RotationWorker{store: st, tenants: tenants, accounts: accounts, sso: ssoSvc, oidc: oidc, batch: batch, logger: logger}, nil
}

// Timeout bounds a run (a batch takes seconds).
func (*RotationWorker) Timeout(*river.Job[RotationArgs]) time.Duration { return 10 * time.Minute }

// Work claims the next batch of tenants and runs their housekeeping: the sweep of expired
// rows, the SSO certificate-expiry notices, the OpenID Provider's signing keys (scheduled
// rotation, retirement, deletion) and expired authorization requests and tokens, and the
// safety net for scheduled account purges. One tenant's failure does not stop the others; the run reports all of them.
func (w *RotationWorker) Work(ctx context.Context, _ *river.Job[RotationArgs]) error {
	batch, err := w.claim(ctx)
	if err != nil {
		return err
	}
	report := func(err error, msg string, args ...any) error {
		if err != nil && ctx.Err() == nil {
			w.logger.ErrorContext(ctx, msg, append(args, "err", err)...)
		}
		return err
	}
	errs := errors.Join(
		report(w.tenants.Sweep(ctx, batch), "sweep of expired rows failed; the next round retries"),
		report(w.sso.CertificateNotices(ctx, batch), "sso certificate notices failed; the next round retries"),
		report(w.oidc.Maintain(ctx, batch), "oidc key maintenance or sweep failed; the next round retries"))
	for _, t := range batch {
		_, err := w.accounts.PurgeDue(ctx, t)
		errs = errors.Join(errs, report(err, "account purge failed; the next round retries", "tenant", t.Slug))
	}
	return errs
}

// MetadataRefreshWorker runs MetadataRefreshArgs jobs.
type MetadataRefreshWorker struct {
	river.WorkerDefaults[MetadataRefreshArgs]
	tenants *tenant.Service
	sso     *sso.Service
	logger  *slog.Logger
}

// NewMetadataRefreshWorker returns the worker; it refuses a missing dependency.
func NewMetadataRefreshWorker(tenants *tenant.Service, ssoSvc *sso.Service, logger *slog.Logger) (*MetadataRefreshWorker, error) {
	switch {
	case tenants == nil:
		return nil, errors.New("housekeeping: metadata refresh: no tenant service")
	case ssoSvc == nil:
		return nil, errors.New("housekeeping: metadata refresh: no SSO service")
	case logger == nil:
		return nil, errors.New("housekeeping: metadata refresh: no logger")
	}
	return &MetadataRefreshWorker{tenants: tenants, sso: ssoSvc, logger: logger}, nil
}

// Timeout bounds a run: each fetch has its own 15 s limit, so this leaves room for a
// hundred unreachable IdPs.
func (*MetadataRefreshWorker) Timeout(*river.Job[MetadataRefreshArgs]) time.Duration {
	return 30 * time.Minute
}

// Work re-fetches every metadata URL of every tenant. A connection whose fetch fails keeps
// its last good metadata and shows the failure to its admins; the run fails only when that
// could not be recorded.
func (w *MetadataRefreshWorker) Work(ctx context.Context, _ *river.Job[MetadataRefreshArgs]) error {
	tenants, err := w.tenants.List(ctx)
	if err == nil {
		err = w.sso.RefreshMetadata(ctx, tenants)
	}
	if err != nil && ctx.Err() == nil {
		w.logger.WarnContext(ctx, "sso metadata refresh had failures", "err", err)
	}
	return err
}
