package oidcop

import (
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

// client is an app as zitadel/oidc's op.Client.
type client struct{ app sqlcgen.App }

var _ op.Client = client{}

// LoginPath is where /oauth2/authorize sends the browser: Gatehouse's own sign-in bridge,
// which signs the user in through the tenant's pages, steps up, asks consent, and then
// completes the request (internal/httpapi/oidchttp).
const LoginPath = "/oauth2/login"

func (c client) GetID() string                    { return c.app.ClientID }
func (c client) RedirectURIs() []string           { return c.app.RedirectURIs }
func (c client) PostLogoutRedirectURIs() []string { return c.app.PostLogoutRedirectURIs }
func (c client) LoginURL(id string) string        { return LoginPath + "?id=" + id }
func (c client) AccessTokenType() op.AccessTokenType {
	return op.AccessTokenTypeBearer // signed as RFC 9068 at+jwt by atCrypto
}
func (c client) IDTokenLifetime() time.Duration { return time.Hour }
func (c client) DevMode() bool                  { return false }
func (c client) ClockSkew() time.Duration       { return 0 }

// IDTokenUserinfoClaimsAssertion: the ID token carries email, name and the other claims
// of its scopes even though an access token comes with it (API.md).
func (c client) IDTokenUserinfoClaimsAssertion() bool { return true }

func (c client) ApplicationType() op.ApplicationType {
	if c.app.Type == "public" {
		return op.ApplicationTypeNative // loopback and private-use redirect URIs (RFC 8252)
	}
	return op.ApplicationTypeWeb
}

func (c client) AuthMethod() oidc.AuthMethod {
	if c.app.Type == "public" {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic // client_secret_basic and client_secret_post alike
}

func (c client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (c client) GrantTypes() []oidc.GrantType {
	var out []oidc.GrantType
	for _, g := range c.app.GrantTypes {
		out = append(out, oidc.GrantType(g))
	}
	return out
}

func (c client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed: only the scopes the admin allowed this app (standard ones are filtered
// again in CreateAuthRequest).
func (c client) IsScopeAllowed(scope string) bool { return slices.Contains(c.app.AllowedScopes, scope) }
