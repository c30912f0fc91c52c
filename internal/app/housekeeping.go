package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/gatehouse-id/gatehouse/internal/housekeeping"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// housekeepingJobs adds the housekeeping workers to workers and returns their periodic
// jobs (River runs them on the elected leader only: once per cluster).
func (a *App) housekeepingJobs(workers *river.Workers) ([]*river.PeriodicJob, error) {
	purge, err := housekeeping.NewTenantPurgeWorker(a.Tenants, a.logger)
	if err != nil {
		return nil, err
	}
	rotation, err := housekeeping.NewRotationWorker(a.store, a.Tenants, a.Accounts, a.SSO, a.OIDC, housekeeping.BatchSize, a.logger)
	if err != nil {
		return nil, err
	}
	refresh, err := housekeeping.NewMetadataRefreshWorker(a.Tenants, a.SSO, a.logger)
	if err != nil {
		return nil, err
	}
	river.AddWorker(workers, purge)
	river.AddWorker(workers, rotation)
	river.AddWorker(workers, refresh)
	return housekeeping.PeriodicJobs(housekeeping.Schedule{Maintenance: housekeeping.Interval, MetadataRefresh: a.cfg.MetadataRefresh}), nil
}

// gaugeLoop recounts, on every node, the active sessions and the SSO certificate expiries of
// a rotating batch of housekeeping.BatchSize tenants a minute. It stays per node: the counts
// live in this process and feed the gauges it exports (gatehouse.sessions.active,
// gatehouse.sso.certificates; dashboards take the max over nodes). Counted by a cluster job,
// they would land on whichever node worked it, and the other nodes would export a stale or
// partial sum. The counts are read-only; the batch keeps their load bounded.
func (a *App) gaugeLoop(ctx context.Context) {
	t := time.NewTicker(housekeeping.Interval)
	defer t.Stop()
	var after *uuid.UUID
	for {
		if tenants, err := a.Tenants.List(ctx); err == nil {
			var batch []tenant.Tenant
			batch, after = housekeeping.NextBatch(tenants, after, housekeeping.BatchSize)
			a.countGauges(ctx, batch, tenants)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *App) countGauges(ctx context.Context, batch, all []tenant.Tenant) {
	if err := a.SSO.CountCertificateExpiries(ctx, batch, all); err != nil && ctx.Err() == nil {
		a.logger.Warn("counting sso certificate expiries failed; will retry", "err", err)
	}
	if err := a.countActiveSessions(ctx, batch, all); err != nil && ctx.Err() == nil {
		a.logger.Warn("counting active sessions failed; will retry", "err", err)
	}
}

// countActiveSessions refreshes the active-session count of each tenant of the batch.
func (a *App) countActiveSessions(ctx context.Context, batch, all []tenant.Tenant) error {
	counted := make(map[uuid.UUID]int64, len(batch))
	var errs error
	for _, t := range batch {
		err := a.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
			n, err := q.CountActiveSessions(ctx)
			counted[t.ID] = n
			return err
		}, store.ReadOnly(), store.Idempotent())
		if err != nil {
			delete(counted, t.ID)
			errs = errors.Join(errs, fmt.Errorf("count active sessions of %s: %w", t.Slug, err))
		}
	}
	a.activeSessions.Update(counted, tenantIDs(all))
	return errs
}

func tenantIDs(ts []tenant.Tenant) []uuid.UUID {
	ids := make([]uuid.UUID, len(ts))
	for i, t := range ts {
		ids[i] = t.ID
	}
	return ids
}
