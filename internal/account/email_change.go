package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/emailaddr"
	"github.com/gatehouse-id/gatehouse/internal/events"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/token"
)

// RequestEmailChange mails a confirmation link to the new address. Nothing changes until
// it is confirmed (ConfirmEmail); whether the address is free is checked then, so this
// answer does not reveal other accounts. An address an SSO connection signs in is the
// IdP's to change. Errors: invalid_email, email_unchanged, email_managed_by_idp,
// rate_limited.
func (s *Service) RequestEmailChange(ctx context.Context, t tenant.Tenant, p session.Principal, newEmail string) error {
	email, err := emailaddr.Normalize(newEmail)
	if err != nil {
		return err
	}
	if strings.EqualFold(email, p.Email) {
		return ErrEmailUnchanged
	}
	if err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error { return emailManaged(ctx, q, p.UserID) },
		store.ReadOnly(), store.Idempotent()); err != nil {
		return err
	}
	ok, retry, err := s.limiter.Allow(ctx, t.ID, ratelimit.Key("email_change", p.UserID.String()), changePerUser)
	if err != nil {
		return err
	}
	if !ok {
		return ratelimit.Limited(retry)
	}
	ttl := time.Duration(t.Policy.Verification.TokenTTLHours) * time.Hour
	return s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		tok, err := issueToken(ctx, q, p.UserID, "change_email", email, s.now().Add(ttl))
		if err != nil {
			return err
		}
		if err := clearPending(ctx, q, p, tenant.ActionEmailChange); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, q, t, p.UserID, email, mail.TplChangeEmail,
			mail.Data{Email: email, Link: s.link(t, "/verify", tok), Expires: hours(ttl)})
	})
}

// UndoEmailChange restores the address an undo link was sent to and ends every session
// of the account (whoever changed it is signed out). Errors: invalid_token, token_used,
// email_unavailable.
func (s *Service) UndoEmailChange(ctx context.Context, t tenant.Tenant, tok string) (User, error) {
	hash, err := token.Parse(tok)
	if err != nil {
		return User{}, ErrInvalidToken
	}
	var u User
	var revoked [][]byte
	err = s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		row, err := q.ConsumeEmailToken(ctx, sqlcgen.ConsumeEmailTokenParams{TokenHash: hash, Purposes: linkPurposes[LinkUndo]})
		if errors.Is(err, store.ErrNotFound) {
			return consumeFailed(ctx, q, hash, linkPurposes[LinkUndo])
		}
		if err != nil {
			return fmt.Errorf("consume token: %w", err)
		}
		before, err := q.GetUserByID(ctx, row.UserID)
		if err != nil {
			return err
		}
		restored, err := q.ChangeUserEmail(ctx, sqlcgen.ChangeUserEmailParams{ID: row.UserID, Email: row.Email})
		if _, ok := store.AsUniqueViolation(err); ok {
			return ErrEmailUnavailable
		}
		if err != nil {
			return fmt.Errorf("restore email: %w", err)
		}
		for _, purpose := range []string{"change_email", "verify_email", "reset_password"} {
			if err := q.InvalidateEmailTokens(ctx, sqlcgen.InvalidateEmailTokensParams{UserID: row.UserID, Purpose: purpose}); err != nil {
				return err
			}
		}
		if revoked, err = s.sessions.RevokeAllTx(ctx, tx, q, row.UserID, "email_change_undone"); err != nil {
			return err
		}
		u = userFromRow(restored)
		if _, err := events.Emit(ctx, q, events.Event{Type: events.UserEmailChanged, User: restored.ID,
			Data: events.EmailChanged{UserID: restored.ID, Email: restored.Email, PreviousEmail: before.Email, Undone: true}}); err != nil {
			return err
		}
		return audit.Record(ctx, q, audit.By(ctx, restored.ID, restored.Email), audit.Event{Action: audit.UserEmailRestored,
			SubjectID: restored.ID, SubjectLabel: restored.Email, Details: map[string]any{"sessions_revoked": len(revoked)}})
	})
	s.sessions.Invalidate(revoked)
	s.sessions.InvalidateUser(u.ID)
	return u, err
}

// Logout ends the caller's session.
func (s *Service) Logout(ctx context.Context, p session.Principal) error {
	return s.sessions.Revoke(ctx, p, p.Session.ID, "logout")
}
