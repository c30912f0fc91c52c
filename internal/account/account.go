// Package account is the self-serve user's path: signup, email verification, login,
// password reset and email change. Every method runs its writes in one tenant transaction,
// with the mail it causes enqueued in that same transaction.
package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/metric"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/mfa"
	"github.com/gatehouse-id/gatehouse/internal/passkey"
	"github.com/gatehouse-id/gatehouse/internal/password"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/telemetry"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/token"
)

// User is an account as its owner and admins see it.
type User struct {
	ID              uuid.UUID  `json:"id"`
	Email           string     `json:"email"`
	Name            string     `json:"name"`
	Status          string     `json:"status"`
	EmailVerified   bool       `json:"email_verified"`
	EmailVerifiedAt *time.Time `json:"email_verified_at"`
	CreatedAt       time.Time  `json:"created_at"`
	LastLoginAt     *time.Time `json:"last_login_at,omitempty"`
}

func userFromRow(r sqlcgen.User) User {
	return User{ID: r.ID, Email: r.Email, Name: r.Name, Status: r.Status, EmailVerified: r.EmailVerifiedAt != nil,
		EmailVerifiedAt: r.EmailVerifiedAt, CreatedAt: r.CreatedAt, LastLoginAt: r.LastLoginAt}
}

// Config tunes the service.
type Config struct {
	// ResponseFloor is the least time signup, resend and forgot-password take, whatever the
	// address, so their timing does not tell whether an account exists.
	ResponseFloor time.Duration
}

// Service implements the account flows.
type Service struct {
	store    *store.Store
	sessions *session.Service
	mfa      *mfa.Service
	hasher   *password.Hasher
	outbox   *mail.Outbox
	limiter  *ratelimit.Limiter
	urls     tenant.URLs
	cfg      Config
	now      func() time.Time
	ssoGate  func(ctx context.Context, t tenant.Tenant, email string) error
	passkeys *passkey.Service
	metrics  metrics
}

// metrics are the account flows' counters.
type metrics struct {
	logins, signups, verifications *telemetry.Outcomes
}

func newMetrics(m metric.Meter) metrics {
	return metrics{
		logins:        telemetry.NewOutcomes(m, "gatehouse.logins", "Sign-in attempts by result and step (password, mfa)"),
		signups:       telemetry.NewOutcomes(m, "gatehouse.signups", "Sign-up requests by result"),
		verifications: telemetry.NewOutcomes(m, "gatehouse.verifications", "Email confirmations by result"),
	}
}

func (s *Service) requireNoSSO(ctx context.Context, t tenant.Tenant, email string) error {
	return s.ssoGate(ctx, t, email)
}

// Deps are the account service's collaborators. Every one is required: a missing one
// stops start-up instead of switching something off (a forgotten SSO gate would let
// passwords past enforced SSO).
type Deps struct {
	Store    *store.Store
	Sessions *session.Service
	MFA      *mfa.Service
	Hasher   *password.Hasher
	Outbox   *mail.Outbox
	Limiter  *ratelimit.Limiter
	URLs     tenant.URLs
	// SSOGate refuses password login, sign-up and reset for addresses whose domain must
	// sign in through SSO (sso.Service.Required: it returns sso_required).
	SSOGate func(ctx context.Context, t tenant.Tenant, email string) error
	// Passkeys verifies passkey sign-ins (passwordless and second factor).
	Passkeys *passkey.Service
	Meter    metric.Meter // gatehouse.logins, gatehouse.signups, gatehouse.verifications
	Now      func() time.Time
}

// NewService returns the account service. Errors: a missing dependency.
func NewService(d Deps, cfg Config) (*Service, error) {
	if d.Store == nil || d.Sessions == nil || d.MFA == nil || d.Hasher == nil || d.Outbox == nil || d.Limiter == nil ||
		d.SSOGate == nil || d.Passkeys == nil || d.Meter == nil || d.Now == nil || d.URLs.BaseDomain == "" {
		return nil, errors.New("account: store, sessions, mfa, hasher, outbox, limiter, URLs, SSO gate, passkeys, meter and clock are required")
	}
	return &Service{store: d.Store, sessions: d.Sessions, mfa: d.MFA, hasher: d.Hasher, outbox: d.Outbox, limiter: d.Limiter,
		urls: d.URLs, cfg: cfg, now: d.Now, ssoGate: d.SSOGate, passkeys: d.Passkeys, metrics: newMetrics(d.Meter)}, nil
}

// Errors of this package (codes are listed in docs/openapi.yaml).
var (
	ErrInvalidCredentials = apperr.New(apperr.Unauthenticated, "invalid_credentials", "The email address or password is not correct.")
	ErrInvalidToken       = apperr.New(apperr.Invalid, "invalid_token", "This link is invalid or has expired. Request a new one.")
	ErrSignupDisabled     = apperr.New(apperr.Forbidden, "signup_disabled", "Sign-up is not available here. Ask your administrator for an invitation.")
	ErrDomainNotAllowed   = apperr.New(apperr.Forbidden, "signup_domain_not_allowed", "Sign-up is limited to addresses of this organisation's domains.")
	ErrEmailUnavailable   = apperr.New(apperr.Conflict, "email_unavailable", "This email address cannot be used for this account.")
	ErrEmailUnchanged     = apperr.New(apperr.Invalid, "email_unchanged", "This is already your email address.")
	ErrAccountDisabled    = apperr.New(apperr.Forbidden, "account_disabled", "This account is disabled. Contact your administrator.")
	ErrPendingDeletion    = apperr.New(apperr.Forbidden, "account_pending_deletion", "This account is scheduled for deletion. Use the cancel link in the email we sent to keep it, or ask for a new one.").WithDetails(map[string]any{"resend_url": "/account/deletion/resend"})
	ErrInvalidName        = apperr.New(apperr.Invalid, "invalid_name", "A name is at most 200 characters on one line.")
)

// ErrEmailNotVerified refuses a login until the address is confirmed; it points at the
// resend page.
func errEmailNotVerified() error {
	return apperr.New(apperr.Forbidden, "email_not_verified", "Confirm your email address first: we sent you a link.").
		WithDetails(map[string]any{"resend_url": "/verify/resend"})
}

// Token lifetimes that are not tenant policy.
const (
	ResetTokenTTL  = time.Hour
	UndoTokenTTL   = 7 * 24 * time.Hour
	SecureTokenTTL = 7 * 24 * time.Hour
)

// Rate limits per client address (per tenant) and throttles per account or address.
var (
	signupPerIP   = ratelimit.Rule{Name: "signup_ip", Limit: 20, Window: 10 * time.Minute}
	loginPerIP    = ratelimit.Rule{Name: "login_ip", Limit: 30, Window: time.Minute}
	mailPerIP     = ratelimit.Rule{Name: "mail_ip", Limit: 20, Window: 10 * time.Minute}
	perAddrMinute = ratelimit.Rule{Name: "addr_1m", Limit: 1, Window: time.Minute}
	perAddrHour   = ratelimit.Rule{Name: "addr_1h", Limit: 5, Window: time.Hour}
	changePerUser = ratelimit.Rule{Name: "email_change", Limit: 5, Window: time.Hour}
)

// Meta is what the service knows about the client.
type Meta = session.Meta

func (s *Service) limitIP(ctx context.Context, t tenant.Tenant, rule ratelimit.Rule, meta Meta) error {
	ok, retry, err := s.limiter.Allow(ctx, t.ID, ratelimit.Key(ratelimit.Addr(meta.IP)), rule)
	if err != nil {
		return err
	}
	if !ok {
		return ratelimit.Limited(retry)
	}
	return nil
}

// throttleAddress reports whether another mail of kind may go to addr now (at most one a
// minute and five an hour).
func (s *Service) throttleAddress(ctx context.Context, t tenant.Tenant, kind, addr string) (bool, error) {
	ok, _, err := s.limiter.Allow(ctx, t.ID, ratelimit.Key(kind, strings.ToLower(addr)), perAddrMinute, perAddrHour)
	return ok, err
}

// pad waits until at least floor has passed since start, so fast and slow paths look alike.
func (s *Service) pad(ctx context.Context, start time.Time) {
	if d := s.cfg.ResponseFloor - time.Since(start); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
}

// issueToken creates a one-time email token for purpose, ending the user's earlier unused
// tokens of that purpose, and returns the token for the link.
func issueToken(ctx context.Context, q *sqlcgen.Queries, userID uuid.UUID, purpose, email string, expires time.Time) (string, error) {
	if err := q.InvalidateEmailTokens(ctx, sqlcgen.InvalidateEmailTokensParams{UserID: userID, Purpose: purpose}); err != nil {
		return "", fmt.Errorf("invalidate tokens: %w", err)
	}
	tok, hash := token.New()
	if _, err := q.InsertEmailToken(ctx, sqlcgen.InsertEmailTokenParams{UserID: userID, Purpose: purpose, TokenHash: hash, Email: email, ExpiresAt: expires}); err != nil {
		return "", fmt.Errorf("insert token: %w", err)
	}
	return tok, nil
}

func (s *Service) link(t tenant.Tenant, path string, tok string) string {
	q := map[string][]string{}
	if tok != "" {
		q["token"] = []string{tok}
	}
	return s.urls.Link(t.Slug, path, q)
}

func (s *Service) enqueue(ctx context.Context, tx pgx.Tx, q *sqlcgen.Queries, t tenant.Tenant, userID uuid.UUID, to, tpl string, d mail.Data) error {
	d.Tenant = t.DisplayName()
	if d.Name == "" {
		// The greeting uses the name the user gave.
		u, err := q.GetUserByID(ctx, userID)
		switch {
		case err == nil:
			d.Name = u.Name
		case !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("mail greeting: %w", err)
		}
	}
	uid := userID
	return s.outbox.Enqueue(ctx, tx, q, mail.Mail{TenantID: t.ID, UserID: &uid, To: to, Template: tpl, Data: d})
}

func validName(n string) (string, error) {
	n = strings.TrimSpace(n)
	if utf8.RuneCountInString(n) > 200 || !utf8.ValidString(n) || strings.ContainsAny(n, "\x00\r\n") {
		return "", ErrInvalidName
	}
	return n, nil
}

func hours(d time.Duration) string {
	h := int(d.Hours())
	switch {
	case h >= 48 && h%24 == 0:
		return fmt.Sprintf("%d days", h/24)
	case h == 1:
		return "1 hour"
	}
	return fmt.Sprintf("%d hours", h)
}

// GetUser returns a user of the tenant. Errors: not_found.
func (s *Service) GetUser(ctx context.Context, tenantID, userID uuid.UUID) (User, error) {
	var u User
	err := s.store.InTenant(ctx, tenantID, func(q *sqlcgen.Queries) error {
		row, err := q.GetUserByID(ctx, userID)
		if errors.Is(err, store.ErrNotFound) {
			return apperr.New(apperr.NotFound, "not_found", "There is no such user.")
		}
		if err != nil {
			return err
		}
		u = userFromRow(row)
		return nil
	}, store.ReadOnly(), store.Idempotent())
	return u, err
}
