package oidcop

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// The OpenID Provider's endpoints on every tenant host (API.md, Apps).
const (
	DiscoveryPath  = "/.well-known/openid-configuration"
	AuthorizePath  = "/oauth2/authorize"
	CallbackPath   = "/oauth2/authorize/callback"
	TokenPath      = "/oauth2/token"
	UserinfoPath   = "/oauth2/userinfo"
	IntrospectPath = "/oauth2/introspect"
	RevokePath     = "/oauth2/revoke"
	LogoutPath     = "/oauth2/logout"
	JWKSPath       = "/oauth2/jwks"
)

// ACR values (docs/apps.md): what a sign-in proved.
const (
	ACRPassword          = "urn:gatehouse:aal1"
	ACRSecondFactor      = "urn:gatehouse:aal2"
	ACRPhishingResistant = "urn:gatehouse:phr"
)

// Protocol is the zitadel/oidc provider over this service's storage: the handler of the
// endpoints above except discovery (Discovery), for a request whose context names the
// tenant (WithTenant).
type Protocol struct {
	s        *Service
	provider *op.Provider
}

// NewProtocol builds the provider. insecure allows an http issuer (dev and tests).
func (s *Service) NewProtocol() (*Protocol, error) {
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, err
	}
	cfg := &op.Config{CryptoKey: key, CodeMethodS256: true, AuthMethodPost: true, GrantTypeRefreshToken: true,
		SupportedScopes: []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess},
		SupportedClaims: []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "azp",
			"email", "email_verified", "name", "tenant", "roles"},
		BackChannelLogoutSupported: true, BackChannelLogoutSessionSupported: true}
	var built *op.Provider // the fast path authenticates clients through it
	issuer := func(bool) (op.IssuerFromRequest, error) {
		return func(r *http.Request) string {
			t, err := tenantFrom(r.Context())
			if err != nil {
				return ""
			}
			return s.Issuer(t)
		}, nil
	}
	opts := []op.Option{
		op.WithCustomEndpoints(op.NewEndpoint(AuthorizePath), op.NewEndpoint(TokenPath), op.NewEndpoint(UserinfoPath),
			op.NewEndpoint(RevokePath), op.NewEndpoint(LogoutPath), op.NewEndpoint(JWKSPath)),
		op.WithCustomIntrospectionEndpoint(op.NewEndpoint(IntrospectPath)),
		op.WithLogger(s.logger),
		op.WithCrypto(s.at),
		op.WithHttpInterceptors(s.fastPath(func() *op.Provider { return built })),
	}
	if s.urls.Scheme == "http" {
		opts = append(opts, op.WithAllowInsecure())
	}
	p, err := op.NewProvider(cfg, storage{s}, issuer, opts...)
	if err != nil {
		return nil, fmt.Errorf("oidc provider: %w", err)
	}
	built = p
	return &Protocol{s: s, provider: p}, nil
}

// ServeHTTP runs the protocol endpoints. Authorization responses carry iss (RFC 9207).
func (p *Protocol) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == AuthorizePath || r.URL.Path == CallbackPath {
		if t, err := tenantFrom(r.Context()); err == nil {
			w = &issWriter{ResponseWriter: w, iss: p.s.Issuer(t)}
		}
	}
	p.provider.ServeHTTP(w, r)
}

// issWriter adds iss to a redirect that answers an authorization request (it carries
// code or error) on its way to the app.
type issWriter struct {
	http.ResponseWriter
	iss string
}

func (w *issWriter) WriteHeader(status int) {
	if status == http.StatusFound || status == http.StatusSeeOther {
		if loc, err := url.Parse(w.Header().Get("Location")); err == nil && loc.IsAbs() {
			q := loc.Query()
			if (q.Has("code") || q.Has("error")) && !q.Has("iss") {
				q.Set("iss", w.iss)
				loc.RawQuery = q.Encode()
				w.Header().Set("Location", loc.String())
			}
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

// Discovery answers /.well-known/openid-configuration: the library's document, narrowed to
// what Gatehouse offers (code flow, PKCE S256, no request objects) and with the fields it
// does not know.
func (p *Protocol) Discovery(w http.ResponseWriter, r *http.Request) {
	r = r.WithContext(op.ContextWithIssuer(r.Context(), p.provider.IssuerFromRequest(r)))
	cfg := op.CreateDiscoveryConfig(r.Context(), p.provider, p.provider.Storage())
	cfg.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	cfg.ResponseModesSupported = []string{string(oidc.ResponseModeQuery)}
	cfg.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeClientCredentials}
	cfg.TokenEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodNone, oidc.AuthMethodBasic, oidc.AuthMethodPost}
	cfg.RevocationEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost}
	cfg.IntrospectionEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost}
	cfg.TokenEndpointAuthSigningAlgValuesSupported = nil
	cfg.RevocationEndpointAuthSigningAlgValuesSupported = nil
	cfg.IntrospectionEndpointAuthSigningAlgValuesSupported = nil
	cfg.RequestObjectSigningAlgValuesSupported = nil
	cfg.RequestParameterSupported = false
	cfg.DeviceAuthorizationEndpoint = ""
	cfg.ACRValuesSupported = []string{ACRPassword, ACRSecondFactor, ACRPhishingResistant}
	cfg.CodeChallengeMethodsSupported = []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256}
	raw, err := json.Marshal(cfg)
	var doc map[string]any
	if err == nil {
		err = json.Unmarshal(raw, &doc)
	}
	if err != nil {
		http.Error(w, "discovery unavailable", http.StatusInternalServerError)
		return
	}
	doc["authorization_response_iss_parameter_supported"] = true
	doc["claims_parameter_supported"] = false
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_ = json.NewEncoder(w).Encode(doc)
}
