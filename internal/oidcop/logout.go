package oidcop

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0; docs/apps.md "Sign-out").
// An app sends the browser to /oauth2/logout with the ID token it holds (id_token_hint),
// where to come back (post_logout_redirect_uri) and state. The hint is verified with the
// tenant's keys; its sid names the Gatehouse session. That session ends at once when it is
// the browser's; any other signed-in browser (or a request without a hint, which anyone
// can make) is asked to confirm first, so a link on another site cannot sign people out.
// The browser goes back only to a post_logout_redirect_uri registered, exactly, for the
// app the hint names; otherwise it sees a signed-out page. Ending the session fans out
// like every session end: the other apps get their back-channel logout.

// LogoutConfirmPath is the confirmation form's target (same-origin POST only).
const LogoutConfirmPath = LogoutPath + "/confirm"

// ErrInvalidLogout answers an id_token_hint that is not an ID token of this issuer, or a
// client_id that is not the hint's app.
var ErrInvalidLogout = apperr.New(apperr.Invalid, "invalid_logout_request",
	"This sign-out link is not valid. You can sign out from your account page.")

// LogoutRequest are the end-session parameters.
type LogoutRequest struct {
	IDTokenHint           string
	ClientID              string
	PostLogoutRedirectURI string
	State                 string
}

// LogoutResult says what happened and what the page shows next.
type LogoutResult struct {
	// Confirm: nothing ended yet; ask the signed-in user (Email) whether to sign out.
	Confirm bool
	Email   string
	// Ended: the browser's Gatehouse session was ended (clear its cookie).
	Ended bool
	// AppName is the hint's app ("" without a hint).
	AppName string
	// Redirect is the registered post_logout_redirect_uri with state; "" shows the
	// signed-out page.
	Redirect string
	// UnknownRedirect: the app asked to go back to a URI it has not registered.
	UnknownRedirect bool
}

// hint is what a verified id_token_hint says.
type hint struct {
	app sqlcgen.App
	sub string
	sid uuid.UUID // uuid.Nil without sid
}

// Logout runs RP-initiated logout for the browser's principal (nil when signed out).
// confirmed is the user's "Sign out" on the confirmation page; stay their "Stay signed
// in". Errors: invalid_logout_request.
func (s *Service) Logout(ctx context.Context, t tenant.Tenant, browser *session.Principal, req LogoutRequest, confirmed, stay bool) (LogoutResult, error) {
	var res LogoutResult
	var h *hint
	if req.IDTokenHint != "" {
		var err error
		if h, err = s.verifyHint(ctx, t, req.IDTokenHint); err != nil {
			return LogoutResult{}, err
		}
		if req.ClientID != "" && req.ClientID != h.app.ClientID {
			return LogoutResult{}, ErrInvalidLogout
		}
		res.AppName = h.app.Name
		if req.PostLogoutRedirectURI != "" {
			if slices.Contains(h.app.PostLogoutRedirectURIs, req.PostLogoutRedirectURI) {
				res.Redirect = withState(req.PostLogoutRedirectURI, req.State)
			} else {
				res.UnknownRedirect = true
			}
		}
	} else if req.PostLogoutRedirectURI != "" {
		res.UnknownRedirect = true // without a hint no app is named: never redirect
	}
	if browser == nil || stay {
		return res, nil
	}
	own := h != nil && h.sid == browser.Session.ID && h.sub == browser.UserID.String()
	if !own && !confirmed {
		res.Confirm, res.Email, res.Redirect = true, browser.Email, ""
		return res, nil
	}
	if err := s.sessions.Revoke(ctx, *browser, browser.Session.ID, "oidc_logout"); err != nil && !errors.Is(err, session.ErrNotFound) {
		return LogoutResult{}, fmt.Errorf("end session: %w", err)
	}
	res.Ended = true
	return res, nil
}

// withState appends state to a registered redirect URI (kept exactly otherwise).
func withState(raw, state string) string {
	if state == "" {
		return raw
	}
	sep := "?"
	if strings.Contains(raw, "?") {
		sep = "&"
	}
	return raw + sep + url.Values{"state": {state}}.Encode()
}

// verifyHint checks an id_token_hint: an RS256 JWT signed by one of this tenant's
// published keys, issued by this tenant's issuer to one of its apps. An expired hint is
// accepted (RP-Initiated Logout 1.0 §4: the app's session may have outlived it); access
// and logout tokens, signed by the same keys (and typed JWT by the library for access
// tokens), are told apart by their claims.
func (s *Service) verifyHint(ctx context.Context, t tenant.Tenant, raw string) (*hint, error) {
	if len(raw) > 8192 {
		return nil, ErrInvalidLogout
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil || len(tok.Headers) != 1 {
		return nil, ErrInvalidLogout
	}
	head := tok.Headers[0]
	if typ, _ := head.ExtraHeaders[jose.HeaderType].(string); typ != "" && !strings.EqualFold(typ, "JWT") {
		return nil, ErrInvalidLogout
	}
	tk, err := s.keys.keys(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	var key *jose.JSONWebKey
	for i := range tk.published {
		if tk.published[i].KeyID == head.KeyID {
			key = &tk.published[i]
		}
	}
	if key == nil {
		return nil, ErrInvalidLogout
	}
	var std jwt.Claims
	var extra struct {
		SID    string         `json:"sid"`
		AZP    string         `json:"azp"`
		Scope  *string        `json:"scope"`
		Events map[string]any `json:"events"`
	}
	if err := tok.Claims(key.Key, &std, &extra); err != nil {
		return nil, ErrInvalidLogout
	}
	// Access tokens (jti, scope) and logout tokens (jti, events) share the keys; Gatehouse's
	// ID tokens carry neither.
	if std.Issuer != s.Issuer(t) || std.Subject == "" || len(std.Audience) == 0 || std.ID != "" || extra.Scope != nil || extra.Events != nil {
		return nil, ErrInvalidLogout
	}
	clientID := std.Audience[0]
	if extra.AZP != "" {
		clientID = extra.AZP
	}
	if !slices.Contains(std.Audience, clientID) {
		return nil, ErrInvalidLogout
	}
	h := &hint{sub: std.Subject}
	if extra.SID != "" {
		if h.sid, err = uuid.Parse(extra.SID); err != nil {
			return nil, ErrInvalidLogout
		}
	}
	err = s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		h.app, err = q.GetAppByClientID(ctx, clientID)
		return err
	}, store.ReadOnly(), store.Idempotent())
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrInvalidLogout
	}
	if err != nil {
		return nil, fmt.Errorf("logout hint app: %w", err)
	}
	return h, nil
}
