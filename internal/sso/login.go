package sso

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"html/template"
	"net/netip"
	"net/url"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/internal/redirect"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/token"
)

// BrowserCookie binds a pending AuthnRequest to the browser that started it. The IdP
// answers with a cross-site POST, so the cookie is SameSite=None (Secure, host-only).
const BrowserCookie = "__Host-gatehouse-saml"

// Purposes of an AuthnRequest.
const (
	PurposeLogin  = "login"
	PurposeTest   = "test"
	PurposeReauth = "reauth"
)

// Start is an AuthnRequest ready to send: either a Redirect URL or an auto-posting form,
// and the browser-binding value to set as BrowserCookie.
type Start struct {
	RedirectURL string
	PostForm    []byte
	PostURL     string
	Browser     string
}

// StartInput asks for an SP-initiated login.
type StartInput struct {
	Slug      string
	Purpose   string
	ReturnTo  string
	SessionID *uuid.UUID // reauth: the session to step up
	Browser   string     // the browser's existing binding value, if any
	ClientIP  netip.Addr // for the per-address limit
	LoginHint string     // OIDC: the address discovery routed here, passed as login_hint
	Protocol  string     // the door used (/sso/saml/… or /sso/oidc/…); "" for any
}

// startPerIP bounds unauthenticated request creation (60 a minute per address).
var startPerIP = ratelimit.Rule{Name: "sso_start_ip", Limit: 60, Window: time.Minute}

// ErrDisabled answers a login through a disabled connection.
var ErrDisabled = apperr.New(apperr.Forbidden, "sso_disabled", "This single sign-on connection is turned off.")

// StartLogin creates an AuthnRequest (ForceAuthn for re-authentication) and stores its id
// server-side, bound to tenant, connection and browser, with a short expiry. RelayState
// is an opaque random reference to that row, never a URL.
func (s *Service) StartLogin(ctx context.Context, t tenant.Tenant, in StartInput) (Start, error) {
	if in.ClientIP.IsValid() {
		ok, retry, err := s.cfg.Limiter.Allow(ctx, t.ID, ratelimit.Key(ratelimit.Addr(in.ClientIP)), startPerIP)
		if err != nil {
			return Start{}, err
		}
		if !ok {
			return Start{}, ratelimit.Limited(retry)
		}
	}
	c, err := s.connBySlug(ctx, t, in.Slug)
	if err != nil {
		return Start{}, err
	}
	if in.Protocol != "" && in.Protocol != c.Protocol {
		return Start{}, ErrNotFound
	}
	if c.Protocol == ProtocolOIDC {
		return s.startOIDC(ctx, t, c, in)
	}
	if isDraft(c) {
		return Start{}, ErrDraft
	}
	if !c.Enabled && in.Purpose != PurposeTest {
		return Start{}, ErrDisabled
	}
	m, err := s.load(t, c)
	if err != nil {
		return Start{}, err
	}
	returnTo := redirect.LocalOr(in.ReturnTo, redirect.LocalOr(c.DefaultRedirect, "/"))
	sp := s.serviceProvider(ctx, t, m, false)
	if in.Purpose == PurposeReauth {
		yes := true
		sp.ForceAuthn = &yes
	}
	binding, dest := saml.HTTPRedirectBinding, m.idp.SSORedirect
	if dest == "" {
		binding, dest = saml.HTTPPostBinding, m.idp.SSOPost
	}
	req, err := sp.MakeAuthenticationRequest(dest, binding, saml.HTTPPostBinding)
	if err != nil {
		return Start{}, fmt.Errorf("authn request: %w", err)
	}
	relay, relayHash := token.New()
	browser := in.Browser
	if _, err := token.Parse(browser); err != nil {
		browser, _ = token.New()
	}
	bh := sha256.Sum256([]byte(browser))
	err = s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		return q.InsertSAMLRequest(ctx, sqlcgen.InsertSAMLRequestParams{ID: req.ID, ConnectionID: c.ID, RelayHash: relayHash,
			BrowserHash: bh[:], Purpose: in.Purpose, ReturnTo: returnTo, SessionID: in.SessionID, TTLSeconds: int32(s.cfg.RequestTTL.Seconds())})
	})
	if err != nil {
		return Start{}, err
	}
	out := Start{Browser: browser}
	if binding == saml.HTTPRedirectBinding {
		u, err := req.Redirect(relay, sp)
		if err != nil {
			return Start{}, fmt.Errorf("redirect binding: %w", err)
		}
		out.RedirectURL = u.String()
		return out, nil
	}
	out.PostForm, err = postForm(dest, "SAMLRequest", req.Element(), relay)
	out.PostURL = dest
	return out, err
}

// autoPost hands a SAML message to the IdP with the HTTP-POST binding. The page's CSP
// allows the script from /assets and form-action to the IdP's URL only (see PostCSP).
var autoPost = template.Must(template.New("post").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Signing in…</title><script src="/assets/autopost.js"></script></head>
<body><form id="saml-post" method="post" action="{{.URL}}">
<input type="hidden" name="{{.Name}}" value="{{.Value}}">{{if .Relay}}<input type="hidden" name="RelayState" value="{{.Relay}}">{{end}}
<noscript><button type="submit">Continue to your sign-in page</button></noscript></form></body></html>`))

// PostCSP is the Content-Security-Policy of an auto-posting page to dest.
func PostCSP(dest string) string {
	origin := dest
	if u, err := url.Parse(dest); err == nil {
		origin = u.Scheme + "://" + u.Host
	}
	return "default-src 'none'; script-src 'self'; form-action " + origin + "; frame-ancestors 'none'; base-uri 'none'"
}

func postForm(dest, name string, el *etree.Element, relay string) ([]byte, error) {
	doc := etree.NewDocument()
	doc.SetRoot(el)
	raw, err := doc.WriteToBytes()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	err = autoPost.Execute(&b, map[string]string{"URL": dest, "Name": name, "Value": base64.StdEncoding.EncodeToString(raw), "Relay": relay})
	return b.Bytes(), err
}

func marshalMetadata(ed *saml.EntityDescriptor) ([]byte, error) {
	out, err := xml.MarshalIndent(ed, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal SP metadata: %w", err)
	}
	return append([]byte(xml.Header), out...), nil
}
