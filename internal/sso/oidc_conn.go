package sso

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/domainverify"
	"github.com/gatehouse-id/gatehouse/internal/events"
	"github.com/gatehouse-id/gatehouse/internal/outbound"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// Protocols of a connection.
const (
	ProtocolSAML = "saml"
	ProtocolOIDC = "oidc"
)

// OIDCSettings is an OIDC connection's IdP as the admin API shows it (never the secret).
type OIDCSettings struct {
	Issuer             string    `json:"issuer"`
	ClientID           string    `json:"client_id"`
	ClientSecretSet    bool      `json:"client_secret_set"`
	Scopes             []string  `json:"scopes"`
	HostedDomain       *string   `json:"hosted_domain"`
	EntraTenant        *string   `json:"entra_tenant_id"`
	AuthorizationURL   string    `json:"authorization_endpoint"`
	TokenURL           string    `json:"token_endpoint"`
	UserInfoURL        string    `json:"userinfo_endpoint,omitempty"`
	EndSessionURL      string    `json:"end_session_endpoint,omitempty"`
	SigningAlgs        []string  `json:"id_token_signing_alg_values_supported"`
	DiscoveryFetchedAt time.Time `json:"discovery_fetched_at"`
}

// discovery is the part of an OpenID Provider's discovery document Gatehouse uses.
type discovery struct {
	oidc.ProviderConfig
	EndSessionURL string `json:"end_session_endpoint,omitempty"`
}

// ErrDiscovery answers an issuer whose discovery document could not be fetched or read.
var ErrDiscovery = apperr.New(apperr.Invalid, "oidc_discovery_failed", "The issuer's OpenID Connect discovery document could not be fetched or is not valid.")

// defaultScopes are requested when a connection names none (openid is always sent).
var defaultScopes = []string{"openid", "email", "profile"}

// oidcFieldsForSAML names an OIDC-only field set on a SAML connection's input ("" if none).
func oidcFieldsForSAML(in Input) string {
	switch {
	case in.Issuer != nil:
		return "issuer"
	case in.ClientID != nil:
		return "client_id"
	case in.ClientSecret != nil:
		return "client_secret"
	case in.Scopes != nil:
		return "scopes"
	case in.ClaimMapping != nil:
		return "claim_mapping"
	case in.HostedDomain != nil:
		return "hosted_domain"
	case in.EntraTenant != nil:
		return "entra_tenant_id"
	}
	return ""
}

// Discover fetches and checks the discovery document of issuer through the outbound
// client (go-oidc's discovery with the outbound client's http.Client bound to the
// context): the document's issuer must be issuer exactly.
func (s *Service) discover(ctx context.Context, issuer string) ([]byte, discovery, error) {
	if _, err := s.out.CheckURL(issuer, "issuers"); err != nil {
		return nil, discovery{}, ErrDiscovery.WithDetails(map[string]any{"reason": outbound.Reason(err)})
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, s.out.HTTPClient()), issuer)
	if err != nil {
		reason := outbound.Reason(err)
		if reason == "" || reason == err.Error() {
			reason = clipMsg(err.Error())
		}
		return nil, discovery{}, ErrDiscovery.WithDetails(map[string]any{"reason": reason})
	}
	var raw json.RawMessage
	if err := p.Claims(&raw); err != nil {
		return nil, discovery{}, ErrDiscovery.WithDetails(map[string]any{"reason": "the document is not JSON"})
	}
	var d discovery
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, discovery{}, ErrDiscovery.WithDetails(map[string]any{"reason": "the document is not valid"})
	}
	if msg := checkDiscovery(d, issuer); msg != "" {
		return nil, discovery{}, ErrDiscovery.WithDetails(map[string]any{"reason": msg})
	}
	if len(raw) > MaxMetadataBytes {
		return nil, discovery{}, ErrDiscovery.WithDetails(map[string]any{"reason": "the document is too large"})
	}
	return raw, d, nil
}

func checkDiscovery(d discovery, issuer string) string {
	if d.IssuerURL != issuer {
		return "the document's issuer is not the issuer given"
	}
	for name, v := range map[string]string{"authorization_endpoint": d.AuthURL, "token_endpoint": d.TokenURL, "jwks_uri": d.JWKSURL} {
		if u, err := url.Parse(v); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return "the document has no usable " + name
		}
	}
	if slices.Contains(d.Algorithms, "none") && len(d.Algorithms) == 1 {
		return "the provider signs ID tokens with no algorithm"
	}
	return ""
}

// oidcInput is the validated OIDC part of an input, merged with the current connection.
type oidcInput struct {
	issuer, clientID  string
	secret            *string // nil: keep the sealed one
	scopes            []string
	hostedDomain, tid *string
}

func mergeOIDC(cur *sqlcgen.SSOConnection, in Input) (oidcInput, error) {
	var o oidcInput
	if cur != nil {
		o = oidcInput{issuer: deref(cur.OIDCIssuer), clientID: deref(cur.OIDCClientID), scopes: cur.OIDCScopes,
			hostedDomain: cur.OIDCHostedDomain, tid: cur.OIDCTenant}
	}
	if in.Issuer != nil {
		o.issuer = strings.TrimSpace(*in.Issuer)
	}
	if u, err := url.Parse(o.issuer); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.RawQuery != "" || u.Fragment != "" || len(o.issuer) > 1024 {
		return o, invalid("issuer", "the IdP's issuer URL, such as https://login.microsoftonline.com/{tenant}/v2.0")
	}
	if in.ClientID != nil {
		o.clientID = strings.TrimSpace(*in.ClientID)
	}
	if o.clientID == "" || len(o.clientID) > 512 {
		return o, invalid("client_id", "the client ID the IdP gave this app (1 to 512 characters)")
	}
	if in.ClientSecret != nil {
		sec := strings.TrimSpace(*in.ClientSecret)
		if sec == "" || len(sec) > 2048 {
			return o, invalid("client_secret", "the client secret the IdP gave this app")
		}
		o.secret = &sec
	} else if cur == nil {
		return o, invalid("client_secret", "the client secret the IdP gave this app")
	}
	if in.Scopes != nil {
		o.scopes = []string{}
		for _, sc := range *in.Scopes {
			sc = strings.TrimSpace(sc)
			if sc == "" || len(sc) > 100 || strings.ContainsAny(sc, " \t\"\\") {
				return o, invalid("scopes", "scope names without spaces")
			}
			if !slices.Contains(o.scopes, sc) {
				o.scopes = append(o.scopes, sc)
			}
		}
		if len(o.scopes) > 20 {
			return o, invalid("scopes", "at most 20 scopes")
		}
	}
	if o.scopes == nil {
		o.scopes = []string{}
	}
	if in.HostedDomain != nil {
		o.hostedDomain = nil
		if v := strings.TrimSpace(*in.HostedDomain); v != "" {
			d, err := domainverify.NormalizeDomain(v)
			if err != nil {
				return o, invalid("hosted_domain", "the Google Workspace primary domain, such as example.com")
			}
			o.hostedDomain = &d
		}
	}
	if in.EntraTenant != nil {
		o.tid = nil
		if v := strings.ToLower(strings.TrimSpace(*in.EntraTenant)); v != "" {
			if _, err := uuid.Parse(v); err != nil {
				return o, invalid("entra_tenant_id", "the Directory (tenant) ID, a GUID")
			}
			o.tid = &v
		}
	}
	return o, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// secretAAD binds a sealed client secret to its tenant and connection.
func secretAAD(tenantID, connID uuid.UUID) []byte {
	return []byte("sso-oidc-client-secret|" + tenantID.String() + "|" + connID.String())
}

// mergeOIDCSettings applies claim_mapping (the OIDC name of attribute_mapping).
func mergeOIDCSettings(cur *sqlcgen.SSOConnection, in Input) (settings, error) {
	if in.ClaimMapping != nil {
		in.AttributeMapping = in.ClaimMapping
	}
	if in.NameIDFormat != nil || in.AllowIdPInitiated != nil {
		return settings{}, invalid("name_id_format", "SAML settings do not apply to an OIDC connection")
	}
	if in.MetadataXML != nil || in.MetadataURL != nil || in.SSOURL != nil || in.EntityID != nil || in.Certificates != nil {
		return settings{}, invalid("idp_metadata_xml", "SAML metadata does not apply to an OIDC connection")
	}
	return mergeSettings(cur, in)
}

// createOIDC adds an OIDC connection: its discovery is fetched and checked first, the
// client secret sealed. Errors: invalid_connection, oidc_discovery_failed, slug_taken.
func (s *Service) createOIDC(ctx context.Context, t tenant.Tenant, in Input, who audit.Who) (Connection, error) {
	st, err := mergeOIDCSettings(nil, in)
	if err != nil {
		return Connection{}, err
	}
	o, err := mergeOIDC(nil, in)
	if err != nil {
		return Connection{}, err
	}
	var domains []string
	if in.Domains != nil {
		if domains, err = normalizeDomains(*in.Domains); err != nil {
			return Connection{}, err
		}
	}
	raw, _, err := s.discover(ctx, o.issuer)
	if err != nil {
		return Connection{}, err
	}
	id := uuid.New()
	keyID, sealed, err := s.box.Seal([]byte(*o.secret), secretAAD(t.ID, id))
	if err != nil {
		return Connection{}, fmt.Errorf("seal client secret: %w", err)
	}
	var out Connection
	err = s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		out = Connection{} // set again by the attempt that commits
		row, err := q.InsertOIDCConnection(ctx, sqlcgen.InsertOIDCConnectionParams{ID: id, Slug: st.slug, Name: st.name,
			Provider: st.provider, OIDCIssuer: o.issuer, SpKeyID: "", SpKeySealed: []byte{}, SpCertDer: []byte{},
			JIT: st.jit, Enforce: st.enforce, DefaultRedirect: st.defaultRedirect, AttributeMapping: st.mapping,
			RoleMapping: st.roles, Enabled: st.enabled, OIDCClientID: &o.clientID, OIDCSecretKeyID: &keyID,
			OIDCSecretSealed: sealed, OIDCScopes: o.scopes, OIDCDiscovery: raw, OIDCHostedDomain: o.hostedDomain, OIDCTenant: o.tid})
		if _, ok := store.AsUniqueViolation(err); ok {
			return ErrSlugTaken
		}
		if err != nil {
			return fmt.Errorf("insert oidc connection: %w", err)
		}
		if err := setDomains(ctx, q, row.ID, domains); err != nil {
			return err
		}
		if out, err = s.viewOf(ctx, q, t, row); err != nil {
			return err
		}
		if err := audit.Record(ctx, q, who, audit.Event{Action: audit.SSOConnCreated, Details: map[string]any{
			"connection_id": row.ID, "name": row.Name, "protocol": ProtocolOIDC, "issuer": o.issuer, "domains": domains}}); err != nil {
			return err
		}
		return emitConnection(ctx, q, events.SSOConnectionCreated, row)
	})
	return out, err
}

// updateOIDC changes an OIDC connection; a new issuer is discovered again, a new secret
// sealed. Errors: as createOIDC, not_found.
func (s *Service) updateOIDC(ctx context.Context, t tenant.Tenant, cur sqlcgen.SSOConnection, in Input, who audit.Who) (Connection, error) {
	st, err := mergeOIDCSettings(&cur, in)
	if err != nil {
		return Connection{}, err
	}
	o, err := mergeOIDC(&cur, in)
	if err != nil {
		return Connection{}, err
	}
	var domains []string
	if in.Domains != nil {
		if domains, err = normalizeDomains(*in.Domains); err != nil {
			return Connection{}, err
		}
	}
	p := sqlcgen.UpdateOIDCConnectionParams{ID: cur.ID, Name: st.name, Provider: st.provider, JIT: st.jit, Enforce: st.enforce,
		DefaultRedirect: st.defaultRedirect, AttributeMapping: st.mapping, RoleMapping: st.roles, Enabled: st.enabled,
		OIDCIssuer: o.issuer, OIDCClientID: &o.clientID, OIDCSecretKeyID: cur.OIDCSecretKeyID, OIDCSecretSealed: cur.OIDCSecretSealed,
		OIDCScopes: o.scopes, OIDCDiscovery: cur.OIDCDiscovery, MetadataFetchedAt: cur.MetadataFetchedAt,
		OIDCHostedDomain: o.hostedDomain, OIDCTenant: o.tid}
	issuerChanged := o.issuer != deref(cur.OIDCIssuer)
	if issuerChanged {
		raw, _, err := s.discover(ctx, o.issuer)
		if err != nil {
			return Connection{}, err
		}
		now := s.now()
		p.OIDCDiscovery, p.MetadataFetchedAt = raw, &now
	}
	if o.secret != nil {
		keyID, sealed, err := s.box.Seal([]byte(*o.secret), secretAAD(t.ID, cur.ID))
		if err != nil {
			return Connection{}, fmt.Errorf("seal client secret: %w", err)
		}
		p.OIDCSecretKeyID, p.OIDCSecretSealed = &keyID, sealed
	}
	var out Connection
	err = s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		out = Connection{} // set again by the attempt that commits
		row, err := q.UpdateOIDCConnection(ctx, p)
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if in.Domains != nil {
			if err := setDomains(ctx, q, cur.ID, domains); err != nil {
				return err
			}
		}
		if out, err = s.viewOf(ctx, q, t, row); err != nil {
			return err
		}
		if err := audit.Record(ctx, q, who, audit.Event{Action: audit.SSOConnUpdated, Details: map[string]any{
			"connection_id": cur.ID, "protocol": ProtocolOIDC, "issuer_changed": issuerChanged, "secret_changed": o.secret != nil,
			"enforce": st.enforce, "jit": st.jit}}); err != nil {
			return err
		}
		return emitConnection(ctx, q, events.SSOConnectionUpdated, row)
	})
	s.forgetOIDC(cur.ID)
	return out, err
}

// oidcView fills the OIDC part of a connection's view: no SP values, the redirect URI.
func (s *Service) oidcView(t tenant.Tenant, c sqlcgen.SSOConnection, v *Connection) {
	v.SPEntityID, v.ACSURL, v.SPMetadataURL, v.SLOURL = "", "", "", ""
	v.SPCertificates = []CertInfo{}
	v.LoginURL = s.urls.Link(t.Slug, "/sso/oidc/"+c.Slug+"/login", nil)
	v.RedirectURI = s.redirectURI(t, c.Slug)
	v.PostLogoutURI = s.PostLogoutURI(t)
	v.IdP = IdP{EntityID: deref(c.OIDCIssuer), NameIDFormats: []string{}, Certificates: []CertInfo{}}
	o := &OIDCSettings{Issuer: deref(c.OIDCIssuer), ClientID: deref(c.OIDCClientID), ClientSecretSet: len(c.OIDCSecretSealed) > 0,
		Scopes: requestedScopes(c.OIDCScopes), HostedDomain: c.OIDCHostedDomain, EntraTenant: c.OIDCTenant, SigningAlgs: []string{}}
	if c.MetadataFetchedAt != nil {
		o.DiscoveryFetchedAt = *c.MetadataFetchedAt
	}
	var d discovery
	if err := json.Unmarshal(c.OIDCDiscovery, &d); err == nil {
		o.AuthorizationURL, o.TokenURL, o.UserInfoURL, o.EndSessionURL = d.AuthURL, d.TokenURL, d.UserInfoURL, d.EndSessionURL
		if d.Algorithms != nil {
			o.SigningAlgs = d.Algorithms
		}
	}
	v.OIDC = o
}

// RedirectURI is the callback an OIDC connection of that slug has (for the portal's
// guide before the connection exists).
func (s *Service) RedirectURI(t tenant.Tenant, slug string) string { return s.redirectURI(t, slug) }

// redirectURI is the callback an OIDC connection's IdP must have registered.
func (s *Service) redirectURI(t tenant.Tenant, slug string) string {
	return s.urls.Link(t.Slug, "/sso/oidc/"+slug+"/callback", nil)
}

// requestedScopes is openid followed by the connection's scopes (the defaults if none).
func requestedScopes(configured []string) []string {
	list := configured
	if len(list) == 0 {
		list = defaultScopes
	}
	out := []string{"openid"}
	for _, sc := range list {
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out
}

// refreshOIDC fetches every OIDC connection's discovery document again; a failure keeps
// the last good document and records the error for the admin.
func (s *Service) refreshOIDC(ctx context.Context, t tenant.Tenant) error {
	var conns []sqlcgen.SSOConnection
	if err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		var err error
		conns, err = q.ListOIDCConnections(ctx)
		return err
	}, store.ReadOnly(), store.Idempotent()); err != nil {
		return err
	}
	var firstErr error
	for _, c := range conns {
		raw, _, derr := s.discover(ctx, deref(c.OIDCIssuer))
		err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
			if derr != nil {
				msg := clipMsg(derr.Error())
				var ae *apperr.Error
				if errors.As(derr, &ae) {
					if r, ok := ae.Details["reason"].(string); ok {
						msg = clipMsg("discovery: " + r)
					}
				}
				return q.SetSSOMetadataError(ctx, sqlcgen.SetSSOMetadataErrorParams{ID: c.ID, MetadataError: &msg})
			}
			return q.SetOIDCDiscovery(ctx, sqlcgen.SetOIDCDiscoveryParams{ID: c.ID, OIDCDiscovery: raw})
		})
		if err != nil {
			firstErr = errors.Join(firstErr, err)
		}
		s.forgetOIDC(c.ID)
	}
	return firstErr
}
