// Package stepup decides whether a session is recent and strong enough for a protected
// action (per-tenant rules over built-in defaults), and performs re-authentication, which
// refreshes auth_time and rotates the session token.
package stepup

import (
	"context"
	"fmt"
	"github.com/gatehouse-id/gatehouse/internal/telemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"net/url"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/mfa"
	"github.com/gatehouse-id/gatehouse/internal/password"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
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
var anyMethod = []string{"password", "totp", "recovery_code", "saml"}

// highRisk actions get 5 minutes and, for users with a second factor, two factors.
var highRisk = []tenant.StepUpAction{tenant.ActionMFADisable, tenant.ActionAccountDelete, tenant.ActionUsersDelete,
	tenant.ActionSSOConfigure, tenant.ActionPolicyUpdate, tenant.ActionRecoveryCodesRegenerate}

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

// Required is the error for an unmet requirement (403 step_up_required).
func Required(req Requirement, returnTo string, hasSecondFactor bool) error {
	q := url.Values{"action": {string(req.Action)}}
	if returnTo != "" {
		q.Set("return_to", returnTo)
	}
	d := map[string]any{"action": string(req.Action), "max_age_seconds": int(req.MaxAge.Seconds()),
		"methods": req.Methods, "reauth_url": "/reauth?" + q.Encode()}
	msg := "Confirm it's you to continue."
	if needsSecondFactor(req) && !hasSecondFactor {
		d["enroll_url"] = "/account#mfa"
		msg = "This action needs two-factor authentication: set it up first, then confirm it's you."
	}
	return apperr.New(apperr.StepUpRequired, "step_up_required", msg).WithDetails(d)
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
	now      func() time.Time

	challenges, results *telemetry.Outcomes // no-ops until SetMeter
}

// SetMeter turns on gatehouse.stepup.challenges (by action) and gatehouse.stepup.results.
func (s *Service) SetMeter(m metric.Meter) {
	s.challenges = telemetry.NewOutcomes(m, "gatehouse.stepup.challenges", "Protected actions that asked for re-authentication, by action")
	s.results = telemetry.NewOutcomes(m, "gatehouse.stepup.results", "Re-authentications by result")
}

// NewService returns the step-up service.
func NewService(st *store.Store, hasher *password.Hasher, m *mfa.Service, sessions *session.Service, limiter *ratelimit.Limiter, now func() time.Time) *Service {
	return &Service{store: st, hasher: hasher, mfa: m, sessions: sessions, limiter: limiter, now: now}
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
	if Satisfied(req, p.Session, s.now()) {
		return nil
	}
	s.challenges.Add(ctx, "step_up_required", attribute.String("action", string(action)))
	return Required(req, returnTo, has)
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

// Reauth proves identity again with a password or a TOTP / recovery code, limited like
// login (progressive delay per account and client address). On success the session has a
// new token (returned) and a fresh auth_time; the old token is dead on every node.
// Errors: invalid_credentials, invalid_code, rate_limited.
func (s *Service) Reauth(ctx context.Context, t tenant.Tenant, p session.Principal, in ReauthInput, meta session.Meta) (session.Issued, error) {
	iss, err := s.reauth(ctx, t, p, in, meta)
	s.results.Add(ctx, telemetry.Result(err))
	return iss, err
}

func (s *Service) reauth(ctx context.Context, t tenant.Tenant, p session.Principal, in ReauthInput, meta session.Meta) (session.Issued, error) {
	failKey := ratelimit.Key("reauth", p.UserID.String(), meta.IP.String())
	if wait, err := s.limiter.LoginDelay(ctx, t.ID, failKey); err != nil {
		return session.Issued{}, err
	} else if wait > 0 {
		return session.Issued{}, ratelimit.Limited(wait)
	}
	method := "password"
	if in.Password == "" {
		method = ""
	}
	if method == "password" {
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
			return session.Issued{}, err
		}
		ok, _, err := s.hasher.Verify(ctx, in.Password, stored)
		if err != nil {
			return session.Issued{}, fmt.Errorf("verify password: %w", err)
		}
		if !ok {
			_ = s.limiter.RecordLoginFailure(ctx, t.ID, failKey)
			s.recordFailure(ctx, t, p, "invalid_password")
			return session.Issued{}, ErrInvalidCredentials
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
		return ratelimit.ClearLoginFailures(ctx, q, failKey)
	})
	if apperr.Is(err, "invalid_code") {
		_ = s.limiter.RecordLoginFailure(ctx, t.ID, failKey)
		s.recordFailure(ctx, t, p, "invalid_code")
	}
	if err != nil {
		return session.Issued{}, err
	}
	s.sessions.Invalidate([][]byte{old})
	return iss, nil
}

func (s *Service) recordFailure(ctx context.Context, t tenant.Tenant, p session.Principal, reason string) {
	_ = audit.RecordAlone(ctx, s.store, t.ID, audit.By(ctx, p.UserID, p.Email), audit.Event{Action: audit.SessionStepUpFailed,
		SubjectID: p.UserID, SubjectLabel: p.Email, Details: map[string]any{"reason": reason}})
}
