package housekeeping

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// claim takes the next batch of tenants and moves the stored position past it, in one
// transaction holding the position's row lock: two runs at once (a slow one overlapping the
// next) take different batches. A run that fails after claiming does not give its batch
// back; the next round visits those tenants again.
func (w *RotationWorker) claim(ctx context.Context) ([]tenant.Tenant, error) {
	all, err := w.tenants.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("rotation: %w", err)
	}
	var batch []tenant.Tenant
	err = w.store.InPlatform(ctx, func(q *sqlcgen.Queries) error {
		after, err := q.LockRotation(ctx)
		if err != nil {
			return err
		}
		var last *uuid.UUID
		batch, last = NextBatch(all, after, w.batch)
		return q.SetRotation(ctx, last)
	})
	if err != nil {
		return nil, fmt.Errorf("rotation: claim the next batch: %w", err)
	}
	return batch, nil
}

// NextBatch returns the n tenants that follow the tenant id after in id order, wrapping
// around at the end, and the id to continue after. With n tenants or fewer it returns all of
// them and nil (start over). Ordering by id rather than by position in the list keeps the
// rotation in step when tenants are created or deleted between runs; after need not be a
// tenant that still exists.
func NextBatch(tenants []tenant.Tenant, after *uuid.UUID, n int) ([]tenant.Tenant, *uuid.UUID) {
	if len(tenants) <= n {
		return tenants, nil
	}
	sorted := slices.Clone(tenants)
	slices.SortFunc(sorted, func(a, b tenant.Tenant) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	from := 0
	if after != nil {
		i, found := slices.BinarySearchFunc(sorted, *after, func(t tenant.Tenant, id uuid.UUID) int {
			return bytes.Compare(t.ID[:], id[:])
		})
		if found {
			i++
		}
		from = i % len(sorted)
	}
	batch := make([]tenant.Tenant, 0, max(n, 0))
	for i := range max(n, 0) {
		batch = append(batch, sorted[(from+i)%len(sorted)])
	}
	if len(batch) == 0 {
		return nil, after
	}
	last := batch[len(batch)-1].ID
	return batch, &last
}
