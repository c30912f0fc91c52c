package sso

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/emailaddr"
	"github.com/gatehouse-id/gatehouse/internal/redirect"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// Route is where an email address signs in.
type Route struct {
	Method      string `json:"method"` // "password", "saml" or "oidc"
	RedirectURL string `json:"redirect_url,omitempty"`
	Enforced    bool   `json:"-"`
	Connection  string `json:"-"`
}

// Discover is home-realm discovery: an address whose domain is routed to an enabled
// connection signs in there. Enforced is set when the tenant enforces SSO for that
// domain, which requires the domain to be verified.
func (s *Service) Discover(ctx context.Context, t tenant.Tenant, email, returnTo string) (Route, error) {
	addr, err := emailaddr.Normalize(email)
	if err != nil {
		return Route{}, err
	}
	domain := addr[strings.LastIndexByte(addr, '@')+1:]
	var route Route
	err = s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		route = Route{Method: "password"} // a retried attempt starts again
		d, err := q.GetSSODomain(ctx, domain)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		c, err := q.GetSSOConnection(ctx, d.ConnectionID)
		if err != nil {
			return fmt.Errorf("discover connection: %w", err)
		}
		if !c.Enabled {
			return nil
		}
		v := url.Values{}
		if p, ok := redirect.Local(returnTo); ok {
			v.Set("return_to", p)
		}
		v.Set("login_hint", addr)
		route = Route{Method: "saml", RedirectURL: s.urls.Link(t.Slug, "/sso/saml/"+c.Slug+"/login", v),
			Enforced: c.Enforce && d.VerifiedAt != nil, Connection: c.Slug}
		if c.Protocol == ProtocolOIDC {
			route.Method, route.RedirectURL = "oidc", s.urls.Link(t.Slug, "/sso/oidc/"+c.Slug+"/login", v)
		}
		return nil
	}, store.ReadOnly(), store.Idempotent())
	return route, err
}

// ErrSSORequired answers password login, signup and reset for an address whose domain
// must sign in through SSO.
var ErrSSORequired = apperr.New(apperr.Conflict, "sso_required", "Your organization signs in with single sign-on.")

// Required returns sso_required (with the redirect) when email's domain enforces SSO.
// Addresses that do not parse pass through (the caller reports them).
func (s *Service) Required(ctx context.Context, t tenant.Tenant, email string) error {
	if _, err := emailaddr.Normalize(email); err != nil {
		return nil
	}
	r, err := s.Discover(ctx, t, email, "")
	if err != nil {
		return err
	}
	if r.Method != "password" && r.Enforced {
		return &RequiredError{RedirectURL: r.RedirectURL, app: ErrSSORequired.WithDetails(map[string]any{"redirect_url": r.RedirectURL})}
	}
	return nil
}

// RequiredError is sso_required: the address signs in at RedirectURL.
type RequiredError struct {
	RedirectURL string
	app         *apperr.Error
}

func (e *RequiredError) Error() string { return e.app.Error() }

// Unwrap gives the apperr form (kind Conflict, code sso_required).
func (e *RequiredError) Unwrap() error { return e.app }

// AsRequired returns the SSO requirement in err's chain.
func AsRequired(err error) (*RequiredError, bool) {
	var e *RequiredError
	ok := errors.As(err, &e)
	return e, ok
}
