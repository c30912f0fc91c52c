package account

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/emailaddr"
	"github.com/gatehouse-id/gatehouse/internal/events"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/telemetry"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/token"
)

// ConfirmEmail consumes a verification token: from signup (verify_email) it marks the
// address verified; from an email change (change_email) it switches the account to the new
// address and sends the old one a notice with an undo link. The token only works for the
// user and the address it was issued for, once, before it expires, on its tenant's host.
// Errors: invalid_token (unknown, expired, replaced, other tenant, address changed),
// email_already_confirmed (the link did its work already), email_unavailable.
func (s *Service) ConfirmEmail(ctx context.Context, t tenant.Tenant, tok string) (User, error) {
	u, err := s.confirmEmail(ctx, t, tok)
	s.metrics.verifications.Add(ctx, telemetry.Result(err))
	return u, err
}

func (s *Service) confirmEmail(ctx context.Context, t tenant.Tenant, tok string) (User, error) {
	hash, err := token.Parse(tok)
	if err != nil {
		return User{}, ErrInvalidToken
	}
	var u User
	defer func() { s.sessions.InvalidateUser(u.ID) }()
	err = s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		row, err := q.ConsumeEmailToken(ctx, sqlcgen.ConsumeEmailTokenParams{TokenHash: hash, Purposes: linkPurposes[LinkVerify]})
		if errors.Is(err, store.ErrNotFound) {
			return consumeFailed(ctx, q, hash, linkPurposes[LinkVerify])
		}
		if err != nil {
			return fmt.Errorf("consume token: %w", err)
		}
		if row.Purpose == "verify_email" {
			n, err := markVerified(ctx, q, row.UserID, row.Email)
			if err != nil {
				return fmt.Errorf("mark verified: %w", err)
			}
			if n == 0 {
				return ErrInvalidToken // the account has another address now
			}
			cur, err := q.GetUserByID(ctx, row.UserID)
			if err != nil {
				return err
			}
			u = userFromRow(cur)
			return audit.Record(ctx, q, audit.By(ctx, cur.ID, cur.Email), audit.Event{Action: audit.UserEmailVerified, SubjectID: cur.ID, SubjectLabel: cur.Email})
		}
		before, err := q.GetUserByID(ctx, row.UserID)
		if err != nil {
			return err
		}
		after, err := q.ChangeUserEmail(ctx, sqlcgen.ChangeUserEmailParams{ID: row.UserID, Email: row.Email})
		if _, ok := store.AsUniqueViolation(err); ok {
			return ErrEmailUnavailable
		}
		if err != nil {
			return fmt.Errorf("change email: %w", err)
		}
		if err := q.InvalidateEmailTokens(ctx, sqlcgen.InvalidateEmailTokensParams{UserID: row.UserID, Purpose: "verify_email"}); err != nil {
			return err
		}
		undo, err := issueToken(ctx, q, row.UserID, "undo_email_change", before.Email, s.now().Add(UndoTokenTTL))
		if err != nil {
			return err
		}
		u = userFromRow(after)
		if _, err := events.Emit(ctx, q, events.Event{Type: events.UserEmailChanged, User: after.ID,
			Data: events.EmailChanged{UserID: after.ID, Email: after.Email, PreviousEmail: before.Email}}); err != nil {
			return err
		}
		if err := audit.Record(ctx, q, audit.By(ctx, after.ID, after.Email), audit.Event{Action: audit.UserEmailChanged, SubjectID: after.ID,
			SubjectLabel: after.Email, Details: map[string]any{"from": before.Email, "to": after.Email}}); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, q, t, row.UserID, before.Email, mail.TplEmailChanged,
			mail.Data{Email: before.Email, NewEmail: after.Email, Link: s.link(t, "/email/undo", undo), Expires: hours(UndoTokenTTL)})
	})
	return u, err
}

// ResendVerification mails a new verification link when the address belongs to an
// unverified account. The answer is the same in every case (the caller learns nothing),
// and each address gets at most one mail a minute and five an hour.
// Errors: invalid_email, rate_limited (per client address only).
func (s *Service) ResendVerification(ctx context.Context, t tenant.Tenant, email string, meta Meta) error {
	start := time.Now()
	email, err := emailaddr.Normalize(email)
	if err != nil {
		return err
	}
	if err := s.limitIP(ctx, t, mailPerIP, meta); err != nil {
		return err
	}
	defer s.pad(ctx, start)
	return s.resendVerification(ctx, t, email)
}

// resendVerification sends the link when the address has an unverified account,
// throttled per address.
func (s *Service) resendVerification(ctx context.Context, t tenant.Tenant, email string) error {
	ok, err := s.throttleAddress(ctx, t, "verify", email)
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
		if u.EmailVerifiedAt != nil {
			return nil
		}
		// Per user too: the same user under another spelling of the address shares the limit.
		ttl := time.Duration(t.Policy.Verification.TokenTTLHours) * time.Hour
		tok, err := issueToken(ctx, q, u.ID, "verify_email", u.Email, s.now().Add(ttl))
		if err != nil {
			return err
		}
		return s.enqueue(ctx, tx, q, t, u.ID, u.Email, mail.TplVerifyEmail,
			mail.Data{Email: u.Email, Link: s.link(t, "/verify", tok), Expires: hours(ttl)})
	})
}

// markVerified marks the address verified while the user still has it and records
// user.email_verified when it was not verified before. It returns the rows matched (0: the
// account has another address now).
func markVerified(ctx context.Context, q *sqlcgen.Queries, userID uuid.UUID, email string) (int64, error) {
	before, err := q.GetUserByID(ctx, userID)
	if err != nil {
		return 0, err
	}
	n, err := q.MarkEmailVerified(ctx, sqlcgen.MarkEmailVerifiedParams{ID: userID, Email: email})
	if err != nil || n == 0 || before.EmailVerifiedAt != nil {
		return n, err
	}
	after, err := q.GetUserByID(ctx, userID)
	if err != nil {
		return 0, err
	}
	_, err = events.Emit(ctx, q, events.Event{Type: events.UserEmailVerified, User: userID, Data: events.UserOf(after, "")})
	return n, err
}
