package account

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/password"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/token"
)

// ChangePassword sets a new password for the signed-in user. Every other session ends; the
// user is notified by mail. The caller has either checked the step-up rule
// password.change, or passes the current password (checked here: a wrong one is
// invalid_credentials). Errors: invalid_credentials, weak_password.
func (s *Service) ChangePassword(ctx context.Context, t tenant.Tenant, p session.Principal, current, next string, steppedUp bool) (int, error) {
	if !steppedUp || current != "" {
		if err := s.checkCurrentPassword(ctx, t, p, current); err != nil {
			return 0, err
		}
	}
	if err := password.Check(next, p.Email, t.Name, t.Slug); err != nil {
		return 0, err
	}
	encoded, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return 0, err
	}
	var revoked [][]byte
	err = s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		if err := q.UpsertPassword(ctx, sqlcgen.UpsertPasswordParams{UserID: p.UserID, Hash: encoded}); err != nil {
			return err
		}
		var err error
		if revoked, err = session.RevokeOthersTx(ctx, q, p.UserID, p.Session.ID, "password_change"); err != nil {
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

func (s *Service) checkCurrentPassword(ctx context.Context, t tenant.Tenant, p session.Principal, current string) error {
	var stored string
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		row, err := q.GetUserWithPassword(ctx, p.Email)
		if err != nil {
			return err
		}
		if row.PasswordHash != nil {
			stored = *row.PasswordHash
		}
		return nil
	}, store.ReadOnly(), store.Idempotent())
	if err != nil {
		return err
	}
	ok, _, err := s.hasher.Verify(ctx, current, stored)
	if err != nil {
		return fmt.Errorf("verify password: %w", err)
	}
	if !ok {
		return ErrInvalidCredentials
	}
	return nil
}

// SecureAccount is the "wasn't you?" link of a new-sign-in notice: it signs out every
// session and mails a password reset link. Errors: invalid_token.
func (s *Service) SecureAccount(ctx context.Context, t tenant.Tenant, tok string) error {
	hash, err := token.Parse(tok)
	if err != nil {
		return ErrInvalidToken
	}
	var revoked [][]byte
	err = s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		row, err := q.ConsumeEmailToken(ctx, sqlcgen.ConsumeEmailTokenParams{TokenHash: hash, Purposes: []string{"secure_account"}})
		if isNoRows(err) {
			return ErrInvalidToken
		}
		if err != nil {
			return fmt.Errorf("consume token: %w", err)
		}
		u, err := q.GetUserByID(ctx, row.UserID)
		if err != nil {
			return err
		}
		if revoked, err = session.RevokeAll(ctx, q, u.ID, "reported_by_user"); err != nil {
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
