package account

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/emailaddr"
	"github.com/gatehouse-id/gatehouse/internal/events"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/password"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/telemetry"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// SignupInput is what a person submits.
type SignupInput struct {
	Email    string
	Password string
	Name     string
}

// Signup creates an unverified account and mails a verification link. When the address
// already has an account nothing is created and its owner is told someone tried; the
// caller cannot tell the two apart (same result, same minimum duration).
// Errors: invalid_email, weak_password, invalid_name, signup_disabled,
// signup_domain_not_allowed, rate_limited.
func (s *Service) Signup(ctx context.Context, t tenant.Tenant, in SignupInput, meta Meta) error {
	err := s.signup(ctx, t, in, meta)
	s.metrics.signups.Add(ctx, telemetry.Result(err))
	return err
}

func (s *Service) signup(ctx context.Context, t tenant.Tenant, in SignupInput, meta Meta) error {
	start := time.Now()
	email, err := emailaddr.Normalize(in.Email)
	if err != nil {
		return err
	}
	if !t.Policy.Signup.Enabled {
		return ErrSignupDisabled
	}
	if err := s.requireNoSSO(ctx, t, email); err != nil {
		return err
	}
	if d := t.Policy.Signup.AllowedDomains; len(d) > 0 && !slices.Contains(d, emailaddr.Domain(email)) {
		return ErrDomainNotAllowed
	}
	name, err := validName(in.Name)
	if err != nil {
		return err
	}
	if err := password.Check(in.Password, email, t.Name, t.Slug); err != nil {
		return err
	}
	if err := s.limitIP(ctx, t, signupPerIP, meta); err != nil {
		return err
	}
	defer s.pad(ctx, start)
	// Hash first, on both paths: the hash dominates the time, so both take as long.
	hash, err := s.hasher.Hash(ctx, in.Password)
	if err != nil {
		return err
	}
	existing := false
	err = s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		existing = false
		row, err := q.InsertUserIfAbsent(ctx, sqlcgen.InsertUserIfAbsentParams{Email: email, Name: name})
		if errors.Is(err, store.ErrNotFound) {
			existing = true
			return nil
		}
		if err != nil {
			return fmt.Errorf("insert user: %w", err)
		}
		if err := q.UpsertPassword(ctx, sqlcgen.UpsertPasswordParams{UserID: row.ID, Hash: hash}); err != nil {
			return fmt.Errorf("store password: %w", err)
		}
		ttl := time.Duration(t.Policy.Verification.TokenTTLHours) * time.Hour
		tok, err := issueToken(ctx, q, row.ID, "verify_email", row.Email, s.now().Add(ttl))
		if err != nil {
			return err
		}
		if err := audit.Record(ctx, q, audit.By(ctx, row.ID, row.Email), audit.Event{Action: audit.UserSignup, SubjectID: row.ID, SubjectLabel: row.Email}); err != nil {
			return err
		}
		if err := events.EmitUserCreated(ctx, q, row, events.SourceSignup); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, q, t, row.ID, row.Email, mail.TplVerifyEmail,
			mail.Data{Email: row.Email, Link: s.link(t, "/verify", tok), Expires: hours(ttl)})
	})
	if err != nil || !existing {
		return err
	}
	return s.notifyExistingSignup(ctx, t, email)
}

// notifyExistingSignup tells an account's owner that someone tried to sign up with their
// address (throttled per address, so it cannot be used to flood a mailbox).
func (s *Service) notifyExistingSignup(ctx context.Context, t tenant.Tenant, email string) error {
	ok, err := s.throttleAddress(ctx, t, "signup_existing", email)
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
		return s.enqueue(ctx, tx, q, t, u.ID, u.Email, mail.TplSignupExisting,
			mail.Data{Email: u.Email, Link: s.link(t, "/login", ""), Link2: s.link(t, "/password/forgot", "")})
	})
}

// CreateVerifiedUser creates an account with a password and a confirmed address, without
// mail: for operators and the dev seed. Errors: invalid_email, weak_password,
// invalid_name, email_unavailable.
func (s *Service) CreateVerifiedUser(ctx context.Context, t tenant.Tenant, email, pw, name string) (User, error) {
	email, err := emailaddr.Normalize(email)
	if err != nil {
		return User{}, err
	}
	if name, err = validName(name); err != nil {
		return User{}, err
	}
	if err := password.Check(pw, email, t.Name, t.Slug); err != nil {
		return User{}, err
	}
	hash, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return User{}, err
	}
	var u User
	err = s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		row, err := q.InsertUserIfAbsent(ctx, sqlcgen.InsertUserIfAbsentParams{Email: email, Name: name})
		if errors.Is(err, store.ErrNotFound) {
			return ErrEmailUnavailable
		}
		if err != nil {
			return err
		}
		if err := q.UpsertPassword(ctx, sqlcgen.UpsertPasswordParams{UserID: row.ID, Hash: hash}); err != nil {
			return err
		}
		if _, err := q.MarkEmailVerified(ctx, sqlcgen.MarkEmailVerifiedParams{ID: row.ID, Email: row.Email}); err != nil {
			return err
		}
		cur, err := q.GetUserByID(ctx, row.ID)
		if err != nil {
			return err
		}
		u = userFromRow(cur)
		return events.EmitUserCreated(ctx, q, cur, events.SourceOperator)
	})
	return u, err
}
