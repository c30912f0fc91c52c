package account

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/mfa"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// The callers (HTTP handlers) check the step-up rules (mfa.enroll, mfa.disable,
// recovery_codes.regenerate) before these run.

// EnrollTOTP starts TOTP set-up for the signed-in user.
func (s *Service) EnrollTOTP(ctx context.Context, t tenant.Tenant, p session.Principal) (mfa.Enrollment, error) {
	return s.mfa.Enroll(ctx, t.ID, p.UserID, t.DisplayName(), p.Email)
}

// PendingTOTP returns the signed-in user's pending set-up again (the same secret and QR
// code) for another try. The caller checks the mfa.enroll step-up first: whoever may see
// the secret could also start a new set-up. Errors: mfa_not_enrolled, mfa_already_enabled.
func (s *Service) PendingTOTP(ctx context.Context, t tenant.Tenant, p session.Principal) (mfa.Enrollment, error) {
	return s.mfa.Pending(ctx, t.ID, p.UserID, t.DisplayName(), p.Email)
}

// MFAStatus is the signed-in user's second factor and unused recovery codes.
func (s *Service) MFAStatus(ctx context.Context, t tenant.Tenant, p session.Principal) (mfa.Status, error) {
	return s.mfa.Status(ctx, t.ID, p.UserID)
}

// ConfirmTOTP activates TOTP with a current code, tells the user by mail and returns the
// ten recovery codes (shown only now). The code is checked like every second-factor code
// (ratelimit.Begin): wrong ones are audited and count toward the account's delay and lock,
// and leave the set-up pending with the same secret. Errors: invalid_code, mfa_not_enrolled,
// mfa_already_enabled, rate_limited.
func (s *Service) ConfirmTOTP(ctx context.Context, t tenant.Tenant, p session.Principal, code string) ([]string, error) {
	who := audit.By(ctx, p.UserID, p.Email)
	attempt, err := s.limiter.Begin(ctx, ratelimit.Check{Tenant: t, Secret: ratelimit.SecondFactor,
		Address: ratelimit.SignedInKey(p.UserID, who.IP), Account: p.UserID, Notice: s.LockNotice})
	if err != nil {
		return nil, err
	}
	codes, err := s.mfa.Confirm(ctx, t.ID, p.UserID, code)
	if err != nil {
		if mfa.WrongCode(err) {
			if ferr := attempt.Failed(ctx, who, audit.Event{Action: audit.MFAConfirmFailed, SubjectID: p.UserID,
				SubjectLabel: p.Email, Details: map[string]any{"reason": apperr.From(err).Code}}); ferr != nil {
				return nil, ferr
			}
		}
		return nil, err
	}
	err = s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		if err := attempt.Passed(ctx, q); err != nil {
			return err
		}
		if err := audit.Record(ctx, q, who, audit.Event{Action: audit.MFAEnabled, SubjectID: p.UserID, SubjectLabel: p.Email}); err != nil {
			return err
		}
		return s.securityNotice(ctx, tx, q, t, p.UserID, p.Email, "Two-factor authentication turned on",
			"from now on, signing in asks for a code from your authenticator app after your password.")
	})
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// DisableTOTP turns TOTP off (and drops the recovery codes) and tells the user by mail.
// Errors: mfa_not_enabled.
func (s *Service) DisableTOTP(ctx context.Context, t tenant.Tenant, p session.Principal) error {
	return s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		if err := mfa.Disable(ctx, q, p.UserID); err != nil {
			return err
		}
		if err := audit.Record(ctx, q, audit.By(ctx, p.UserID, p.Email), audit.Event{Action: audit.MFADisabled, SubjectID: p.UserID, SubjectLabel: p.Email}); err != nil {
			return err
		}
		return s.securityNotice(ctx, tx, q, t, p.UserID, p.Email, "Two-factor authentication turned off",
			"signing in now needs only your password.")
	})
}

// RegenerateRecoveryCodes replaces the recovery codes and tells the user by mail.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, t tenant.Tenant, p session.Principal) ([]string, error) {
	codes, err := s.mfa.RegenerateRecoveryCodes(ctx, t.ID, p.UserID)
	if err != nil {
		return nil, err
	}
	err = s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		if err := audit.Record(ctx, q, audit.By(ctx, p.UserID, p.Email), audit.Event{Action: audit.MFARecoveryRenewed, SubjectID: p.UserID, SubjectLabel: p.Email}); err != nil {
			return err
		}
		return s.securityNotice(ctx, tx, q, t, p.UserID, p.Email, "New recovery codes",
			"your recovery codes were replaced; the old ones no longer work.")
	})
	return codes, err
}

// AdminResetMFA removes a user's second factor on an administrator's request (the caller
// checked the permission and the administrator's step-up), ends the user's sessions and
// tells the user by mail. Errors: mfa_not_enabled.
func (s *Service) AdminResetMFA(ctx context.Context, t tenant.Tenant, userID uuid.UUID, by audit.Who) error {
	var revoked [][]byte
	err := s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		u, err := q.GetUserByID(ctx, userID)
		if err != nil {
			return err
		}
		if err := mfa.Disable(ctx, q, userID); err != nil {
			return err
		}
		if revoked, err = s.sessions.RevokeAllTx(ctx, tx, q, userID, "admin_mfa_reset"); err != nil {
			return err
		}
		if err := audit.Record(ctx, q, by, audit.Event{Action: audit.MFADisabled, SubjectID: u.ID, SubjectLabel: u.Email,
			Details: map[string]any{"by_admin": true}}); err != nil {
			return err
		}
		return s.securityNotice(ctx, tx, q, t, u.ID, u.Email, "Two-factor authentication reset by an administrator",
			"your second factor was removed and every session signed out; set it up again after signing in.")
	})
	s.sessions.Invalidate(revoked)
	return err
}

// AdminResendVerification mails a new verification link to an unverified user (at most
// one a minute and five an hour per address). It answers nil also when nothing was sent.
func (s *Service) AdminResendVerification(ctx context.Context, t tenant.Tenant, userID uuid.UUID) error {
	var email string
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		u, err := q.GetUserByID(ctx, userID)
		email = u.Email
		return err
	}, store.ReadOnly(), store.Idempotent())
	if err != nil {
		return err
	}
	return s.resendVerification(ctx, t, email)
}
