package tenant

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/emailaddr"
	"github.com/gatehouse-id/gatehouse/internal/events"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

// Service manages tenants. Every change notifies the other nodes (channel
// gatehouse_tenant_changed) in the same transaction, so their resolvers drop stale entries.
type Service struct {
	store *store.Store
	now   func() time.Time
}

// NewService returns a tenant service. now is the clock (time.Now outside tests).
func NewService(st *store.Store, now func() time.Time) *Service {
	return &Service{store: st, now: now}
}

// ChangedChannel is the NOTIFY channel for tenant changes; the payload is the slug.
const ChangedChannel = "gatehouse_tenant_changed"

// CreateInput is what creating a tenant takes.
type CreateInput struct {
	Slug       string
	Name       string
	AdminEmail string  // optional: the first owner's user row is created with the tenant
	Policy     *Policy // nil: defaults
}

// Created is the result of Create.
type Created struct {
	Tenant      Tenant
	AdminUserID uuid.UUID // uuid.Nil without AdminEmail
}

// ErrSlugTaken answers a slug that is in use.
var ErrSlugTaken = apperr.New(apperr.Conflict, "tenant_exists", "A tenant with this slug already exists.")

// Create creates a tenant and, when AdminEmail is set, its first user, atomically.
// Errors: invalid_slug, invalid_name, invalid_email, invalid_policy, tenant_exists.
func (s *Service) Create(ctx context.Context, in CreateInput) (Created, error) {
	in.Slug = strings.ToLower(strings.TrimSpace(in.Slug))
	if err := ValidateSlug(in.Slug); err != nil {
		return Created{}, err
	}
	name, err := validateName(in.Name)
	if err != nil {
		return Created{}, err
	}
	policy := DefaultPolicy()
	if in.Policy != nil {
		policy = *in.Policy
	}
	if err := policy.Validate(); err != nil {
		return Created{}, err
	}
	var adminEmail string
	if in.AdminEmail != "" {
		if adminEmail, err = emailaddr.Normalize(in.AdminEmail); err != nil {
			return Created{}, err
		}
	}
	var out Created
	err = s.store.InPlatformTx(ctx, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		row, err := q.CreateTenant(ctx, sqlcgen.CreateTenantParams{
			Slug: in.Slug, Name: name, Status: StatusActive, Policy: policy.JSON(),
		})
		if _, ok := store.AsUniqueViolation(err); ok {
			return ErrSlugTaken
		}
		if err != nil {
			return fmt.Errorf("insert tenant: %w", err)
		}
		out.Tenant = fromRow(row)
		if adminEmail != "" {
			if err := store.SetTenant(ctx, tx, row.ID); err != nil {
				return err
			}
			u, err := q.CreateUser(ctx, sqlcgen.CreateUserParams{Email: adminEmail})
			if err != nil {
				return fmt.Errorf("insert admin user: %w", err)
			}
			out.AdminUserID = u.ID
			if err := events.EmitUserCreated(ctx, q, u, events.SourceOperator); err != nil {
				return err
			}
			if err := authz.Grant(ctx, q, u.ID, authz.Owner); err != nil {
				return err
			}
		}
		return q.NotifyTenantChanged(ctx, row.Slug)
	})
	return out, err
}

func validateName(n string) (string, error) {
	n = strings.TrimSpace(n)
	if n == "" || utf8.RuneCountInString(n) > 200 || !utf8.ValidString(n) || strings.ContainsAny(n, "\x00\r\n") {
		return "", apperr.New(apperr.Invalid, "invalid_name", "A tenant name is 1-200 characters on one line.")
	}
	return n, nil
}

// Get returns the tenant with slug, whatever its status. Errors: tenant_not_found.
func (s *Service) Get(ctx context.Context, slug string) (Tenant, error) {
	var t Tenant
	err := s.store.InPlatform(ctx, func(q *sqlcgen.Queries) error {
		row, err := q.GetTenantBySlug(ctx, strings.ToLower(slug))
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("get tenant: %w", err)
		}
		t = fromRow(row)
		return nil
	}, store.ReadOnly(), store.Idempotent())
	return t, err
}

// List returns every tenant ordered by slug.
func (s *Service) List(ctx context.Context) ([]Tenant, error) {
	var out []Tenant
	err := s.store.InPlatform(ctx, func(q *sqlcgen.Queries) error {
		rows, err := q.ListTenants(ctx)
		if err != nil {
			return fmt.Errorf("list tenants: %w", err)
		}
		out = make([]Tenant, 0, len(rows))
		for _, r := range rows {
			out = append(out, fromRow(r))
		}
		return nil
	}, store.ReadOnly(), store.Idempotent())
	return out, err
}

// SetStatus suspends or re-activates a tenant. A suspended tenant's hosts answer 404 on
// every node at once. Errors: tenant_not_found, invalid_status.
func (s *Service) SetStatus(ctx context.Context, slug, status string) (Tenant, error) {
	if status != StatusActive && status != StatusSuspended {
		return Tenant{}, apperr.New(apperr.Invalid, "invalid_status", "Status must be active or suspended.")
	}
	var t Tenant
	err := s.store.InPlatform(ctx, func(q *sqlcgen.Queries) error {
		cur, err := q.GetTenantBySlug(ctx, slug)
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("get tenant: %w", err)
		}
		if cur.PurgeAfter != nil && status == StatusActive {
			return apperr.New(apperr.Conflict, "tenant_pending_purge", "This tenant is scheduled for deletion and cannot be re-activated.")
		}
		row, err := q.SetTenantStatus(ctx, sqlcgen.SetTenantStatusParams{Slug: slug, Status: status})
		if err != nil {
			return fmt.Errorf("set tenant status: %w", err)
		}
		t = fromRow(row)
		return q.NotifyTenantChanged(ctx, slug)
	}, store.Idempotent())
	return t, err
}

// Delete suspends the tenant at once and schedules the purge of all its rows after grace;
// grace 0 purges now. Errors: tenant_not_found, invalid_grace.
func (s *Service) Delete(ctx context.Context, slug string, grace time.Duration) (Tenant, error) {
	if grace < 0 {
		return Tenant{}, apperr.New(apperr.Invalid, "invalid_grace", "The grace period cannot be negative.")
	}
	var t Tenant
	err := s.store.InPlatform(ctx, func(q *sqlcgen.Queries) error {
		row, err := q.ScheduleTenantPurge(ctx, sqlcgen.ScheduleTenantPurgeParams{Slug: slug, PurgeAfter: ptr(s.now().Add(grace))})
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("schedule tenant purge: %w", err)
		}
		t = fromRow(row)
		return q.NotifyTenantChanged(ctx, slug)
	})
	if err != nil || grace > 0 {
		return t, err
	}
	return t, s.purge(ctx, t.ID, t.Slug)
}

// purge deletes a suspended tenant's users in short batches (each its own transaction,
// so no long lock blocks other tenants), then the tenant row, which cascades through
// everything left, and in the same transaction the River job rows whose args name the
// tenant.
func (s *Service) purge(ctx context.Context, id uuid.UUID, slug string) error {
	for {
		var n int64
		err := s.store.InTenant(ctx, id, func(q *sqlcgen.Queries) error {
			var err error
			n, err = q.DeleteUsersBatch(ctx)
			return err
		})
		if err != nil {
			return fmt.Errorf("purge tenant %s: %w", slug, err)
		}
		if n == 0 {
			break
		}
	}
	return s.store.InPlatformTx(ctx, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		if _, err := q.DeleteTenant(ctx, id); err != nil {
			return fmt.Errorf("purge tenant %s: %w", slug, err)
		}
		// After the tenant row (read committed: each statement sees what committed before
		// it): deleting it waited for any transaction still writing the tenant's rows, and
		// so adding a job for it, and no such transaction can commit afterwards.
		if _, err := tx.Exec(ctx, deleteTenantJobs, id.String()); err != nil {
			return fmt.Errorf("purge tenant %s: delete its jobs: %w", slug, err)
		}
		return q.NotifyTenantChanged(ctx, slug)
	})
}

// deleteTenantJobs removes every River job row whose args name the tenant (args carry
// tenant_id; the containment test uses River's GIN index on args). That includes finished
// rows, which River would otherwise keep for its retention period, and pending ones: a job
// of a tenant that no longer exists has nothing to do (the workers treat a missing tenant
// as done). A job running right now loses its row too; River then records its outcome on
// no row, so it neither stays behind as completed nor is retried. River's tables are not in
// the sqlc schema, hence the literal query.
const deleteTenantJobs = `DELETE FROM river_job WHERE args @> jsonb_build_object('tenant_id', $1::text)`

// PurgeDue deletes every tenant whose grace period is over, with all of its rows, and
// returns how many it purged. Safe to run on several nodes at once.
func (s *Service) PurgeDue(ctx context.Context) (int, error) {
	var due []sqlcgen.Tenant
	err := s.store.InPlatform(ctx, func(q *sqlcgen.Queries) error {
		var err error
		due, err = q.ListTenantsDueForPurge(ctx)
		return err
	}, store.ReadOnly(), store.Idempotent())
	if err != nil {
		return 0, fmt.Errorf("list tenants due for purge: %w", err)
	}
	for i, t := range due {
		if err := s.purge(ctx, t.ID, t.Slug); err != nil {
			return i, err
		}
	}
	return len(due), nil
}

// CountUsers returns the number of users of a tenant (for operators and tests).
func (s *Service) CountUsers(ctx context.Context, tenantID uuid.UUID) (int64, error) {
	var n int64
	err := s.store.InTenant(ctx, tenantID, func(q *sqlcgen.Queries) error {
		var err error
		n, err = q.CountUsers(ctx)
		return err
	}, store.ReadOnly(), store.Idempotent())
	return n, err
}

func ptr[T any](v T) *T { return &v }

// IsNotFound reports whether err means "no such tenant".
func IsNotFound(err error) bool {
	return errors.Is(err, ErrNotFound) || apperr.Is(err, "tenant_not_found")
}

// GetByID returns the tenant with id, whatever its status. Errors: tenant_not_found.
func (s *Service) GetByID(ctx context.Context, id uuid.UUID) (Tenant, error) {
	var t Tenant
	err := s.store.InPlatform(ctx, func(q *sqlcgen.Queries) error {
		row, err := q.GetTenantByID(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("get tenant: %w", err)
		}
		t = fromRow(row)
		return nil
	}, store.ReadOnly(), store.Idempotent())
	return t, err
}

// Sweep deletes expired rate-limit counters, stale login failures, dead sessions,
// long-expired email tokens and audit events past the tenant's retention, one tenant
// transaction each.
func (s *Service) Sweep(ctx context.Context, tenants []Tenant) error {
	for _, t := range tenants {
		id := t.ID
		retention := time.Duration(t.Policy.Audit.RetentionDays) * 24 * time.Hour
		err := s.store.InTenant(ctx, id, func(q *sqlcgen.Queries) error {
			if _, err := q.ExpireAuditEvents(ctx, s.now().Add(-retention)); err != nil {
				return err
			}
			// Events (and their webhook deliveries) past the tenant's retention, 30 days by default.
			if _, err := q.ExpireEvents(ctx, s.now()); err != nil {
				return err
			}
			if _, err := q.DeleteExpiredRateLimits(ctx); err != nil {
				return err
			}
			if _, err := q.DeleteStaleLoginFailures(ctx); err != nil {
				return err
			}
			if _, err := q.DeleteDeadSessions(ctx); err != nil {
				return err
			}
			if err := q.DeleteExpiredSAMLState(ctx); err != nil {
				return err
			}
			if err := q.DeleteExpiredOIDCRequests(ctx); err != nil {
				return err
			}
			// SCIM request logs are kept 30 days (docs/scim.md).
			if _, err := q.DeleteOldDirectoryRequests(ctx, s.now().Add(-30*24*time.Hour)); err != nil {
				return err
			}
			if _, err := q.DeleteOldPasskeyChallenges(ctx); err != nil {
				return err
			}
			_, err := q.DeleteExpiredEmailTokens(ctx)
			return err
		}, store.Idempotent())
		if err != nil {
			return fmt.Errorf("sweep tenant %s: %w", id, err)
		}
	}
	return nil
}

// UpdatePolicy validates and stores a tenant's policy on behalf of by, records the change
// in the tenant's audit log (policy.updated, and branding.updated when the branding part
// changed) in the same transaction, and tells every node. Errors: invalid_policy,
// tenant_not_found.
func (s *Service) UpdatePolicy(ctx context.Context, id uuid.UUID, p Policy, by audit.Who) (Tenant, error) {
	if err := p.Validate(); err != nil {
		return Tenant{}, err
	}
	var t Tenant
	err := s.store.InTenant(ctx, id, func(q *sqlcgen.Queries) error {
		cur, err := q.GetTenantByID(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		row, err := q.UpdateTenant(ctx, sqlcgen.UpdateTenantParams{ID: id, Name: cur.Name, Status: cur.Status, Policy: p.JSON()})
		if err != nil {
			return fmt.Errorf("update policy: %w", err)
		}
		t = fromRow(row)
		if err := recordPolicyChange(ctx, q, by, fromRow(cur).Policy, p); err != nil {
			return err
		}
		return q.NotifyTenantChanged(ctx, row.Slug)
	})
	return t, err
}

// recordPolicyChange audits a policy change: branding.updated for the branding, and
// policy.updated with the whole new policy when anything else changed.
func recordPolicyChange(ctx context.Context, q *sqlcgen.Queries, by audit.Who, old, p Policy) error {
	if old.Branding != p.Branding {
		if err := audit.Record(ctx, q, by, audit.Event{Action: audit.BrandingUpdated, Details: map[string]any{"branding": p.Branding}}); err != nil {
			return err
		}
	}
	ob, nb := old, p
	ob.Branding, nb.Branding = Branding{}, Branding{}
	if string(ob.JSON()) != string(nb.JSON()) {
		return audit.Record(ctx, q, by, audit.Event{Action: audit.PolicyUpdated, Details: map[string]any{"policy": p}})
	}
	return nil
}
