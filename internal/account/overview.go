package account

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/mfa"
	"github.com/gatehouse-id/gatehouse/internal/passkey"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// Errors of an account whose identity an SSO connection manages.
var (
	ErrEmailManagedByIdP = apperr.New(apperr.Forbidden, "email_managed_by_idp",
		"Your organisation manages this address through single sign-on. Ask your administrator to change it there.")
	ErrPasswordManagedByIdP = apperr.New(apperr.Forbidden, "password_managed_by_idp",
		"Your organisation signs you in with single sign-on, so this account has no password here.")
)

// Overview is what the account page shows beside the principal: what the user may change
// here and what their organisation's IdP owns.
type Overview struct {
	MFA bool
	// HasPassword: the account has a password here (SSO-only accounts have none).
	HasPassword bool
	// PasswordAllowed: the tenant lets this address sign in with a password — false when
	// its domain must sign in through SSO (an enforcing connection on a verified domain).
	PasswordAllowed bool
	// IdPs are the enabled SSO connections the user signs in through; when there is one,
	// the IdP owns the email address (and the name).
	IdPs []string
	// Admin: the user has a role that opens the admin portal.
	Admin bool
	// Pending is the change the user asked for before a re-authentication, if it is still
	// kept (HoldChange).
	Pending *PendingChange
	// Passkeys are the user's passkeys, oldest first.
	Passkeys []passkey.Passkey
}

// EmailManaged reports whether an IdP owns the address.
func (o Overview) EmailManaged() bool { return len(o.IdPs) > 0 }

// Overview returns what the account page of p shows.
func (s *Service) Overview(ctx context.Context, t tenant.Tenant, p session.Principal) (Overview, error) {
	var o Overview
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		o = Overview{} // a retried attempt starts again
		var err error
		if o.MFA, err = mfa.Enabled(ctx, q, p.UserID); err != nil {
			return err
		}
		if o.HasPassword, err = q.UserHasPassword(ctx, p.UserID); err != nil {
			return fmt.Errorf("password: %w", err)
		}
		if o.IdPs, err = q.ListManagingConnections(ctx, p.UserID); err != nil {
			return fmt.Errorf("sso identities: %w", err)
		}
		roles, err := q.GetUserRoles(ctx, p.UserID)
		if err != nil {
			return fmt.Errorf("roles: %w", err)
		}
		o.Admin = slices.Contains(roles, authz.Owner) || slices.Contains(roles, authz.Admin)
		pc, err := pendingOf(ctx, q, p)
		o.Pending = pc
		return err
	}, store.ReadOnly(), store.Idempotent())
	if err != nil {
		return Overview{}, err
	}
	if o.Passkeys, err = s.passkeys.List(ctx, t, p); err != nil {
		return Overview{}, err
	}
	o.PasswordAllowed, err = s.passwordAllowed(ctx, t, p.Email)
	return o, err
}

// passwordAllowed reports whether the address may have a password here: not when its
// domain must sign in through SSO (the tenant's enforcing connection decides).
func (s *Service) passwordAllowed(ctx context.Context, t tenant.Tenant, email string) (bool, error) {
	err := s.requireNoSSO(ctx, t, email)
	if apperr.Is(err, "sso_required") {
		return false, nil
	}
	return err == nil, err
}

// emailManaged refuses an email change of an account an enabled SSO connection signs in.
func emailManaged(ctx context.Context, q *sqlcgen.Queries, userID uuid.UUID) error {
	idps, err := q.ListManagingConnections(ctx, userID)
	if err != nil {
		return fmt.Errorf("sso identities: %w", err)
	}
	if len(idps) > 0 {
		return ErrEmailManagedByIdP
	}
	return nil
}

// PendingChange is a change a page asked for when it first needed re-authentication:
// the action and what the user typed (an email address, or nothing — never a password).
type PendingChange struct {
	Action tenant.StepUpAction
	Value  string
}

// PendingTTL is how long a pending change is kept: as long as a fresh re-authentication
// satisfies the default rules.
const PendingTTL = 10 * time.Minute

// pendingActions are the changes a page may keep across re-authentication.
var pendingActions = []tenant.StepUpAction{tenant.ActionEmailChange, tenant.ActionAccountDelete, tenant.ActionPasswordChange}

// ErrInvalidPending answers a change that cannot be kept.
var ErrInvalidPending = apperr.New(apperr.Invalid, "invalid_request", "This change cannot be kept.")

// HoldChange keeps what the user asked for on their session for PendingTTL, so that the
// page they return to after re-authenticating still holds it (and says so). One change is
// kept per session: a new one replaces it. Errors: invalid_request.
func (s *Service) HoldChange(ctx context.Context, t tenant.Tenant, p session.Principal, action tenant.StepUpAction, value string) error {
	if !slices.Contains(pendingActions, action) || len(value) > 320 {
		return ErrInvalidPending
	}
	a := string(action)
	return s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		return q.HoldPendingChange(ctx, sqlcgen.HoldPendingChangeParams{ID: p.Session.ID, Action: &a, Value: value,
			TTLSeconds: int32(PendingTTL / time.Second)})
	})
}

// Pending returns the session's kept change, or nil.
func (s *Service) Pending(ctx context.Context, t tenant.Tenant, p session.Principal) (*PendingChange, error) {
	var pc *PendingChange
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		var err error
		pc, err = pendingOf(ctx, q, p)
		return err
	}, store.ReadOnly(), store.Idempotent())
	return pc, err
}

func pendingOf(ctx context.Context, q *sqlcgen.Queries, p session.Principal) (*PendingChange, error) {
	row, err := q.GetPendingChange(ctx, p.Session.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pending change: %w", err)
	}
	return &PendingChange{Action: tenant.StepUpAction(row.Action), Value: row.Value}, nil
}

// clearPending ends the session's pending change of action once it is made.
func clearPending(ctx context.Context, q *sqlcgen.Queries, p session.Principal, action tenant.StepUpAction) error {
	a := string(action)
	return q.ClearPendingChange(ctx, sqlcgen.ClearPendingChangeParams{ID: p.Session.ID, Action: &a})
}
