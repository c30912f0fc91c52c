package ratelimit

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/password"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// SignedInPassword is a signed-in user's own password, checked at re-authentication and
// as the current password of a password change; the two share its counters.
type SignedInPassword struct {
	Tenant   tenant.Tenant
	UserID   uuid.UUID
	Email    string
	IP       netip.Addr // the client's, for the per-address counter (SignedInKey)
	Password string
	// Notice mails the user when this failure locks their password.
	Notice LockNotice
	// Failure is the event audited, by the user, when the password is wrong.
	Failure audit.Event
}

// CheckSignedInPassword checks c.Password against the user's stored hash through the
// gate: Begin on the counters per account and per account and client address, then
// Failed (auditing c.Failure) for a wrong password, which reports ok false. A right one
// returns the attempt, for the caller to mark Passed in the transaction that acts on it.
// Errors: rate_limited.
func (l *Limiter) CheckSignedInPassword(ctx context.Context, h *password.Hasher, c SignedInPassword) (a *Attempt, ok bool, err error) {
	a, err = l.Begin(ctx, Check{Tenant: c.Tenant, Secret: Password, Address: SignedInKey(c.UserID, c.IP),
		Account: c.UserID, Notice: c.Notice})
	if err != nil {
		return nil, false, err
	}
	var stored string
	err = l.store.InTenant(ctx, c.Tenant.ID, func(q *sqlcgen.Queries) error {
		row, err := q.GetUserWithPassword(ctx, c.Email)
		if err != nil {
			return err
		}
		if row.PasswordHash != nil {
			stored = *row.PasswordHash
		}
		return nil
	}, store.ReadOnly(), store.Idempotent())
	if err != nil {
		return nil, false, err
	}
	ok, _, err = h.Verify(ctx, c.Password, stored)
	if err != nil {
		return nil, false, fmt.Errorf("verify password: %w", err)
	}
	if !ok {
		if err := a.Failed(ctx, audit.By(ctx, c.UserID, c.Email), c.Failure); err != nil {
			return nil, false, err
		}
		return nil, false, nil
	}
	return a, true, nil
}
