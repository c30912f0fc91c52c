// Package sso is Gatehouse as a SAML 2.0 service provider for each tenant: connections to
// the tenant's IdPs (metadata, certificates, SP keys), SP-initiated and optional
// IdP-initiated login, the ACS with the checks crewjam/saml leaves to the application
// (request binding, replay cache, audience, issuer, algorithm and key strength), JIT
// provisioning, email-domain routing and enforcement, single logout and re-authentication.
package sso

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crewjam/saml"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/net/idna"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/domainverify"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/outbound"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/internal/secretbox"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/telemetry"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// Config tunes the SSO service.
type Config struct {
	// Outbound fetches metadata URLs under the outbound switch (required).
	Outbound *outbound.Client
	// DNSServer is "host:port" of the resolver for domain verification ("" = system).
	DNSServer string
	// Skew is the clock skew tolerated on SAML time conditions (default 90 s).
	Skew time.Duration
	// RequestTTL is how long an AuthnRequest may be answered (default 10 min).
	RequestTTL time.Duration
	// Mail sends the certificate-expiry notices to owners (required).
	Mail *mail.Outbox
	// Limiter bounds SP-initiated logins per client address (each stores a request;
	// required).
	Limiter *ratelimit.Limiter
	// Meter records gatehouse.sso.results and gatehouse.sso.certificates (required).
	Meter metric.Meter
	// RolesChanged is told after a JIT user got a role (drops this process's cached
	// role bindings of the tenant at once; required).
	RolesChanged func(tenantID uuid.UUID)
	// Listener, when set, turns on the ACS's connection cache (dropped on every node by
	// ConnectionChangedChannel); nil: every ACS reads the connection row.
	Listener *store.Listener
}

// Service manages connections and runs the SAML flows.
type Service struct {
	store    *store.Store
	box      *secretbox.Box
	urls     tenant.URLs
	sessions *session.Service
	verifier *domainverify.Verifier
	out      *outbound.Client
	cfg      Config
	now      func() time.Time
	realTime bool
	logger   *slog.Logger

	results metric.Int64Counter                    // nil without a meter
	certs   telemetry.PerTenant[certificateCounts] // per tenant, last CountCertificateExpiries

	mu       sync.Mutex
	material map[uuid.UUID]*material // parsed IdP metadata and opened SP keys, by connection
	conns    *connCache              // the ACS's connection rows with their material, by slug
	oidcMat  sync.Map                // uuid.UUID → *oidcMaterial: OIDC discovery, provider, client

	// signInHook is a test seam (export_test.go): when set, it runs inside every attempt
	// of the ACS sign-in transaction, at "begin" and just before "commit"; an error it
	// returns fails that attempt (a 40001 makes the store retry it).
	signInHook atomic.Pointer[func(point string) error]
}

// NewService returns the SSO service. realTime tells that now is the wall clock (then
// crewjam uses its own clock; otherwise it is given now). Every dependency is required: a missing mailer
// used to drop certificate notices and a missing limiter to remove the SSO start limit,
// silently. Errors: a missing dependency.
func NewService(st *store.Store, box *secretbox.Box, urls tenant.URLs, sessions *session.Service, cfg Config, now func() time.Time, realTime bool, logger *slog.Logger) (*Service, error) {
	if st == nil || box == nil || sessions == nil || cfg.Mail == nil || cfg.Outbound == nil || cfg.Limiter == nil || cfg.Meter == nil || cfg.RolesChanged == nil ||
		now == nil || logger == nil || urls.BaseDomain == "" {
		return nil, errors.New("sso: store, secret box, URLs, sessions, mail, outbound client, limiter, meter, RolesChanged, clock and logger are required")
	}
	if cfg.Skew == 0 {
		cfg.Skew = 90 * time.Second
	}
	if cfg.RequestTTL == 0 {
		cfg.RequestTTL = 10 * time.Minute
	}
	s := &Service{store: st, box: box, urls: urls, sessions: sessions, cfg: cfg, now: now, realTime: realTime, logger: logger,
		verifier: domainverify.New(cfg.DNSServer, 3*time.Second), material: map[uuid.UUID]*material{}}
	s.conns = newConnCache(cfg.Listener, now)
	if cfg.Listener != nil {
		// Another node changed a connection: its material goes too (the row may have
		// changed without updated_at, by hand).
		cfg.Listener.Handle(ConnectionChangedChannel, s.forgetPayload, s.forgetAll)
	}
	var err error
	if s.results, err = cfg.Meter.Int64Counter("gatehouse.sso.results",
		metric.WithDescription("SAML responses at the ACS by result, reason (stable codes, docs/sso.md) and mode")); err != nil {
		return nil, fmt.Errorf("sso metrics: %w", err)
	}
	if _, err = cfg.Meter.Int64ObservableGauge("gatehouse.sso.certificates",
		metric.WithDescription("Enabled SSO connections whose IdP signing certificate has expired or expires within 7 or 30 days, over all tenants (counted once a minute)"),
		metric.WithInt64Callback(s.observeCertificates)); err != nil {
		return nil, fmt.Errorf("sso metrics: %w", err)
	}
	s.out = cfg.Outbound
	return s, nil
}

var (
	ErrNotFound       = apperr.New(apperr.NotFound, "not_found", "There is no such SSO connection.")
	ErrSlugTaken      = apperr.New(apperr.Conflict, "slug_taken", "Another connection already uses this identifier.")
	ErrNoSecretKey    = apperr.New(apperr.Unavailable, "secret_key_missing", "GATEHOUSE_SECRET_KEY must be set before SSO connections can be created (it encrypts the SP keys).")
	ErrInvalidInput   = apperr.New(apperr.Invalid, "invalid_connection", "The connection settings are not valid.")
	ErrDomainNotFound = apperr.New(apperr.NotFound, "not_found", "That domain is not configured.")
	// ErrDraft answers turning on, testing or signing in through a draft: a connection
	// created by name whose IdP metadata has not been given yet.
	ErrDraft = apperr.New(apperr.Conflict, "idp_metadata_missing",
		"This connection has no IdP metadata yet: add the metadata your IdP gives you (step 2) before testing or turning it on.")
)

// isDraft tells a connection created without IdP metadata (it cannot be enabled or used
// for sign-in; its SP metadata is served so the IdP can be set up first).
func isDraft(c sqlcgen.SSOConnection) bool { return c.Protocol != ProtocolOIDC && c.IdPMetadata == "" }

// displayDomain is a stored (ASCII, A-label) domain as people read it: IDN labels in
// Unicode. Stored and compared values stay ASCII.
func displayDomain(d string) string {
	if u, err := idna.Display.ToUnicode(d); err == nil && u != "" {
		return u
	}
	return d
}

// AttributeMapping names the IdP attributes Gatehouse reads. Empty fields use the common
// names (email, mail, the Entra ID and OID claim URIs, …).
type AttributeMapping struct {
	Email     string `json:"email,omitempty"`
	FirstName string `json:"first_name,omitempty"`
	LastName  string `json:"last_name,omitempty"`
	Groups    string `json:"groups,omitempty"`
}

// Connection is a connection as the admin API shows it.
type Connection struct {
	ID                uuid.UUID         `json:"id"`
	Slug              string            `json:"slug"`
	Protocol          string            `json:"protocol"` // saml or oidc
	Name              string            `json:"name"`
	Provider          string            `json:"provider"`
	Enabled           bool              `json:"enabled"`
	Status            string            `json:"status"`
	IdP               IdP               `json:"idp"`
	MetadataURL       *string           `json:"idp_metadata_url"`
	MetadataFetchedAt *time.Time        `json:"metadata_fetched_at"`
	MetadataError     *string           `json:"metadata_error"`
	MappingError      string            `json:"mapping_error,omitempty"` // the stored mappings are corrupt: sign-ins are refused
	NameIDFormat      string            `json:"name_id_format"`
	JIT               bool              `json:"jit"`
	Enforce           bool              `json:"enforce"`
	AllowIdPInitiated bool              `json:"allow_idp_initiated"`
	DefaultRedirect   string            `json:"default_redirect"`
	AttributeMapping  AttributeMapping  `json:"attribute_mapping"`
	RoleMapping       map[string]string `json:"role_mapping"`
	Domains           []Domain          `json:"domains"`
	SPEntityID        string            `json:"sp_entity_id"`
	ACSURL            string            `json:"acs_url"`
	SPMetadataURL     string            `json:"sp_metadata_url"`
	LoginURL          string            `json:"login_url"`
	SLOURL            string            `json:"slo_url"`
	SPCertificates    []CertInfo        `json:"sp_certificates"`
	CertWarning       string            `json:"certificate_warning,omitempty"`
	CreatedAt         time.Time         `json:"created_at"`
	UpdatedAt         time.Time         `json:"updated_at"`

	// OIDC is set for protocol oidc: the IdP and the redirect URI to register there.
	OIDC        *OIDCSettings `json:"oidc,omitempty"`
	RedirectURI string        `json:"redirect_uri,omitempty"`
	// PostLogoutURI is the post-logout redirect URI to register for RP-initiated logout.
	PostLogoutURI string `json:"post_logout_redirect_uri,omitempty"`
}

// Domain is an email domain routed to a connection.
type Domain struct {
	Domain        string     `json:"domain"`
	DomainUnicode string     `json:"domain_unicode"` // Domain with IDN labels in Unicode, for display
	ConnectionID  uuid.UUID  `json:"connection_id"`
	Verified      bool       `json:"verified"`
	VerifiedAt    *time.Time `json:"verified_at"`
	RecordName    string     `json:"txt_record_name"`
	RecordValue   string     `json:"txt_record_value"`
	LastCheckedAt *time.Time `json:"last_checked_at"`
	LastError     *string    `json:"last_error"`
}

// material is what a connection's SAML flows need, parsed once per connection version.
type material struct {
	updated    time.Time
	tenantSlug string // the SP URLs are under the tenant's host
	idp        IdP
	key        *x509.Certificate
	sp         spMaterial
	prevSP     *spMaterial
	conn       sqlcgen.SSOConnection
	mapping    AttributeMapping
	roles      map[string]string
	certPool   []*x509.Certificate
	// spInit and spIdP are crewjam's SP values for SP-initiated and unsolicited responses,
	// built once (buildSP) and only copied afterwards.
	spInit, spIdP *saml.ServiceProvider

	// mappingErr is set when the stored attribute or role mapping is corrupt (it wraps
	// errCorruptMapping); mapping and roles are then empty and must not be used.
	mappingErr error
}

func domainView(d sqlcgen.SSODomain) Domain {
	return Domain{Domain: d.Domain, DomainUnicode: displayDomain(d.Domain), ConnectionID: d.ConnectionID, Verified: d.VerifiedAt != nil, VerifiedAt: d.VerifiedAt,
		RecordName: domainverify.RecordName(d.Domain), RecordValue: d.VerificationToken, LastCheckedAt: d.LastCheckedAt, LastError: d.LastError}
}

// urlsFor builds the SP URLs of a connection under the tenant's host.
func (s *Service) urlsFor(t tenant.Tenant, slug string) (entityID, acs, metadata, login, slo string) {
	base := "/sso/saml/" + slug
	metadata = s.urls.Link(t.Slug, base+"/metadata", nil)
	return metadata, s.urls.Link(t.Slug, base+"/acs", nil), metadata, s.urls.Link(t.Slug, base+"/login", nil), s.urls.Link(t.Slug, base+"/slo", nil)
}

func (s *Service) view(t tenant.Tenant, c sqlcgen.SSOConnection, domains []sqlcgen.SSODomain) Connection {
	v := Connection{ID: c.ID, Slug: c.Slug, Name: c.Name, Provider: c.Provider, Enabled: c.Enabled, MetadataURL: c.MetadataURL,
		MetadataFetchedAt: c.MetadataFetchedAt, MetadataError: c.MetadataError, NameIDFormat: c.NameIDFormat, JIT: c.JIT,
		Enforce: c.Enforce, AllowIdPInitiated: c.AllowIdPInitiated, DefaultRedirect: c.DefaultRedirect,
		RoleMapping: map[string]string{}, Domains: []Domain{}, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
	v.SPEntityID, v.ACSURL, v.SPMetadataURL, v.LoginURL, v.SLOURL = s.urlsFor(t, c.Slug)
	v.Protocol = c.Protocol
	if c.Protocol == ProtocolOIDC {
		s.oidcView(t, c, &v)
	}
	var mapErr error
	v.AttributeMapping, v.RoleMapping, mapErr = parseMappings(c.AttributeMapping, c.RoleMapping)
	if isDraft(c) {
		v.IdP = IdP{NameIDFormats: []string{}, Certificates: []CertInfo{}}
	} else if idp, err := ParseMetadata([]byte(c.IdPMetadata), c.IdPEntityID); err == nil {
		v.IdP = idp
	} else {
		v.IdP = IdP{EntityID: c.IdPEntityID, NameIDFormats: []string{}, Certificates: []CertInfo{}}
	}
	for _, der := range [][]byte{c.SpCertDer, c.SpPrevCertDer} {
		if cert, err := x509.ParseCertificate(der); err == nil {
			v.SPCertificates = append(v.SPCertificates, certInfo(cert))
		}
	}
	for _, d := range domains {
		if d.ConnectionID == c.ID {
			v.Domains = append(v.Domains, domainView(d))
		}
	}
	switch {
	case isDraft(c):
		v.Status = "draft"
	case !c.Enabled:
		v.Status = "disabled"
	default:
		v.Status = "active"
	}
	if exp := v.IdP.EarliestExpiry(); exp != nil {
		switch left := exp.Sub(s.now()); {
		case left <= 0:
			v.Status, v.CertWarning = "certificate_expired", "An IdP signing certificate expired on "+exp.Format("2 Jan 2006")+"."
		case left <= 30*24*time.Hour:
			v.CertWarning = "An IdP signing certificate expires on " + exp.Format("2 Jan 2006") + "."
		}
	}
	if mapErr != nil {
		// Every sign-in is refused until the mapping is saved again: the strongest status.
		v.MappingError = clipMsg(mapErr.Error())
		if c.Enabled {
			v.Status = "mapping_corrupt"
		}
	}
	return v
}

func certInfo(cert *x509.Certificate) CertInfo {
	ci := CertInfo{Subject: cert.Subject.String(), NotBefore: cert.NotBefore.UTC(), NotAfter: cert.NotAfter.UTC()}
	ci.SHA256 = fingerprint(cert.Raw)
	if pk, ok := cert.PublicKey.(interface{ Size() int }); ok {
		ci.KeyBits = pk.Size() * 8
	}
	return ci
}

// NameIDFormats maps the per-connection setting to the URI requested from the IdP.
var NameIDFormats = map[string]saml.NameIDFormat{
	"unspecified":  saml.UnspecifiedNameIDFormat,
	"emailAddress": saml.EmailAddressNameIDFormat,
	"persistent":   saml.PersistentNameIDFormat,
}

// SlugOf returns the slug of a connection id (for a session's SSO origin).
func (s *Service) SlugOf(ctx context.Context, t tenant.Tenant, id *uuid.UUID) (string, error) {
	if id == nil {
		return "", ErrNotFound
	}
	var slug string
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		c, err := q.GetSSOConnection(ctx, *id)
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		slug = c.Slug
		return err
	}, store.ReadOnly(), store.Idempotent())
	return slug, err
}

// Attempts lists a connection's recent ACS attempts, newest first.
func (s *Service) Attempts(ctx context.Context, t tenant.Tenant, id uuid.UUID, limit int) ([]Attempt, error) {
	var rows []sqlcgen.SSOAttempt
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		var err error
		rows, err = q.ListSSOAttempts(ctx, sqlcgen.ListSSOAttemptsParams{ConnectionID: id, Lim: int32(limit)})
		return err
	}, store.ReadOnly(), store.Idempotent())
	if err != nil {
		return nil, err
	}
	out := make([]Attempt, 0, len(rows))
	for _, r := range rows {
		a := Attempt{ID: r.ID, Reference: r.Reference, Mode: r.Mode, Success: r.Success, Reason: r.Reason, UserID: r.UserID, CreatedAt: r.CreatedAt}
		if err := json.Unmarshal(r.Details, &a.Report); err != nil {
			// Display only: the attempt is listed without its trace.
			s.logger.Warn("unreadable sso attempt trace", "tenant", t.Slug, "attempt", r.ID, "err", err)
		}
		out = append(out, a)
	}
	return out, nil
}

// Attempt is one recorded ACS attempt.
type Attempt struct {
	ID        uuid.UUID  `json:"id"`
	Reference string     `json:"reference"`
	Mode      string     `json:"mode"`
	Success   bool       `json:"success"`
	Reason    string     `json:"reason"`
	UserID    *uuid.UUID `json:"user_id"`
	Report    Report     `json:"report"`
	CreatedAt time.Time  `json:"created_at"`
}

// StatusText is Status in words for the portal.
func (c Connection) StatusText() string {
	switch c.Status {
	case "draft":
		return "Draft — IdP metadata missing"
	case "active":
		return "Active"
	case "disabled":
		return "Off"
	case "certificate_expired":
		return "IdP certificate expired"
	case "mapping_corrupt":
		return "Mapping unreadable — sign-ins refused"
	}
	return c.Status
}
