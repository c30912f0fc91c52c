// Package stepup decides whether a session is recent and strong enough for a protected
// action (per-tenant rules over built-in defaults), and performs re-authentication, which
// refreshes auth_time and rotates the session token.
package stepup

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/mfa"
	"github.com/gatehouse-id/gatehouse/internal/passkey"
	"github.com/gatehouse-id/gatehouse/internal/password"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/telemetry"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// Requirement is what an action needs: an authentication at most MaxAge old, by one of
// Methods ("aal2" accepts any two-factor authentication).
type Requirement struct {
	Action  tenant.StepUpAction
	MaxAge  time.Duration
	Methods []string
}

// anyMethod is every way to authenticate.
var anyMethod = []string{"password", "totp", "recovery_code", "saml", "passkey"}

// highRisk actions get 5 minutes and, for users with a second factor, two factors.
var highRisk = []tenant.StepUpAction{tenant.ActionMFADisable, tenant.ActionAccountDelete, tenant.ActionUsersDelete,
	tenant.ActionSSOConfigure, tenant.ActionPolicyUpdate, tenant.ActionRecoveryCodesRegenerate, tenant.ActionAppsManage,
	tenant.ActionPasskeyRemove, tenant.ActionWebhooksManage}

// Rule returns the requirement for action: the tenant's rule if it has one, else the
// built-in default — 5 minutes for high-risk actions (two factors when the user has a
// second factor), 10 minutes for the others.
func Rule(p tenant.Policy, action tenant.StepUpAction, hasSecondFactor bool) Requirement {
	for _, r := range p.StepUp.Rules {
		if r.Action == action {
			return Requirement{Action: action, MaxAge: time.Duration(r.MaxAgeSeconds) * time.Second, Methods: r.Methods}
		}
	}
	if slices.Contains(highRisk, action) {
		if hasSecondFactor {
			return Requirement{Action: action, MaxAge: 5 * time.Minute, Methods: []string{"aal2"}}
		}
		return Requirement{Action: action, MaxAge: 5 * time.Minute, Methods: anyMethod}
	}
	return Requirement{Action: action, MaxAge: 10 * time.Minute, Methods: anyMethod}
}

// Satisfied reports whether s meets req at now.
func Satisfied(req Requirement, s session.Session, now time.Time) bool {
	if now.Sub(s.AuthTime) > req.MaxAge {
		return false
	}
	for _, m := range req.Methods {
		if m == "aal2" && s.AAL == "aal2" || slices.Contains(s.Methods, m) {
			return true
		}
	}
	return false
}

// RequiredError is an unmet step-up requirement (403 step_up_required): what the action
// needs, where a browser re-authenticates (ReauthURL), and EnrollURL when a second factor
// must be set up first. Its apperr form carries the same values as details for JSON.
type RequiredError struct {
	Requirement Requirement
	ReauthURL   string
	EnrollURL   string
	app         *apperr.Error
}

func (e *RequiredError) Error() string { return e.app.Error() }

// Unwrap gives the apperr form (kind StepUpRequired, code step_up_required).
func (e *RequiredError) Unwrap() error { return e.app }

// AsRequired returns the step-up requirement in err's chain.
func AsRequired(err error) (*RequiredError, bool) {
	var e *RequiredError
	ok := errors.As(err, &e)
	return e, ok
}

// Required is the error for an unmet requirement (403 step_up_required).
func Required(req Requirement, returnTo string, hasSecondFactor bool) error {
	q := url.Values{"action": {string(req.Action)}}
	if returnTo != "" {
		q.Set("return_to", returnTo)
	}
	e := &RequiredError{Requirement: req, ReauthURL: "/reauth?" + q.Encode()}
	d := map[string]any{"action": string(req.Action), "max_age_seconds": int(req.MaxAge.Seconds()),
		"methods": req.Methods, "reauth_url": e.ReauthURL}
	msg := "Confirm it's you to continue."
	if needsSecondFactor(req) && !hasSecondFactor {
		e.EnrollURL = "/account#mfa"
		d["enroll_url"] = e.EnrollURL
		msg = "This action needs two-factor authentication: set it up first, then confirm it's you."
	}
	e.app = apperr.New(apperr.StepUpRequired, "step_up_required", msg).WithDetails(d)
	return e
}

func needsSecondFactor(req Requirement) bool {
	for _, m := range req.Methods {
		if m == "password" || m == "saml" {
			return false
		}
	}
	return true
}

// Service enforces rules and re-authenticates.
type Service struct {
	store    *store.Store
	hasher   *password.Hasher
	mfa      *mfa.Service
	sessions *session.Service
	limiter  *ratelimit.Limiter
	passkeys *passkey.Service
	notice   ratelimit.LockNotice // mails a lock of the user's password or second factor
	now      func() time.Time

	challenges, results *telemetry.Outcomes
}

// Deps are the step-up service's collaborators; every one is required.
type Deps struct {
	Store    *store.Store
	Hasher   *password.Hasher
	MFA      *mfa.Service
	Sessions *session.Service
	Limiter  *ratelimit.Limiter
	Passkeys *passkey.Service // step-up with a passkey
	// LockNotice mails a lock of the user's password or second factor that
	// re-authentication failures started (account.Service.LockNotice).
	LockNotice ratelimit.LockNotice
	Meter      metric.Meter // gatehouse.stepup.challenges (by action), gatehouse.stepup.results
	Now        func() time.Time
}

// NewService returns the step-up service. Errors: a missing dependency.
func NewService(d Deps) (*Service, error) {
	if d.Store == nil || d.Hasher == nil || d.MFA == nil || d.Sessions == nil || d.Limiter == nil || d.Passkeys == nil || d.LockNotice == nil ||
		d.Meter == nil || d.Now == nil {
		return nil, errors.New("stepup: store, hasher, mfa, sessions, limiter, passkeys, lock notice, meter and clock are required")
	}
	return &Service{store: d.Store, hasher: d.Hasher, mfa: d.MFA, sessions: d.Sessions, limiter: d.Limiter, passkeys: d.Passkeys,
		notice: d.LockNotice, now: d.Now,
		challenges: telemetry.NewOutcomes(d.Meter, "gatehouse.stepup.challenges", "Protected actions that asked for re-authentication, by action"),
		results:    telemetry.NewOutcomes(d.Meter, "gatehouse.stepup.results", "Re-authentications by result")}, nil
}

// Require checks action for the principal: the one place every protected action calls.
// returnTo is where a page should come back to after re-authenticating.
// Errors: step_up_required.
func (s *Service) Require(ctx context.Context, t tenant.Tenant, p session.Principal, action tenant.StepUpAction, returnTo string) error {
	has, err := s.HasSecondFactor(ctx, t, p)
	if err != nil {
		return err
	}
	req := Rule(t.Policy, action, has)
	// A user the tenant requires a passkey of re-authenticates with one only (except to
	// add the first one).
	if pr, err := s.phishingResistantRequired(ctx, t, p); err != nil {
		return err
	} else if pr {
		hasPasskey, err := s.passkeys.HasPasskey(ctx, t, p.UserID)
		if err != nil {
			return err
		}
		if hasPasskey || action != tenant.ActionMFAEnroll {
			req.Methods = []string{session.MethodPasskey}
		}
	}
	if Satisfied(req, p.Session, s.now()) {
		return nil
	}
	s.challenges.Add(ctx, "step_up_required", attribute.String("action", string(action)))
	if PasskeyOnly(req) {
		hasPasskey, err := s.passkeys.HasPasskey(ctx, t, p.UserID)
		if err != nil {
			return err
		}
		return RequiredPasskey(req, returnTo, hasPasskey)
	}
	return Required(req, returnTo, has)
}

// PasskeyOnly reports whether only a passkey meets req (a password or a code never does).
func PasskeyOnly(req Requirement) bool {
	return len(req.Methods) > 0 && !slices.ContainsFunc(req.Methods, func(m string) bool { return m != session.MethodPasskey })
}

// RequiredPasskey is Required for a rule only a passkey meets: a user without one is sent
// to add one first (EnrollURL /account#passkeys).
func RequiredPasskey(req Requirement, returnTo string, hasPasskey bool) error {
	err := Required(req, returnTo, true)
	e, _ := AsRequired(err)
	if !hasPasskey {
		e.EnrollURL = "/account#passkeys"
		d := map[string]any{}
		for k, v := range e.app.Details {
			d[k] = v
		}
		d["enroll_url"] = e.EnrollURL
		e.app = apperr.New(apperr.StepUpRequired, "step_up_required", "This action needs a passkey: add one first, then confirm it's you with it.").WithDetails(d)
	}
	return e
}

// HasSecondFactor reports whether the user has a confirmed second factor.
func (s *Service) HasSecondFactor(ctx context.Context, t tenant.Tenant, p session.Principal) (bool, error) {
	var has bool
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		var err error
		has, err = mfa.Enabled(ctx, q, p.UserID)
		return err
	}, store.ReadOnly(), store.Idempotent())
	return has, err
}

// ReauthInput is a password or a second-factor code.
type ReauthInput struct {
	Password string
	Code     string
}

// ErrInvalidCredentials answers a wrong password or code.
var ErrInvalidCredentials = apperr.New(apperr.Unauthenticated, "invalid_credentials", "That is not correct.")

// Reauth proves identity again with a password or a TOTP / recovery code. Failures count
// per account and client address, and per account across every address and entry point
// (the password's counter is shared with the password change's current_password, the
// codes' with the second sign-in step): a growing delay, then a temporary lock with a mail
// (ratelimit.Begin). On success the session has a new token (returned) and a fresh
// auth_time; the old token is dead on every node.
// Errors: invalid_credentials, invalid_code, totp_code_used, recovery_code_used, rate_limited.
func (s *Service) Reauth(ctx context.Context, t tenant.Tenant, p session.Principal, in ReauthInput, meta session.Meta) (session.Issued, error) {
	iss, err := s.reauth(ctx, t, p, in, meta)
	s.results.Add(ctx, telemetry.Result(err))
	return iss, err
}

func (s *Service) reauth(ctx context.Context, t tenant.Tenant, p session.Principal, in ReauthInput, meta session.Meta) (session.Issued, error) {
	var attempt *ratelimit.Attempt
	var method string
	if in.Password != "" {
		// The password check a password change shares (its counters included).
		var ok bool
		var err error
		attempt, ok, err = s.limiter.CheckSignedInPassword(ctx, s.hasher, ratelimit.SignedInPassword{Tenant: t,
			UserID: p.UserID, Email: p.Email, IP: meta.IP, Password: in.Password, Notice: s.notice,
			Failure: failure(p, "invalid_password")})
		if err != nil {
			return session.Issued{}, err
		}
		if !ok {
			return session.Issued{}, ErrInvalidCredentials
		}
		method = "password"
	} else {
		var err error
		attempt, err = s.limiter.Begin(ctx, ratelimit.Check{Tenant: t, Secret: ratelimit.SecondFactor,
			Address: ratelimit.SignedInKey(p.UserID, meta.IP), Account: p.UserID, Notice: s.notice})
		if err != nil {
			return session.Issued{}, err
		}
	}
	var iss session.Issued
	var old []byte
	err := s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		if method == "" {
			m, err := s.mfa.Verify(ctx, q, t.ID, p.UserID, in.Code)
			if err != nil {
				return err
			}
			method = m
		}
		var err error
		iss, old, err = session.StepUp(ctx, q, p.Session.ID, method, s.now())
		if err != nil {
			return err
		}
		if err := audit.Record(ctx, q, audit.By(ctx, p.UserID, p.Email), audit.Event{Action: audit.SessionStepUp, SubjectID: p.UserID,
			SubjectLabel: p.Email, Details: map[string]any{"method": method, "session_id": p.Session.ID}}); err != nil {
			return err
		}
		return attempt.Passed(ctx, q)
	})
	if mfa.WrongCode(err) {
		if ferr := attempt.Failed(ctx, audit.By(ctx, p.UserID, p.Email), failure(p, apperr.From(err).Code)); ferr != nil {
			return session.Issued{}, ferr
		}
	}
	if err != nil {
		return session.Issued{}, err
	}
	s.sessions.Invalidate([][]byte{old})
	return iss, nil
}

// failure is the audit event of a failed re-authentication.
func failure(p session.Principal, reason string) audit.Event {
	return audit.Event{Action: audit.SessionStepUpFailed, SubjectID: p.UserID, SubjectLabel: p.Email,
		Details: map[string]any{"reason": reason}}
}
