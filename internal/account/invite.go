package account

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/emailaddr"
	"github.com/gatehouse-id/gatehouse/internal/events"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/password"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/token"
)

// Lifetimes of invitation and setup links.
const (
	InvitationTTL = 7 * 24 * time.Hour
	SetupTTL      = 7 * 24 * time.Hour
)

// Invitation is a pending invitation.
type Invitation struct {
	ID        uuid.UUID `json:"id"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	ExpiresAt time.Time `json:"expires_at"`
	CreatedAt time.Time `json:"created_at"`
	// Existing: the address already has an account (only set for the acceptance page).
	Existing bool `json:"-"`
}

// ErrInvalidInvitation answers an unknown, accepted, revoked or expired invitation.
var ErrInvalidInvitation = apperr.New(apperr.Invalid, "invalid_token", "This invitation is invalid or has expired. Ask for a new one.")

// Invite mails an invitation with a role. Only owners invite owners.
// Errors: invalid_email, invalid_role, owner_required.
func (s *Service) Invite(ctx context.Context, t tenant.Tenant, by session.Principal, email, role string, byOwner bool) (Invitation, error) {
	email, err := emailaddr.Normalize(email)
	if err != nil {
		return Invitation{}, err
	}
	if !slices.Contains(authz.Roles, role) {
		return Invitation{}, authz.ErrUnknownRole
	}
	if role == authz.Owner && !byOwner {
		return Invitation{}, authz.ErrOwnerOnly
	}
	tok, hash := token.New()
	var inv Invitation
	err = s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		by := by.UserID
		row, err := q.InsertInvitation(ctx, sqlcgen.InsertInvitationParams{Email: email, Role: role, TokenHash: hash, InvitedBy: &by, ExpiresAt: s.now().Add(InvitationTTL)})
		if err != nil {
			return fmt.Errorf("insert invitation: %w", err)
		}
		inv = Invitation{ID: row.ID, Email: row.Email, Role: row.Role, ExpiresAt: row.ExpiresAt, CreatedAt: row.CreatedAt}
		if err := audit.Record(ctx, q, audit.By(ctx, by, ""), audit.Event{Action: audit.UserInvited, SubjectLabel: email,
			Details: map[string]any{"role": role, "invitation_id": row.ID}}); err != nil {
			return err
		}
		return s.outbox.Enqueue(ctx, tx, q, mail.Mail{TenantID: t.ID, To: email, Template: mail.TplInvitation,
			Data: mail.Data{Tenant: t.DisplayName(), Email: email, Event: inviterLabel(ctx, q, by), Detail: "as " + role,
				Link: s.link(t, "/invite", tok), Expires: hours(InvitationTTL)}})
	})
	return inv, err
}

func inviterLabel(ctx context.Context, q *sqlcgen.Queries, id uuid.UUID) string {
	if u, err := q.GetUserByID(ctx, id); err == nil {
		if u.Name != "" {
			return u.Name
		}
		return u.Email
	}
	return "An administrator"
}

// Invitations lists the open invitations.
func (s *Service) Invitations(ctx context.Context, t tenant.Tenant) ([]Invitation, error) {
	var out []Invitation
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		rows, err := q.ListInvitations(ctx)
		if err != nil {
			return err
		}
		out = make([]Invitation, 0, len(rows))
		for _, r := range rows {
			out = append(out, Invitation{ID: r.ID, Email: r.Email, Role: r.Role, ExpiresAt: r.ExpiresAt, CreatedAt: r.CreatedAt})
		}
		return nil
	}, store.ReadOnly(), store.Idempotent())
	return out, err
}

// RevokeInvitation withdraws an open invitation. Errors: not_found.
func (s *Service) RevokeInvitation(ctx context.Context, t tenant.Tenant, by session.Principal, id uuid.UUID) error {
	return s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		n, err := q.RevokeInvitation(ctx, id)
		if err != nil {
			return err
		}
		if n == 0 {
			return apperr.New(apperr.NotFound, "not_found", "There is no such open invitation.")
		}
		return audit.Record(ctx, q, audit.By(ctx, by.UserID, by.Email), audit.Event{Action: audit.InvitationRevoked, Details: map[string]any{"invitation_id": id}})
	})
}

// InvitationFor returns the open invitation of a token (for the acceptance page), with
// Existing set when the invited address already has an account. Errors: invalid_token
// (unknown, withdrawn, expired: each says which), invitation_accepted.
func (s *Service) InvitationFor(ctx context.Context, t tenant.Tenant, tok string) (Invitation, error) {
	hash, err := token.Parse(tok)
	if err != nil {
		return Invitation{}, ErrInvalidInvitation
	}
	var inv Invitation
	err = s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		r, err := q.GetOpenInvitationByHash(ctx, hash)
		if errors.Is(err, store.ErrNotFound) {
			return invitationState(ctx, q, hash)
		}
		if err != nil {
			return err
		}
		inv = Invitation{ID: r.ID, Email: r.Email, Role: r.Role, ExpiresAt: r.ExpiresAt, CreatedAt: r.CreatedAt}
		if _, err := q.GetUserWithPassword(ctx, r.Email); err == nil {
			inv.Existing = true
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return nil
	}, store.ReadOnly(), store.Idempotent())
	return inv, err
}

// ErrSignInToAccept answers an invitation for an address that already has an account,
// sent by someone who is not signed in as that account: the link proves the mailbox, not
// the account, so the invitee signs in first (password and second factor, or SSO).
var ErrSignInToAccept = apperr.New(apperr.Unauthenticated, "sign_in_required",
	"An account with this address already exists. Sign in to it to accept the invitation.")

// AcceptInvitation accepts an invitation. For an address without an account it creates
// the invitee's account — verified, since the link proved the address — with the chosen
// password and the invited role, and signs them in. For an address that has an account it
// only gives that account the role, and only to signedIn being that account (a normal
// sign-in came first); no session is issued. signedIn is nil for an anonymous visitor.
// Errors: invalid_token, weak_password, invalid_name, sign_in_required,
// account_pending_deletion, account_disabled.
func (s *Service) AcceptInvitation(ctx context.Context, t tenant.Tenant, tok, name, pw string, signedIn *session.Principal, meta Meta) (LoginResult, error) {
	hash, err := token.Parse(tok)
	if err != nil {
		return LoginResult{}, ErrInvalidInvitation
	}
	if name, err = validName(name); err != nil {
		return LoginResult{}, err
	}
	inv, err := s.InvitationFor(ctx, t, tok)
	if err != nil {
		return LoginResult{}, err
	}
	encoded := ""
	if !inv.Existing {
		if err := password.Check(pw, inv.Email, t.Name, t.Slug); err != nil {
			return LoginResult{}, err
		}
		if encoded, err = s.hasher.Hash(ctx, pw); err != nil {
			return LoginResult{}, err
		}
	}
	var res LoginResult
	var evicted [][]byte
	var userID uuid.UUID
	err = s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		r, err := q.GetOpenInvitationByHash(ctx, hash)
		if errors.Is(err, store.ErrNotFound) {
			return ErrInvalidInvitation
		}
		if err != nil {
			return err
		}
		u, err := q.InsertUserIfAbsent(ctx, sqlcgen.InsertUserIfAbsentParams{Email: r.Email, Name: name})
		created := err == nil
		switch {
		case errors.Is(err, store.ErrNotFound):
			existing, err := q.GetUserWithPassword(ctx, r.Email)
			if err != nil {
				return err
			}
			if signedIn == nil || signedIn.UserID != existing.ID {
				return ErrSignInToAccept
			}
			switch existing.Status {
			case "pending_deletion":
				return ErrPendingDeletion
			case "disabled":
				return ErrAccountDisabled
			}
			u = sqlcgen.User{ID: existing.ID, Email: existing.Email}
		case err != nil:
			return err
		case encoded == "":
			// The account was deleted between the page and the form: choose a password first.
			return ErrInvalidInvitation
		default:
			if err := q.UpsertPassword(ctx, sqlcgen.UpsertPasswordParams{UserID: u.ID, Hash: encoded}); err != nil {
				return err
			}
		}
		if n, err := q.AcceptInvitation(ctx, r.ID); err != nil {
			return err
		} else if n == 0 {
			return ErrInvalidInvitation
		}
		userID = u.ID
		if !created {
			if _, err := markVerified(ctx, q, u.ID, u.Email); err != nil {
				return err
			}
		} else {
			if _, err := q.MarkEmailVerified(ctx, sqlcgen.MarkEmailVerifiedParams{ID: u.ID, Email: u.Email}); err != nil {
				return err
			}
			cur, err := q.GetUserByID(ctx, u.ID)
			if err != nil {
				return err
			}
			if err := events.EmitUserCreated(ctx, q, cur, events.SourceInvitation); err != nil {
				return err
			}
		}
		if err := authz.Grant(ctx, q, u.ID, r.Role); err != nil {
			return err
		}
		if err := audit.Record(ctx, q, audit.By(ctx, u.ID, u.Email), audit.Event{Action: audit.InvitationAccepted, SubjectID: u.ID,
			SubjectLabel: u.Email, Details: map[string]any{"role": r.Role, "invitation_id": r.ID, "new_account": created}}); err != nil {
			return err
		}
		if !created {
			return nil
		}
		res, evicted, err = s.startSession(ctx, tx, q, t, u.ID, meta, []string{"password"})
		return err
	})
	s.sessions.Invalidate(evicted)
	s.sessions.InvalidateUser(userID)
	return res, err
}

// IssueSetupLink mails the tenant's first owner a one-time link to choose a password and
// returns it (the CLI prints it once). Errors: not_found.
func (s *Service) IssueSetupLink(ctx context.Context, t tenant.Tenant, userID uuid.UUID) (string, error) {
	var link string
	err := s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		u, err := q.GetUserByID(ctx, userID)
		if errors.Is(err, store.ErrNotFound) {
			return apperr.New(apperr.NotFound, "not_found", "There is no such user.")
		}
		if err != nil {
			return err
		}
		tok, err := issueToken(ctx, q, u.ID, "setup_account", u.Email, s.now().Add(SetupTTL))
		if err != nil {
			return err
		}
		link = s.link(t, "/password/reset", tok)
		return s.enqueue(ctx, tx, q, t, u.ID, u.Email, mail.TplSetupAccount,
			mail.Data{Email: u.Email, Link: link, Expires: hours(SetupTTL)})
	})
	return link, err
}
