package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/emailaddr"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/token"
)

// Link is the kind of an emailed link, named by the page that opens it.
type Link int

// The emailed links whose pages tell a used link from an unknown or expired one.
const (
	LinkVerify         Link = iota // /verify: signup confirmation or email change
	LinkReset                      // /password/reset: reset or account set-up
	LinkUndo                       // /email/undo
	LinkSecure                     // /account/secure
	LinkCancelDeletion             // /account/deletion/cancel
)

var linkPurposes = map[Link][]string{
	LinkVerify:         {"verify_email", "change_email"},
	LinkReset:          {"reset_password", "setup_account"},
	LinkUndo:           {"undo_email_change"},
	LinkSecure:         {"secure_account"},
	LinkCancelDeletion: {"cancel_deletion"},
}

// Answers for a link that did its work already. Each says what happened; the page offers
// the one next step.
var (
	ErrEmailAlreadyConfirmed = apperr.New(apperr.Conflict, "email_already_confirmed", "This address is already confirmed. You can sign in.")
	errResetUsed             = apperr.New(apperr.Conflict, "token_used", "This link was already used to set a password. Sign in with it — or, if you forgot it, ask for a new link.")
	errUndoUsed              = apperr.New(apperr.Conflict, "token_used", "This link was already used: the earlier address was restored and every session was signed out.")
	errSecureUsed            = apperr.New(apperr.Conflict, "token_used", "This link was already used: every session was signed out and a reset link was sent.")
	errCancelUsed            = apperr.New(apperr.Conflict, "token_used", "This link was already used: your account stays. Sign in to continue.")
	ErrInvitationAccepted    = apperr.New(apperr.Conflict, "invitation_accepted", "This invitation was already accepted. Sign in to continue.")
	errInvitationRevoked     = apperr.New(apperr.Invalid, "invalid_token", "This invitation was withdrawn. Ask the person who invited you for a new one.")
	errInvitationExpired     = apperr.New(apperr.Invalid, "invalid_token", "This invitation has expired. Ask the person who invited you for a new one.")
)

var usedErrors = map[string]error{"reset_password": errResetUsed, "setup_account": errResetUsed, "undo_email_change": errUndoUsed,
	"secure_account": errSecureUsed, "cancel_deletion": errCancelUsed}

// CheckLink tells the page of an emailed link what it would do, without consuming it
// (mail scanners open links): nil for a link that works, else the error its form would
// get. Errors: invalid_token (unknown, expired, replaced by a newer link),
// email_already_confirmed, token_used.
func (s *Service) CheckLink(ctx context.Context, t tenant.Tenant, kind Link, tok string) error {
	hash, err := token.Parse(tok)
	if err != nil {
		return ErrInvalidToken
	}
	return s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		return linkState(ctx, q, hash, linkPurposes[kind])
	}, store.ReadOnly(), store.Idempotent())
}

// linkState is nil for a live unused token, else why it cannot be used.
func linkState(ctx context.Context, q *sqlcgen.Queries, hash []byte, purposes []string) error {
	row, err := q.LookupEmailToken(ctx, sqlcgen.LookupEmailTokenParams{TokenHash: hash, Purposes: purposes})
	if errors.Is(err, store.ErrNotFound) {
		return ErrInvalidToken
	}
	if err != nil {
		return fmt.Errorf("look up token: %w", err)
	}
	if row.UsedAt == nil && row.Live {
		return nil
	}
	if (row.Purpose == "verify_email" || row.Purpose == "change_email") && row.EmailVerifiedAt != nil &&
		strings.EqualFold(row.UserEmail, row.Email) {
		return ErrEmailAlreadyConfirmed
	}
	if row.UsedAt != nil {
		if e, ok := usedErrors[row.Purpose]; ok {
			return e
		}
	}
	return ErrInvalidToken
}

// consumeFailed is the error of a token ConsumeEmailToken did not return: why, when the
// link is known (used, expired), else invalid_token.
func consumeFailed(ctx context.Context, q *sqlcgen.Queries, hash []byte, purposes []string) error {
	if err := linkState(ctx, q, hash, purposes); err != nil {
		return err
	}
	return ErrInvalidToken // consumed between the look-up and now
}

// invitationState is why an invitation token is not open.
func invitationState(ctx context.Context, q *sqlcgen.Queries, hash []byte) error {
	inv, err := q.GetInvitationByHash(ctx, hash)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ErrInvalidInvitation
	case err != nil:
		return fmt.Errorf("look up invitation: %w", err)
	case inv.AcceptedAt != nil:
		return ErrInvitationAccepted
	case inv.RevokedAt != nil:
		return errInvitationRevoked
	case !inv.ExpiresAt.After(time.Now()):
		return errInvitationExpired
	}
	return ErrInvalidInvitation
}

// ResendDeletionCancel mails a new cancel link when the address belongs to an account
// scheduled for deletion whose grace period still runs (the earlier link stops working).
// The answer is the same in every case, and each address gets at most one mail a minute
// and five an hour. Errors: invalid_email, rate_limited (per client address only).
func (s *Service) ResendDeletionCancel(ctx context.Context, t tenant.Tenant, email string, meta Meta) error {
	start := time.Now()
	email, err := emailaddr.Normalize(email)
	if err != nil {
		return err
	}
	if err := s.limitIP(ctx, t, mailPerIP, meta); err != nil {
		return err
	}
	defer s.pad(ctx, start)
	ok, err := s.throttleAddress(ctx, t, "cancel_deletion", email)
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
		if u.Status != "pending_deletion" || u.PurgeAfter == nil || !u.PurgeAfter.After(s.now()) {
			return nil
		}
		tok, err := issueToken(ctx, q, u.ID, "cancel_deletion", u.Email, *u.PurgeAfter)
		if err != nil {
			return err
		}
		return s.enqueue(ctx, tx, q, t, u.ID, u.Email, mail.TplDeletion, mail.Data{Email: u.Email,
			When: u.PurgeAfter.UTC().Format("Monday 2 January 2006, 15:04 UTC"), Link: s.link(t, "/account/deletion/cancel", tok)})
	})
}
