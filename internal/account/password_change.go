package account

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/password"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/token"
)

// ChangePassword sets a new password for the signed-in user. Every other session ends; the
// user is notified by mail. The caller has either checked the step-up rule
// password.change, or passes the current password (checked here: a wrong one is
// invalid_credentials, audited, and counted like a wrong password at re-authentication,
// with which it shares its counters). An account without a password sets its first one
// after a step-up; an address whose domain must sign in through SSO has none
// (password_managed_by_idp). Errors: invalid_credentials, weak_password,
// password_managed_by_idp, rate_limited.
func (s *Service) ChangePassword(ctx context.Context, t tenant.Tenant, p session.Principal, current, next string, steppedUp bool) (int, error) {
	// The new password first: a weak one is refused before the current password is tried,
	// so fixing it does not count as another guess.
	if ok, err := s.passwordAllowed(ctx, t, p.Email); err != nil {
		return 0, err
	} else if !ok {
		return 0, ErrPasswordManagedByIdP
	}
	if err := password.Check(next, p.Email, t.Name, t.Slug); err != nil {
		return 0, err
	}
	var attempt *ratelimit.Attempt
	if !steppedUp || current != "" {
		var err error
		if attempt, err = s.checkCurrentPassword(ctx, t, p, current); err != nil {
			return 0, err
		}
	}
	encoded, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return 0, err
	}
	var revoked [][]byte
	err = s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		if attempt != nil {
			if err := attempt.Passed(ctx, q); err != nil {
				return err
			}
		}
		if err := q.UpsertPassword(ctx, sqlcgen.UpsertPasswordParams{UserID: p.UserID, Hash: encoded}); err != nil {
			return err
		}
		if err := clearPending(ctx, q, p, tenant.ActionPasswordChange); err != nil {
			return err
		}
		var err error
		if revoked, err = s.sessions.RevokeOthersTx(ctx, tx, q, p.UserID, p.Session.ID, "password_change"); err != nil {
			return err
		}
		if err := audit.Record(ctx, q, audit.By(ctx, p.UserID, p.Email), audit.Event{Action: audit.UserPasswordChanged,
			SubjectID: p.UserID, SubjectLabel: p.Email, Details: map[string]any{"sessions_revoked": len(revoked)}}); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, q, t, p.UserID, p.Email, mail.TplPasswordChanged,
			mail.Data{Email: p.Email, Link: s.link(t, "/password/forgot", "")})
	})
	s.sessions.Invalidate(revoked)
	return len(revoked), err
}

// checkCurrentPassword checks a signed-in user's password through the gate every
// credential check shares, on the counters of re-authentication, with which it shares them
// (ratelimit.CheckSignedInPassword). It returns the attempt, to be marked passed in the
// transaction that changes the password.
func (s *Service) checkCurrentPassword(ctx context.Context, t tenant.Tenant, p session.Principal, current string) (*ratelimit.Attempt, error) {
	attempt, ok, err := s.limiter.CheckSignedInPassword(ctx, s.hasher, ratelimit.SignedInPassword{Tenant: t,
		UserID: p.UserID, Email: p.Email, IP: audit.By(ctx, p.UserID, p.Email).IP, Password: current, Notice: s.LockNotice,
		Failure: audit.Event{Action: audit.UserPasswordChangeFailed, SubjectID: p.UserID, SubjectLabel: p.Email,
			Details: map[string]any{"reason": "invalid_current_password"}}})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrInvalidCredentials
	}
	return attempt, nil
}

// SecureAccount is the "wasn't you?" link of a new-sign-in notice: it signs out every
// session and mails a password reset link. Errors: invalid_token, token_used.
func (s *Service) SecureAccount(ctx context.Context, t tenant.Tenant, tok string) error {
	hash, err := token.Parse(tok)
	if err != nil {
		return ErrInvalidToken
	}
	var revoked [][]byte
	err = s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		row, err := q.ConsumeEmailToken(ctx, sqlcgen.ConsumeEmailTokenParams{TokenHash: hash, Purposes: linkPurposes[LinkSecure]})
		if errors.Is(err, store.ErrNotFound) {
			return consumeFailed(ctx, q, hash, linkPurposes[LinkSecure])
		}
		if err != nil {
			return fmt.Errorf("consume token: %w", err)
		}
		u, err := q.GetUserByID(ctx, row.UserID)
		if err != nil {
			return err
		}
		if revoked, err = s.sessions.RevokeAllTx(ctx, tx, q, u.ID, "reported_by_user"); err != nil {
			return err
		}
		if err := audit.Record(ctx, q, audit.By(ctx, u.ID, u.Email), audit.Event{Action: audit.SessionRevoked, SubjectID: u.ID,
			SubjectLabel: u.Email, Details: map[string]any{"reason": "reported_by_user", "count": len(revoked)}}); err != nil {
			return err
		}
		reset, err := issueToken(ctx, q, u.ID, "reset_password", u.Email, s.now().Add(ResetTokenTTL))
		if err != nil {
			return err
		}
		return s.enqueue(ctx, tx, q, t, u.ID, u.Email, mail.TplResetPassword,
			mail.Data{Email: u.Email, Link: s.link(t, "/password/reset", reset), Expires: hours(ResetTokenTTL)})
	})
	s.sessions.Invalidate(revoked)
	return err
}
