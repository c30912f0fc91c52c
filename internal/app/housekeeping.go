package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

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
