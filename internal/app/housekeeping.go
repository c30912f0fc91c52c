package app

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// tenantCounts keeps one number per tenant, refreshed a batch of tenants at a time by the
// housekeeping rotation, for gauges that sum over every tenant (a cross-tenant count is
// not possible for the application role under row-level security).
type tenantCounts struct {
	mu     sync.Mutex
	counts map[uuid.UUID]int64
}

// update stores the batch's counts and forgets tenants not in all (deleted).
func (c *tenantCounts) update(counted map[uuid.UUID]int64, all []tenant.Tenant) {
	keep := make(map[uuid.UUID]bool, len(all))
	for _, t := range all {
		keep[t.ID] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[uuid.UUID]int64{}
	}
	for id, n := range counted {
		c.counts[id] = n
	}
	for id := range c.counts {
		if !keep[id] {
			delete(c.counts, id)
		}
	}
}

// sum is the total over the tenants counted so far; ok is false before the first count.
func (c *tenantCounts) sum() (total int64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.counts {
		total += n
	}
	return total, c.counts != nil
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
	a.activeSessions.update(counted, all)
	return errs
}
