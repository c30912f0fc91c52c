package sso

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/domainverify"
	"github.com/gatehouse-id/gatehouse/internal/events"
	"github.com/gatehouse-id/gatehouse/internal/redirect"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/token"
)

// Input creates or (PATCH: nil fields keep their value) changes a connection. The IdP
// comes from pasted or uploaded metadata, a metadata URL, or manual fields.
type Input struct {
	Name              *string            `json:"name"`
	Slug              *string            `json:"slug"`
	Provider          *string            `json:"provider"`
	MetadataXML       *string            `json:"idp_metadata_xml"`
	MetadataURL       *string            `json:"idp_metadata_url"`
	EntityID          *string            `json:"idp_entity_id"`
	SSOURL            *string            `json:"idp_sso_url"`
	SSOBinding        *string            `json:"idp_sso_binding"`
	Certificates      []string           `json:"idp_certificates"`
	Domains           *[]string          `json:"domains"`
	Enforce           *bool              `json:"enforce"`
	JIT               *bool              `json:"jit"`
	AllowIdPInitiated *bool              `json:"allow_idp_initiated"`
	NameIDFormat      *string            `json:"name_id_format"`
	DefaultRedirect   *string            `json:"default_redirect"`
	AttributeMapping  *AttributeMapping  `json:"attribute_mapping"`
	RoleMapping       *map[string]string `json:"role_mapping"`
	Enabled           *bool              `json:"enabled"`

	// OpenID Connect (protocol "oidc"; see oidc_conn.go). protocol defaults to saml and
	// cannot change after creation.
	Protocol     *string           `json:"protocol"`
	Issuer       *string           `json:"issuer"`
	ClientID     *string           `json:"client_id"`
	ClientSecret *string           `json:"client_secret"`
	Scopes       *[]string         `json:"scopes"`
	ClaimMapping *AttributeMapping `json:"claim_mapping"`
	HostedDomain *string           `json:"hosted_domain"`
	EntraTenant  *string           `json:"entra_tenant_id"`
}

var slugRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

var providers = []string{"okta", "entra", "google", "adfs", "generic", "dev"}

func invalid(field, msg string) error {
	return ErrInvalidInput.WithDetails(map[string]any{"field": field, "reason": msg})
}

// slugFrom derives a URL-safe identifier from a name.
func slugFrom(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 30 {
			break
		}
	}
	s := strings.Trim(b.String(), "-")
	if s == "" {
		s = "sso"
	}
	return s
}

// resolveIdP reads the IdP from whichever source the input gives; ok is false when it
// gives none (PATCH keeps the current IdP).
func (s *Service) resolveIdP(ctx context.Context, in Input) (idp IdP, doc []byte, metaURL *string, ok bool, err error) {
	entity := ""
	if in.EntityID != nil {
		entity = strings.TrimSpace(*in.EntityID)
	}
	switch {
	case in.MetadataXML != nil && strings.TrimSpace(*in.MetadataXML) != "":
		doc = []byte(*in.MetadataXML)
	case in.MetadataURL != nil && strings.TrimSpace(*in.MetadataURL) != "":
		u := strings.TrimSpace(*in.MetadataURL)
		if doc, err = s.FetchMetadata(ctx, u); err != nil {
			return IdP{}, nil, nil, false, err
		}
		metaURL = &u
	case in.SSOURL != nil && *in.SSOURL != "":
		binding := ""
		if in.SSOBinding != nil {
			binding = bindingURI(*in.SSOBinding)
		}
		if err := checkURL(*in.SSOURL); err != nil {
			return IdP{}, nil, nil, false, invalid("idp_sso_url", err.Error())
		}
		if doc, err = ManualMetadata(entity, strings.TrimSpace(*in.SSOURL), binding, in.Certificates); err != nil {
			return IdP{}, nil, nil, false, err
		}
	default:
		return IdP{}, nil, nil, false, nil
	}
	idp, err = ParseMetadata(doc, entity)
	if err != nil {
		return IdP{}, nil, nil, false, err
	}
	return idp, doc, metaURL, true, nil
}

func bindingURI(b string) string {
	switch strings.ToLower(strings.TrimSpace(b)) {
	case "redirect", "http-redirect", "urn:oasis:names:tc:saml:2.0:bindings:http-redirect":
		return "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
	case "post", "http-post", "urn:oasis:names:tc:saml:2.0:bindings:http-post":
		return "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
	}
	return b
}

func checkURL(raw string) error {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("must be an absolute http(s) URL")
	}
	return nil
}

// settings is the validated, merged non-IdP part of a connection.
type settings struct {
	name, slug, provider, nameIDFormat, defaultRedirect string
	jit, enforce, idpInitiated, enabled                 bool
	mapping, roles                                      []byte
}

func mergeSettings(cur *sqlcgen.SSOConnection, in Input) (settings, error) {
	st := settings{provider: "generic", nameIDFormat: "unspecified", defaultRedirect: "/", jit: true, enabled: true,
		mapping: []byte("{}"), roles: []byte("{}")}
	if cur != nil {
		st = settings{name: cur.Name, slug: cur.Slug, provider: cur.Provider, nameIDFormat: cur.NameIDFormat,
			defaultRedirect: cur.DefaultRedirect, jit: cur.JIT, enforce: cur.Enforce, idpInitiated: cur.AllowIdPInitiated,
			enabled: cur.Enabled, mapping: cur.AttributeMapping, roles: cur.RoleMapping}
	}
	if in.Name != nil {
		st.name = strings.TrimSpace(*in.Name)
	}
	if st.name == "" || len(st.name) > 200 {
		return st, invalid("name", "a name of 1 to 200 characters is required")
	}
	if in.Slug != nil && cur == nil {
		st.slug = strings.TrimSpace(*in.Slug)
	}
	if st.slug == "" {
		st.slug = slugFrom(st.name)
	}
	if !slugRe.MatchString(st.slug) {
		return st, invalid("slug", "lowercase letters, digits and dashes, at most 40")
	}
	if in.Provider != nil {
		st.provider = *in.Provider
	}
	if !slices.Contains(providers, st.provider) {
		return st, invalid("provider", "one of okta, entra, google, adfs, generic")
	}
	if in.NameIDFormat != nil {
		st.nameIDFormat = *in.NameIDFormat
	}
	if _, ok := NameIDFormats[st.nameIDFormat]; !ok {
		return st, invalid("name_id_format", "one of unspecified, emailAddress, persistent")
	}
	if in.DefaultRedirect != nil {
		st.defaultRedirect = *in.DefaultRedirect
	}
	clean, ok := redirect.Local(st.defaultRedirect)
	if !ok {
		return st, invalid("default_redirect", "a path on this host, such as /")
	}
	st.defaultRedirect = clean
	for p, v := range map[*bool]*bool{in.JIT: &st.jit, in.Enforce: &st.enforce, in.AllowIdPInitiated: &st.idpInitiated, in.Enabled: &st.enabled} {
		if p != nil {
			*v = *p
		}
	}
	if in.AttributeMapping != nil {
		if msg := checkAttributeMapping(*in.AttributeMapping); msg != "" {
			return st, invalid("attribute_mapping", msg)
		}
		st.mapping, _ = json.Marshal(*in.AttributeMapping) // strings only: cannot fail
	}
	if in.RoleMapping != nil {
		if msg := checkRoleMapping(*in.RoleMapping); msg != "" {
			return st, invalid("role_mapping", msg)
		}
		st.roles, _ = json.Marshal(*in.RoleMapping) // a map of strings: cannot fail
	}
	return st, nil
}

func normalizeDomains(in []string) ([]string, error) {
	if len(in) > 50 {
		return nil, invalid("domains", "at most 50 domains per connection")
	}
	out := []string{}
	for _, d := range in {
		n, err := domainverify.NormalizeDomain(d)
		if err != nil {
			return nil, invalid("domains", fmt.Sprintf("%q is not a domain name", clipMsg(d)))
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// Create adds a connection with a fresh SP key pair. Without an IdP source it is a draft
// (status draft, disabled): its SP values and SP metadata exist at once.
// Errors: invalid_connection, invalid_metadata, weak_idp_key, metadata_fetch_failed,
// slug_taken, secret_key_missing, idp_metadata_missing (enabled asked for a draft).
func (s *Service) Create(ctx context.Context, t tenant.Tenant, in Input, who audit.Who) (Connection, error) {
	if !s.box.Enabled() {
		return Connection{}, ErrNoSecretKey
	}
	if in.Protocol != nil && *in.Protocol != ProtocolSAML {
		if *in.Protocol != ProtocolOIDC {
			return Connection{}, invalid("protocol", "saml or oidc")
		}
		return s.createOIDC(ctx, t, in, who)
	}
	if msg := oidcFieldsForSAML(in); msg != "" {
		return Connection{}, invalid(msg, "only for protocol oidc")
	}
	st, err := mergeSettings(nil, in)
	if err != nil {
		return Connection{}, err
	}
	var domains []string
	if in.Domains != nil {
		if domains, err = normalizeDomains(*in.Domains); err != nil {
			return Connection{}, err
		}
	}
	idp, doc, metaURL, ok, err := s.resolveIdP(ctx, in)
	if err != nil {
		return Connection{}, err
	}
	if !ok {
		// A draft: created by name so its SP values can be given to the IdP first; the
		// IdP's metadata comes later (Update). It stays off until then.
		if in.Enabled != nil && *in.Enabled {
			return Connection{}, ErrDraft
		}
		st.enabled = false
	}
	id := uuid.New()
	key, err := newSPKey(s.box, t.ID, id, s.urls.Host(t.Slug), s.now())
	if err != nil {
		return Connection{}, err
	}
	var fetched *time.Time
	if metaURL != nil {
		now := s.now()
		fetched = &now
	}
	var out Connection
	err = s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		out = Connection{} // set again by the attempt that commits
		row, err := q.InsertSSOConnection(ctx, sqlcgen.InsertSSOConnectionParams{ID: id, Slug: st.slug, Name: st.name, Provider: st.provider,
			IdPMetadata: string(doc), IdPEntityID: idp.EntityID, IdPCertNotAfter: idp.EarliestExpiry(), MetadataURL: metaURL,
			MetadataFetchedAt: fetched, NameIDFormat: st.nameIDFormat, SpKeyID: key.KeyID, SpKeySealed: key.Sealed, SpCertDer: key.Cert,
			JIT: st.jit, Enforce: st.enforce, AllowIdPInitiated: st.idpInitiated, DefaultRedirect: st.defaultRedirect,
			AttributeMapping: st.mapping, RoleMapping: st.roles, Enabled: st.enabled})
		if _, ok := store.AsUniqueViolation(err); ok {
			return ErrSlugTaken
		}
		if err != nil {
			return fmt.Errorf("insert connection: %w", err)
		}
		if err := setDomains(ctx, q, row.ID, domains); err != nil {
			return err
		}
		if out, err = s.viewOf(ctx, q, t, row); err != nil {
			return err
		}
		if err := emitConnection(ctx, q, events.SSOConnectionCreated, row); err != nil {
			return err
		}
		return audit.Record(ctx, q, who, audit.Event{Action: audit.SSOConnCreated, Details: map[string]any{
			"connection_id": row.ID, "name": row.Name, "idp_entity_id": idp.EntityID, "domains": domains}})
	})
	return out, err
}

// setDomains makes the connection's domains exactly list (new ones get a verification
// token; a domain moved from another connection keeps its verification).
func setDomains(ctx context.Context, q *sqlcgen.Queries, connID uuid.UUID, list []string) error {
	if err := q.DeleteSSODomainsOfExcept(ctx, sqlcgen.DeleteSSODomainsOfExceptParams{ConnectionID: connID, Keep: list}); err != nil {
		return fmt.Errorf("domains: %w", err)
	}
	for _, d := range list {
		tok, _ := token.New()
		if _, err := q.UpsertSSODomain(ctx, sqlcgen.UpsertSSODomainParams{Domain: d, ConnectionID: connID,
			VerificationToken: "gatehouse-verification=" + tok[:32]}); err != nil {
			return fmt.Errorf("domain %s: %w", d, err)
		}
	}
	return nil
}

// Update changes a connection; fields left out keep their value. A draft gets its IdP
// here; it stays disabled until enabled is set.
// Errors: as Create, not_found, idp_metadata_missing (enabling a draft).
func (s *Service) Update(ctx context.Context, t tenant.Tenant, id uuid.UUID, in Input, who audit.Who) (Connection, error) {
	var cur sqlcgen.SSOConnection
	if err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		row, err := q.GetSSOConnection(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		cur = row
		return err
	}, store.ReadOnly()); err != nil {
		return Connection{}, err
	}
	if in.Protocol != nil && *in.Protocol != cur.Protocol {
		return Connection{}, invalid("protocol", "the protocol of a connection cannot change; create another connection")
	}
	if cur.Protocol == ProtocolOIDC {
		return s.updateOIDC(ctx, t, cur, in, who)
	}
	if msg := oidcFieldsForSAML(in); msg != "" {
		return Connection{}, invalid(msg, "only for protocol oidc")
	}
	st, err := mergeSettings(&cur, in)
	if err != nil {
		return Connection{}, err
	}
	var domains []string
	if in.Domains != nil {
		if domains, err = normalizeDomains(*in.Domains); err != nil {
			return Connection{}, err
		}
	}
	idp, doc, metaURL, ok, err := s.resolveIdP(ctx, in)
	if err != nil {
		return Connection{}, err
	}
	if !ok && isDraft(cur) && st.enabled {
		return Connection{}, ErrDraft
	}
	p := sqlcgen.UpdateSSOConnectionParams{ID: id, Name: st.name, Provider: st.provider, IdPMetadata: cur.IdPMetadata,
		IdPEntityID: cur.IdPEntityID, IdPCertNotAfter: cur.IdPCertNotAfter, MetadataURL: cur.MetadataURL,
		MetadataFetchedAt: cur.MetadataFetchedAt, NameIDFormat: st.nameIDFormat, JIT: st.jit, Enforce: st.enforce,
		AllowIdPInitiated: st.idpInitiated, DefaultRedirect: st.defaultRedirect, AttributeMapping: st.mapping,
		RoleMapping: st.roles, Enabled: st.enabled}
	if ok {
		p.IdPMetadata, p.IdPEntityID, p.IdPCertNotAfter, p.MetadataURL = string(doc), idp.EntityID, idp.EarliestExpiry(), metaURL
		if metaURL != nil {
			now := s.now()
			p.MetadataFetchedAt = &now
		} else {
			p.MetadataFetchedAt = nil
		}
	}
	var out Connection
	err = s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		out = Connection{} // set again by the attempt that commits
		row, err := q.UpdateSSOConnection(ctx, p)
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if in.Domains != nil {
			if err := setDomains(ctx, q, id, domains); err != nil {
				return err
			}
		}
		if out, err = s.viewOf(ctx, q, t, row); err != nil {
			return err
		}
		if err := emitConnection(ctx, q, events.SSOConnectionUpdated, row); err != nil {
			return err
		}
		return audit.Record(ctx, q, who, audit.Event{Action: audit.SSOConnUpdated, Details: map[string]any{
			"connection_id": id, "idp_changed": ok, "enforce": st.enforce, "jit": st.jit, "allow_idp_initiated": st.idpInitiated}})
	})
	s.forget(id)
	return out, err
}

// Delete removes a connection with its domains, identities and pending requests. Users
// it provisioned stay (they may still sign in another way or be deleted by an admin).
func (s *Service) Delete(ctx context.Context, t tenant.Tenant, id uuid.UUID, who audit.Who) error {
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		c, err := q.GetSSOConnection(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		n, err := q.DeleteSSOConnection(ctx, id)
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		if err := emitConnection(ctx, q, events.SSOConnectionDeleted, c); err != nil {
			return err
		}
		return audit.Record(ctx, q, who, audit.Event{Action: audit.SSOConnDeleted, Details: map[string]any{"connection_id": id, "protocol": c.Protocol}})
	})
	s.forget(id)
	s.forgetOIDC(id)
	return err
}

// List returns the tenant's connections.
func (s *Service) List(ctx context.Context, t tenant.Tenant) ([]Connection, error) {
	var rows []sqlcgen.SSOConnection
	var domains []sqlcgen.SSODomain
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		var err error
		if rows, err = q.ListSSOConnections(ctx); err != nil {
			return err
		}
		domains, err = q.ListSSODomains(ctx)
		return err
	}, store.ReadOnly(), store.Idempotent())
	if err != nil {
		return nil, err
	}
	out := make([]Connection, 0, len(rows))
	for _, r := range rows {
		out = append(out, s.view(t, r, domains))
	}
	return out, nil
}

// Get returns one connection by id.
func (s *Service) Get(ctx context.Context, t tenant.Tenant, id uuid.UUID) (Connection, error) {
	var out Connection
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		out = Connection{} // set again by the attempt that commits
		row, err := q.GetSSOConnection(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		out, err = s.viewOf(ctx, q, t, row)
		return err
	}, store.ReadOnly(), store.Idempotent())
	return out, err
}

// RotateKey generates a new SP key pair; the previous one keeps decrypting and stays in
// the SP metadata until DropPreviousKey, so the IdP can be switched over without downtime.
func (s *Service) RotateKey(ctx context.Context, t tenant.Tenant, id uuid.UUID, who audit.Who) (Connection, error) {
	if c, err := s.Get(ctx, t, id); err != nil {
		return Connection{}, err
	} else if c.Protocol == ProtocolOIDC {
		return Connection{}, invalid("protocol", "an OIDC connection has no SP key")
	}
	key, err := newSPKey(s.box, t.ID, id, s.urls.Host(t.Slug), s.now())
	if err != nil {
		return Connection{}, err
	}
	var out Connection
	err = s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		out = Connection{} // set again by the attempt that commits
		row, err := q.RotateSSOKey(ctx, sqlcgen.RotateSSOKeyParams{ID: id, SpKeyID: key.KeyID, SpKeySealed: key.Sealed, SpCertDer: key.Cert})
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if out, err = s.viewOf(ctx, q, t, row); err != nil {
			return err
		}
		return audit.Record(ctx, q, who, audit.Event{Action: audit.SSOKeyRotated, Details: map[string]any{"connection_id": id}})
	})
	s.forget(id)
	return out, err
}

// DropPreviousKey ends a key rotation's overlap.
func (s *Service) DropPreviousKey(ctx context.Context, t tenant.Tenant, id uuid.UUID) error {
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		_, err := q.DropPreviousSSOKey(ctx, id)
		return err
	})
	s.forget(id)
	return err
}

// Domains lists every routed domain of the tenant.
func (s *Service) Domains(ctx context.Context, t tenant.Tenant) ([]Domain, error) {
	var rows []sqlcgen.SSODomain
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		var err error
		rows, err = q.ListSSODomains(ctx)
		return err
	}, store.ReadOnly(), store.Idempotent())
	if err != nil {
		return nil, err
	}
	out := make([]Domain, 0, len(rows))
	for _, r := range rows {
		out = append(out, domainView(r))
	}
	return out, nil
}

// ErrDomainNotVerified answers a verification whose TXT record is missing or wrong.
var ErrDomainNotVerified = apperr.New(apperr.Invalid, "domain_not_verified", "The TXT record was not found. DNS changes can take a while to appear.")

// VerifyDomain looks up _gatehouse.<domain> and marks the domain verified when the TXT
// record holds its token.
func (s *Service) VerifyDomain(ctx context.Context, t tenant.Tenant, domain string, who audit.Who) (Domain, error) {
	d, err := domainverify.NormalizeDomain(domain)
	if err != nil {
		return Domain{}, ErrDomainNotFound
	}
	var row sqlcgen.SSODomain
	if err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		r, err := q.GetSSODomain(ctx, d)
		if errors.Is(err, store.ErrNotFound) {
			return ErrDomainNotFound
		}
		row = r
		return err
	}, store.ReadOnly()); err != nil {
		return Domain{}, err
	}
	checkErr := s.verifier.Check(ctx, d, row.VerificationToken)
	var msg *string
	if checkErr != nil {
		m := clipMsg(checkErr.Error())
		if len(m) > 500 {
			m = m[:500]
		}
		msg = &m
	}
	// Read before the transaction: a retried attempt must not see the previous attempt's
	// row and skip the audit event of the verification.
	wasVerified := row.VerifiedAt != nil
	var checked sqlcgen.SSODomain
	err = s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		r, err := q.MarkSSODomainChecked(ctx, sqlcgen.MarkSSODomainCheckedParams{Domain: d, LastError: msg})
		if err != nil {
			return err
		}
		checked = r
		if msg == nil && !wasVerified {
			return audit.Record(ctx, q, who, audit.Event{Action: audit.SSODomainVerified, Details: map[string]any{"domain": d}})
		}
		return nil
	})
	if err != nil {
		return Domain{}, err
	}
	row = checked
	if checkErr != nil {
		return domainView(row), ErrDomainNotVerified.WithDetails(map[string]any{"record": domainverify.RecordName(d),
			"expected": row.VerificationToken, "lookup": *msg})
	}
	return domainView(row), nil
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// viewOf is a connection row with its domains, as the API shows it.
func (s *Service) viewOf(ctx context.Context, q *sqlcgen.Queries, t tenant.Tenant, row sqlcgen.SSOConnection) (Connection, error) {
	domains, err := q.ListSSODomainsOf(ctx, row.ID)
	if err != nil {
		return Connection{}, err
	}
	return s.view(t, row, domains), nil
}

// Warnings lists the connections an admin must act on: certificates expiring or expired,
// metadata that could not be refreshed.
func (s *Service) Warnings(ctx context.Context, t tenant.Tenant) ([]Connection, error) {
	conns, err := s.List(ctx, t)
	if err != nil {
		return nil, err
	}
	var out []Connection
	for _, c := range conns {
		if c.CertWarning != "" || c.MetadataError != nil || c.MappingError != "" {
			out = append(out, c)
		}
	}
	return out, nil
}

func emitConnection(ctx context.Context, q *sqlcgen.Queries, typ string, row sqlcgen.SSOConnection) error {
	enabled := row.Enabled
	_, err := events.Emit(ctx, q, events.Event{Type: typ, Data: events.SSOConnection{ConnectionID: row.ID, Slug: row.Slug, Name: row.Name,
		Protocol: row.Protocol, Enabled: &enabled}})
	return err
}
