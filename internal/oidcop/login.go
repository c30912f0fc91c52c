package oidcop

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/mfa"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// Step says what the sign-in bridge does next with an authorization request.
type Step struct {
	// Login: no session; sign in (LoginHint prefills the address), then come back.
	Login     bool
	LoginHint string
	// Reauth: the session is older than max_age (or prompt=login), or weaker than the
	// acr asked for while the user has a second factor; SecondFactor says which.
	Reauth       bool
	SecondFactor bool
	// Passkey: the tenant requires a passkey of the user's role (tenant.PasskeyPolicy) and
	// this session was not made with one (password, TOTP, SSO): no code is issued until the
	// user confirms with a passkey, or adds one first (stepup.RequiredPasskeyPath).
	Passkey bool
	// Consent: a third-party app (or prompt=consent) asks for Scopes.
	Consent bool
	AppName string
	Scopes  []string
	// Redirect: where the browser goes now (the library's callback, which issues the
	// code, or the app's redirect URI with an error).
	Redirect string
}

// ErrRequestExpired answers an authorization request id that is unknown or expired.
var ErrRequestExpired = apperr.New(apperr.NotFound, "authorization_request_expired",
	"This sign-in request has expired. Go back to the app and sign in again.")

// Resume moves an authorization request on for the browser's principal (nil: signed out).
// It is the one place that decides login, step-up (max_age, prompt=login, acr_values) and
// consent, and completes the request when nothing is missing.
// Errors: authorization_request_expired.
func (s *Service) Resume(ctx context.Context, t tenant.Tenant, p *session.Principal, id string) (Step, error) {
	var uid uuid.UUID
	if p != nil {
		uid = p.UserID
	}
	req, app, hasSecondFactor, err := s.loadRequest(ctx, t, id, uid)
	if err != nil {
		return Step{}, err
	}
	none := slices.Contains(req.p.Prompt, oidc.PromptNone)
	if p == nil {
		if none {
			return s.fail(t, req, "login_required", "the user is not signed in")
		}
		return Step{Login: true, LoginHint: req.p.LoginHint}, nil
	}
	owed, err := s.passkeyOwed(ctx, t, p)
	if err != nil {
		return Step{}, err
	}
	if owed {
		if none {
			return s.fail(t, req, "interaction_required", "a passkey sign-in is required")
		}
		return Step{Passkey: true}, nil
	}
	if !s.fresh(req, p.Session) {
		if none {
			return s.fail(t, req, "login_required", "the sign-in is older than max_age")
		}
		return Step{Reauth: true}, nil
	}
	wantAAL2 := slices.Contains(req.p.ACRValues, ACRSecondFactor) && !slices.Contains(req.p.ACRValues, ACRPassword)
	if wantAAL2 && p.Session.AAL != "aal2" && hasSecondFactor && !s.reauthedSince(req, p.Session) {
		if none {
			return s.fail(t, req, "interaction_required", "a second factor is needed")
		}
		return Step{Reauth: true, SecondFactor: true}, nil
	}
	if !app.FirstParty || slices.Contains(req.p.Prompt, oidc.PromptConsent) {
		granted, err := s.granted(ctx, t, p.UserID, app.ID, req.p.Scopes)
		if err != nil {
			return Step{}, err
		}
		if !granted || (slices.Contains(req.p.Prompt, oidc.PromptConsent) && !app.FirstParty) {
			if none {
				return s.fail(t, req, "consent_required", "the user has not granted these scopes")
			}
			return Step{Consent: true, AppName: app.Name, Scopes: req.p.Scopes}, nil
		}
	}
	return s.complete(ctx, t, req, p)
}

// Consent records (allow) or refuses the scopes of an authorization request, then
// resumes it. Errors: authorization_request_expired.
func (s *Service) Consent(ctx context.Context, t tenant.Tenant, p session.Principal, id string, allow bool, who audit.Who) (Step, error) {
	req, app, _, err := s.loadRequest(ctx, t, id, uuid.Nil)
	if err != nil {
		return Step{}, err
	}
	if !allow {
		return s.fail(t, req, "access_denied", "the user declined")
	}
	err = s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		if err := q.UpsertGrant(ctx, sqlcgen.UpsertGrantParams{UserID: p.UserID, AppID: app.ID, Scopes: req.p.Scopes}); err != nil {
			return err
		}
		return audit.Record(ctx, q, who, audit.Event{Action: audit.AppConsentGranted, SubjectID: p.UserID, SubjectLabel: p.Email,
			Details: map[string]any{"client_id": app.ClientID, "app": app.Name, "scopes": req.p.Scopes}})
	})
	if err != nil {
		return Step{}, err
	}
	return s.complete(ctx, t, req, &p)
}

// loadRequest reads a pending authorization request, its app and, for a signed-in user
// (userID not Nil), whether they have a second factor, in one read.
func (s *Service) loadRequest(ctx context.Context, t tenant.Tenant, id string, userID uuid.UUID) (*authRequest, sqlcgen.App, bool, error) {
	rid, err := uuid.Parse(id)
	if err != nil {
		return nil, sqlcgen.App{}, false, ErrRequestExpired
	}
	var req *authRequest
	var app sqlcgen.App
	var second bool
	err = s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		row, err := q.GetAuthRequest(ctx, sqlcgen.GetAuthRequestParams{ID: rid, Now: s.now()})
		if errors.Is(err, store.ErrNotFound) {
			return ErrRequestExpired
		}
		if err != nil {
			return err
		}
		if row.CodeHash != nil {
			return ErrRequestExpired // already answered
		}
		if req, err = requestFromRow(row); err != nil {
			return err
		}
		if app, err = q.GetApp(ctx, row.AppID); err != nil {
			return err
		}
		if userID != uuid.Nil {
			second, err = mfa.Enabled(ctx, q, userID)
		}
		return err
	}, store.ReadOnly(), store.Idempotent())
	return req, app, second, err
}

// fresh: without max_age (and prompt=login) any session will do; with it, the session's
// authentication is at most max_age old, or happened after the request was made (the
// user re-authenticated for it).
func (s *Service) fresh(req *authRequest, sess session.Session) bool {
	if req.p.MaxAge == nil && !slices.Contains(req.p.Prompt, oidc.PromptLogin) {
		return true
	}
	if s.reauthedSince(req, sess) {
		return true
	}
	if req.p.MaxAge == nil || slices.Contains(req.p.Prompt, oidc.PromptLogin) {
		return false
	}
	return s.now().Sub(sess.AuthTime) <= time.Duration(*req.p.MaxAge)*time.Second
}

func (s *Service) reauthedSince(req *authRequest, sess session.Session) bool {
	return !sess.AuthTime.Before(req.createdAt.Truncate(time.Second))
}

func (s *Service) granted(ctx context.Context, t tenant.Tenant, userID, appID uuid.UUID, scopes []string) (bool, error) {
	var ok bool
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		g, err := q.GetGrant(ctx, sqlcgen.GetGrantParams{UserID: userID, AppID: appID})
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		ok = true
		for _, sc := range scopes {
			if !slices.Contains(g.Scopes, sc) {
				ok = false
			}
		}
		return nil
	}, store.ReadOnly(), store.Idempotent())
	return ok, err
}

// AMR maps Gatehouse's session methods to RFC 8176 values.
func AMR(methods []string) []string {
	out := []string{}
	add := func(v string) {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	for _, m := range methods {
		switch m {
		case "password":
			add("pwd")
		case "totp", "recovery_code":
			add("otp")
		case "saml", "oidc":
			add("ext")
		case "passkey":
			add("hwk")
		}
	}
	if len(out) > 1 {
		add("mfa")
	}
	return out
}

// ACR names what the session proved.
func ACR(sess session.Session) string {
	if slices.Contains(sess.Methods, "passkey") {
		return ACRPhishingResistant
	}
	if sess.AAL == "aal2" {
		return ACRSecondFactor
	}
	return ACRPassword
}

func (s *Service) complete(ctx context.Context, t tenant.Tenant, req *authRequest, p *session.Principal) (Step, error) {
	// The one place a code is issued checks the passkey policy again (the consent answer
	// comes here without Resume).
	if owed, err := s.passkeyOwed(ctx, t, p); err != nil || owed {
		return Step{Passkey: owed}, err
	}
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		at := p.Session.AuthTime
		sid := p.Session.ID
		_, err := q.CompleteAuthRequest(ctx, sqlcgen.CompleteAuthRequestParams{ID: req.id, UserID: &p.UserID, SessionID: &sid,
			AuthTime: &at, AMR: AMR(p.Session.Methods), ACR: ACR(p.Session), Now: s.now()})
		if errors.Is(err, store.ErrNotFound) {
			return ErrRequestExpired
		}
		if err != nil {
			return err
		}
		// The app is told when this session ends (backchannel.go).
		return q.RecordSessionApp(ctx, sqlcgen.RecordSessionAppParams{SessionID: sid, AppID: req.appID})
	})
	if err != nil {
		return Step{}, err
	}
	return Step{Redirect: CallbackPath + "?id=" + url.QueryEscape(req.id.String())}, nil
}

// passkeyOwed reports whether the tenant requires a passkey of one of p's roles while p's
// session was not made with one.
func (s *Service) passkeyOwed(ctx context.Context, t tenant.Tenant, p *session.Principal) (bool, error) {
	if len(t.Policy.Passkeys.RequireForRoles) == 0 || p.Session.PhishingResistant() {
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

// fail answers the app's redirect URI with an OAuth error (state and iss included). The
// redirect URI was matched exactly when the request was made.
func (s *Service) fail(t tenant.Tenant, req *authRequest, code, description string) (Step, error) {
	u, err := url.Parse(req.p.RedirectURI)
	if err != nil {
		return Step{}, ErrRequestExpired
	}
	q := u.Query()
	q.Set("error", code)
	q.Set("error_description", description)
	if req.p.State != "" {
		q.Set("state", req.p.State)
	}
	q.Set("iss", s.Issuer(t))
	u.RawQuery = q.Encode()
	return Step{Redirect: u.String()}, nil
}
