package stepup

import (
	"context"
	"encoding/json"
	"net/url"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/passkey"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/telemetry"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// BeginPasskey starts a step-up with one of the principal's passkeys, bound to this user
// and session. Errors: no_passkeys.
func (s *Service) BeginPasskey(ctx context.Context, t tenant.Tenant, p session.Principal) (json.RawMessage, error) {
	return s.passkeys.BeginUserAssertion(ctx, t, passkey.PurposeReauth, passkey.Bind{UserID: p.UserID, SessionID: p.Session.ID})
}

// ReauthPasskey proves identity again with a passkey (method passkey, assurance phr): the
// session gets a new token (returned) and a fresh auth_time, like Reauth.
// Errors: passkey_* (see passkey.FinishAssertion).
func (s *Service) ReauthPasskey(ctx context.Context, t tenant.Tenant, p session.Principal, body []byte) (session.Issued, error) {
	iss, err := s.reauthPasskey(ctx, t, p, body)
	s.results.Add(ctx, telemetry.Result(err))
	return iss, err
}

func (s *Service) reauthPasskey(ctx context.Context, t tenant.Tenant, p session.Principal, body []byte) (session.Issued, error) {
	if _, err := s.passkeys.FinishAssertion(ctx, t, passkey.PurposeReauth, passkey.Bind{UserID: p.UserID, SessionID: p.Session.ID}, body); err != nil {
		if aerr := audit.RecordAlone(ctx, s.store, t.ID, audit.By(ctx, p.UserID, p.Email), failure(p, "passkey")); aerr != nil {
			return session.Issued{}, aerr
		}
		return session.Issued{}, err
	}
	var iss session.Issued
	var old []byte
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		var err error
		iss, old, err = session.StepUp(ctx, q, p.Session.ID, session.MethodPasskey, s.now())
		if err != nil {
			return err
		}
		return audit.Record(ctx, q, audit.By(ctx, p.UserID, p.Email), audit.Event{Action: audit.SessionStepUp, SubjectID: p.UserID,
			SubjectLabel: p.Email, Details: map[string]any{"method": session.MethodPasskey, "session_id": p.Session.ID}})
	})
	if err != nil {
		return session.Issued{}, err
	}
	s.sessions.Invalidate([][]byte{old})
	return iss, nil
}

// PasskeyChoice says what the re-authentication page offers: a passkey button when the
// user has one (has), and whether only a passkey meets action's rule (only).
func (s *Service) PasskeyChoice(ctx context.Context, t tenant.Tenant, p session.Principal, action tenant.StepUpAction) (has, only bool, err error) {
	has, err = s.passkeys.HasPasskey(ctx, t, p.UserID)
	if err != nil {
		return false, false, err
	}
	second, err := s.HasSecondFactor(ctx, t, p)
	if err != nil {
		return false, false, err
	}
	required, err := s.phishingResistantRequired(ctx, t, p)
	if err != nil {
		return false, false, err
	}
	return has, required || PasskeyOnly(Rule(t.Policy, action, second)), nil
}

// ErrPhishingResistantRequired answers a session without a passkey of a user whose role
// the tenant requires a passkey of (details.url: where to use or add one).
var ErrPhishingResistantRequired = apperr.New(apperr.Forbidden, "phishing_resistant_required",
	"Your role here requires signing in with a passkey. Use yours, or add one first.")

// RequiredPasskeyPath is the page that leads a user to use, or first add, a passkey.
const RequiredPasskeyPath = "/account/passkeys/required"

// RequirePhishingResistant refuses a session that is not phishing-resistant when the
// tenant requires a passkey of one of the user's roles (PasskeyPolicy). returnTo is where
// the page comes back to. Errors: phishing_resistant_required.
func (s *Service) RequirePhishingResistant(ctx context.Context, t tenant.Tenant, p session.Principal, returnTo string) error {
	if len(t.Policy.Passkeys.RequireForRoles) == 0 || p.Session.PhishingResistant() {
		return nil
	}
	required, err := s.phishingResistantRequired(ctx, t, p)
	if err != nil || !required {
		return err
	}
	u := RequiredPasskeyPath + "?" + url.Values{"return_to": {returnTo}}.Encode()
	return ErrPhishingResistantRequired.WithDetails(map[string]any{"url": u})
}

func (s *Service) phishingResistantRequired(ctx context.Context, t tenant.Tenant, p session.Principal) (bool, error) {
	if len(t.Policy.Passkeys.RequireForRoles) == 0 {
		return false, nil
	}
	var roles []string
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		var err error
		roles, err = q.GetUserRoles(ctx, p.UserID)
		return err
	}, store.ReadOnly(), store.Idempotent())
	return t.Policy.PhishingResistantRequired(roles), err
}
