package oidcop

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// ExpiredRowGrace is how long expired authorization requests and tokens are kept before
// housekeeping deletes them: a code or refresh token replayed shortly after it expired is
// still recognised as a reuse (and revokes what it issued) rather than merely unknown.
const ExpiredRowGrace = 24 * time.Hour

// Rotation is a new signing key: published now, signing from SignsFrom. The keys it
// supersedes stay published until PreviousUntil (every token they signed has expired by
// then), when housekeeping removes them. First: the tenant had no signing key; the new
// one signs at once.
type Rotation struct {
	Kid           string     `json:"kid"`
	SignsFrom     time.Time  `json:"signs_from"`
	PreviousUntil *time.Time `json:"previous_published_until,omitempty"`
	First         bool       `json:"first"`
}

// RotateKeys publishes a new signing key for the tenant (gatehouse tenant rotate-keys),
// audited as oidc.keys_rotated. It signs once every node has published it (after
// publishLead); the previous key stays published until every token it signed has expired.
func (s *Service) RotateKeys(ctx context.Context, t tenant.Tenant, who audit.Who) (Rotation, error) {
	kid, at, first, err := s.keys.rotate(ctx, t.ID, who)
	if err != nil {
		return Rotation{}, err
	}
	r := Rotation{Kid: kid, SignsFrom: at, First: first}
	if !first {
		until := at.Add(retireGrace)
		r.PreviousUntil = &until
	}
	return r, nil
}

// MaintainKeys runs the scheduled work on the tenant's signing keys: the successor of a
// key near the end of its lifetime is published (audited), superseded keys are retired
// and keys past their grace deleted. A tenant that never signed a token has no keys and
// gets none.
func (s *Service) MaintainKeys(ctx context.Context, t tenant.Tenant) (KeyMaintenance, error) {
	return s.keys.maintain(ctx, t.ID)
}

// Swept counts the expired rows SweepExpired deleted.
type Swept struct {
	AuthRequests int64
	Tokens       int64
}

// SweepExpired deletes the tenant's authorization requests and tokens that expired more
// than ExpiredRowGrace ago.
func (s *Service) SweepExpired(ctx context.Context, t tenant.Tenant) (Swept, error) {
	var out Swept
	before := s.now().Add(-ExpiredRowGrace)
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		var err error
		if out.AuthRequests, err = q.DeleteExpiredAuthRequests(ctx, before); err != nil {
			return err
		}
		out.Tokens, err = q.DeleteExpiredOIDCTokens(ctx, before)
		return err
	}, store.Idempotent())
	if err != nil {
		return Swept{}, fmt.Errorf("oidc sweep: %w", err)
	}
	return out, nil
}

// Maintain is the OpenID Provider's share of the per-tenant housekeeping (the rotation of
// internal/housekeeping): MaintainKeys and SweepExpired on each tenant of the batch. One
// tenant's failure does not stop the others; the error names each.
func (s *Service) Maintain(ctx context.Context, batch []tenant.Tenant) error {
	var errs error
	for _, t := range batch {
		m, err := s.MaintainKeys(ctx, t)
		if err != nil {
			errs = errors.Join(errs, fmt.Errorf("tenant %s: %w", t.Slug, err))
		} else if m.Rotated != "" || m.Deleted > 0 {
			s.logger.InfoContext(ctx, "oidc signing keys maintained", "tenant", t.Slug, "new_kid", m.Rotated, "retired", m.Retired, "deleted", m.Deleted)
		}
		if _, err := s.SweepExpired(ctx, t); err != nil {
			errs = errors.Join(errs, fmt.Errorf("tenant %s: %w", t.Slug, err))
		}
	}
	return errs
}
