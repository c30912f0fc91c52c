package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/emailaddr"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/password"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/token"
)

// ForgotPassword mails a reset link (valid one hour) when the address has an account. The
// answer is the same in every case; each address gets at most one mail a minute and five
// an hour. Errors: invalid_email, rate_limited (per client address only).
func (s *Service) ForgotPassword(ctx context.Context, t tenant.Tenant, email string, meta Meta) error {
	start := time.Now()
	email, err := emailaddr.Normalize(email)
	if err != nil {
		return err
	}
	if err := s.requireNoSSO(ctx, t, email); err != nil {
		return err
	}
	if err := s.limitIP(ctx, t, mailPerIP, meta); err != nil {
		return err
	}
	defer s.pad(ctx, start)
	ok, err := s.throttleAddress(ctx, t, "reset", email)
	if err != nil || !ok {
		return err
	}
	return s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		u, err := q.GetUserWithPassword(ctx, email)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if u.Status != "active" {
			return nil
		}
		tok, err := issueToken(ctx, q, u.ID, "reset_password", u.Email, s.now().Add(ResetTokenTTL))
		if err != nil {
			return err
		}
		return s.enqueue(ctx, tx, q, t, u.ID, u.Email, mail.TplResetPassword,
			mail.Data{Email: u.Email, Link: s.link(t, "/password/reset", tok), Expires: hours(ResetTokenTTL)})
	})
}

// ResetPassword sets a new password with a reset token. It ends every session of the user,
// marks the address verified (the user proved they receive its mail) and notifies them.
// Errors: invalid_token, token_used, weak_password.
func (s *Service) ResetPassword(ctx context.Context, t tenant.Tenant, tok, pw string) error {
	hash, err := token.Parse(tok)
	if err != nil {
		return ErrInvalidToken
	}
	if err := password.Check(pw, t.Name, t.Slug); err != nil {
		return err
	}
	encoded, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return err
	}
	var revoked [][]byte
	var userID uuid.UUID
	defer func() { s.sessions.Invalidate(revoked); s.sessions.InvalidateUser(userID) }()
	return s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		row, err := q.ConsumeEmailToken(ctx, sqlcgen.ConsumeEmailTokenParams{TokenHash: hash, Purposes: linkPurposes[LinkReset]})
		if errors.Is(err, store.ErrNotFound) {
			return consumeFailed(ctx, q, hash, linkPurposes[LinkReset])
		}
		if err != nil {
			return fmt.Errorf("consume token: %w", err)
		}
		u, err := q.GetUserByID(ctx, row.UserID)
		if err != nil {
			return err
		}
		userID = u.ID
		if !strings.EqualFold(u.Email, row.Email) || u.Status != "active" {
			return ErrInvalidToken // the address changed since the link was sent
		}
		// The password must not be built from the address either.
		if err := password.Check(pw, u.Email, t.Name, t.Slug); err != nil {
			return err
		}
		if err := q.UpsertPassword(ctx, sqlcgen.UpsertPasswordParams{UserID: u.ID, Hash: encoded}); err != nil {
			return fmt.Errorf("store password: %w", err)
		}
		if _, err := markVerified(ctx, q, u.ID, u.Email); err != nil {
			return err
		}
		if revoked, err = s.sessions.RevokeAllTx(ctx, tx, q, u.ID, "password_reset"); err != nil {
			return err
		}
		if err := audit.Record(ctx, q, audit.By(ctx, u.ID, u.Email), audit.Event{Action: audit.UserPasswordReset, SubjectID: u.ID,
			SubjectLabel: u.Email, Details: map[string]any{"sessions_revoked": len(revoked)}}); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, q, t, u.ID, u.Email, mail.TplPasswordChanged,
			mail.Data{Email: u.Email, Link: s.link(t, "/password/forgot", "")})
	})
}
