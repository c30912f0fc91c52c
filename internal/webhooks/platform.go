package webhooks

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/events"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// The operator's deliveries are rows of each tenant (a delivery belongs to its event, and
// events are the tenant's, under RLS). The operator's log, retries and test events
// therefore visit the tenants one transaction each, never one query across tenants.

// ErrTestTenant is a platform test event without a tenant to record it in.
var ErrTestTenant = apperr.New(apperr.Invalid, "webhook_test_tenant_required",
	"An operator endpoint's test event is recorded in a tenant and labelled with it: name the tenant by its slug.")

// platformTenants returns every tenant (any status: a suspended tenant's deliveries are
// still the operator's to see), after checking that the operator's endpoint id exists.
func (s *Service) platformTenants(ctx context.Context, id uuid.UUID) ([]sqlcgen.Tenant, error) {
	var out []sqlcgen.Tenant
	err := s.store.InPlatform(ctx, func(q *sqlcgen.Queries) error {
		if _, err := get(ctx, q, Platform, id); err != nil {
			return err
		}
		var err error
		out, err = q.ListTenants(ctx)
		return err
	}, store.ReadOnly())
	return out, err
}

// platformDeliveries is the operator endpoint's log: the latest limit deliveries of every
// tenant, newest first, each labelled with its tenant.
func (s *Service) platformDeliveries(ctx context.Context, id uuid.UUID, limit int) ([]Delivery, error) {
	tenants, err := s.platformTenants(ctx, id)
	if err != nil {
		return nil, err
	}
	out := []Delivery{}
	for _, t := range tenants {
		err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
			rows, err := q.ListDeliveries(ctx, sqlcgen.ListDeliveriesParams{EndpointID: id, Platform: true, Lim: int32(limit)})
			for _, r := range rows {
				d := deliveryFrom(r)
				d.Tenant = &PayloadTenant{ID: t.ID, Slug: t.Slug}
				out = append(out, d)
			}
			return err
		}, store.ReadOnly())
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b Delivery) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID.String(), b.ID.String())
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// platformRetry sets one failed delivery of the operator's endpoint back to pending, in
// whichever tenant holds it.
func (s *Service) platformRetry(ctx context.Context, id, delivery uuid.UUID) error {
	tenants, err := s.platformTenants(ctx, id)
	if err != nil {
		return err
	}
	for _, t := range tenants {
		var n int64
		err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
			var err error
			n, err = q.RetryDelivery(ctx, sqlcgen.RetryDeliveryParams{ID: delivery, EndpointID: id, Platform: true})
			return err
		})
		if err != nil {
			return err
		}
		if n > 0 {
			s.logger.InfoContext(ctx, "operator webhook delivery retried", "webhook_id", id, "delivery_id", delivery, "tenant_id", t.ID)
			return nil
		}
	}
	return ErrNotRetryable
}

// platformRetryFailed sets every failed delivery of the operator's endpoint, in every
// tenant, back to pending.
func (s *Service) platformRetryFailed(ctx context.Context, id uuid.UUID) (int, error) {
	tenants, err := s.platformTenants(ctx, id)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, t := range tenants {
		err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
			n, err := q.RetryFailedDeliveries(ctx, sqlcgen.RetryFailedDeliveriesParams{EndpointID: id, Platform: true})
			total += int(n)
			return err
		})
		if err != nil {
			return total, err
		}
	}
	s.logger.InfoContext(ctx, "operator webhook deliveries retried", "webhook_id", id, "count", total)
	return total, nil
}

// PlatformTest sends a webhook.test event to the operator's endpoint only, recorded in the
// tenant with slug and labelled with it (every delivery to the operator says whose event it
// is), and returns its delivery id. Errors: webhook_not_found, webhook_test_tenant_required,
// tenant_not_found.
func (s *Service) PlatformTest(ctx context.Context, id uuid.UUID, slug string) (uuid.UUID, error) {
	slug = strings.TrimSpace(slug)
	if slug == "" {
		return uuid.Nil, ErrTestTenant
	}
	var tenantID uuid.UUID
	err := s.store.InPlatform(ctx, func(q *sqlcgen.Queries) error {
		if _, err := get(ctx, q, Platform, id); err != nil {
			return err
		}
		t, err := q.GetTenantBySlug(ctx, slug)
		if errors.Is(err, store.ErrNotFound) {
			return tenant.ErrNotFound
		}
		tenantID = t.ID
		return err
	}, store.ReadOnly())
	if err != nil {
		return uuid.Nil, err
	}
	var delivery uuid.UUID
	err = s.store.InTenant(ctx, tenantID, func(q *sqlcgen.Queries) error {
		ev, err := events.Emit(ctx, q, events.Event{Type: events.WebhookTest, Data: events.Test{WebhookID: id, Message: "A test event from Gatehouse."}})
		if err != nil {
			return err
		}
		d, err := q.InsertDelivery(ctx, sqlcgen.InsertDeliveryParams{EventID: ev.ID, EndpointID: id, Platform: true})
		delivery = d.ID
		return err
	})
	if err == nil {
		s.logger.InfoContext(ctx, "operator webhook tested", "webhook_id", id, "tenant_id", tenantID, "delivery_id", delivery)
	}
	return delivery, err
}
