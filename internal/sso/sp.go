package sso

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/crewjam/saml"
	"github.com/google/uuid"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// spMaterial is one opened SP key pair.
type spMaterial struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// load returns the parsed material of a connection row, cached per connection version.
func (s *Service) load(t tenant.Tenant, c sqlcgen.SSOConnection) (*material, error) {
	s.mu.Lock()
	m := s.material[c.ID]
	s.mu.Unlock()
	if m != nil && m.updated.Equal(c.UpdatedAt) && m.tenantSlug == t.Slug {
		return m, nil
	}
	// A draft has no IdP yet: its material serves the SP metadata only (every flow that
	// needs the IdP refuses a draft before it gets here).
	var idp IdP
	if !isDraft(c) {
		var err error
		if idp, err = ParseMetadata([]byte(c.IdPMetadata), c.IdPEntityID); err != nil {
			return nil, fmt.Errorf("stored metadata of %s: %w", c.Slug, err)
		}
	}
	key, cert, err := openSPKey(s.box, t.ID, c.ID, c.SpKeyID, c.SpKeySealed, c.SpCertDer)
	if err != nil {
		return nil, err
	}
	m = &material{updated: c.UpdatedAt, tenantSlug: t.Slug, idp: idp, sp: spMaterial{key: key, cert: cert}, conn: c}
	if c.SpPrevKeyID != nil {
		pk, pc, err := openSPKey(s.box, t.ID, c.ID, *c.SpPrevKeyID, c.SpPrevKeySealed, c.SpPrevCertDer)
		if err != nil {
			return nil, err
		}
		m.prevSP = &spMaterial{key: pk, cert: pc}
	}
	s.buildSP(t, m)
	// A corrupt mapping does not stop metadata, logout or the login redirect; the ACS
	// refuses every sign-in with it (corrupt_mapping) instead of using defaults.
	m.mapping, m.roles, m.mappingErr = parseMappings(c.AttributeMapping, c.RoleMapping)
	if m.mappingErr != nil {
		s.logger.Error("sso connection mapping corrupt: sign-ins are refused", "tenant", t.Slug, "connection", c.Slug, "err", m.mappingErr)
	}
	s.mu.Lock()
	if len(s.material) > 10000 {
		clear(s.material)
	}
	s.material[c.ID] = m
	s.mu.Unlock()
	return m, nil
}

func (s *Service) forget(id uuid.UUID) {
	s.mu.Lock()
	delete(s.material, id)
	s.mu.Unlock()
	s.conns.dropID(id)
}

// forgetPayload drops the material of a ConnectionChangedChannel notification
// ("tenant_id/id/slug"); one it cannot read drops all.
func (s *Service) forgetPayload(payload string) {
	parts := strings.SplitN(payload, "/", 3)
	if len(parts) == 3 {
		if id, err := uuid.Parse(parts[1]); err == nil {
			s.forget(id)
			return
		}
	}
	s.forgetAll()
}

func (s *Service) forgetAll() {
	s.mu.Lock()
	clear(s.material)
	s.mu.Unlock()
}

// serviceProvider is crewjam's SP for one connection: this connection's IdP metadata and
// nothing else, SHA-1 refused, unknown conditions refused, a database replay cache.
// idpInitiated selects the separate SP value for unsolicited responses. The value is a
// copy of the one built once per material (buildSP); only the request's replay cache and
// (with an injected clock) the clock are set on the copy.
func (s *Service) serviceProvider(ctx context.Context, t tenant.Tenant, m *material, idpInitiated bool) *saml.ServiceProvider {
	sp := s.acsProvider(m, idpInitiated)
	sp.ReplayCache = &replayCache{s: s, ctx: ctx, tenantID: t.ID, connID: m.conn.ID}
	return sp
}

// acsProvider is serviceProvider without a replay cache (the ACS records message ids in
// its own transaction).
func (s *Service) acsProvider(m *material, idpInitiated bool) *saml.ServiceProvider {
	sp := *m.spInit
	if idpInitiated {
		sp = *m.spIdP
	}
	if !s.realTime {
		sp.Clock = dsig.NewFakeClockAt(s.now())
	}
	return &sp
}

// buildSP builds the two crewjam SP values of a material (SP-initiated and
// IdP-initiated); they are only ever copied afterwards, never changed.
func (s *Service) buildSP(t tenant.Tenant, m *material) {
	entityID, acs, metadata, _, slo := s.urlsFor(t, m.conn.Slug)
	acsURL, _ := url.Parse(acs)
	metaURL, _ := url.Parse(metadata)
	sloURL, _ := url.Parse(slo)
	format := NameIDFormats[m.conn.NameIDFormat]
	sp := saml.ServiceProvider{
		EntityID:                         entityID,
		Key:                              m.sp.key,
		Certificate:                      m.sp.cert,
		MetadataURL:                      *metaURL,
		AcsURL:                           *acsURL,
		SloURL:                           *sloURL,
		IDPMetadata:                      m.idp.descriptor,
		AuthnNameIDFormat:                format,
		RejectSHA1Signatures:             true,
		RejectUnknownConditions:          true,
		DefaultRedirectURI:               m.conn.DefaultRedirect,
		AssertionConsumerServiceBindings: []string{saml.HTTPPostBinding},
		LogoutBindings:                   []string{saml.HTTPRedirectBinding, saml.HTTPPostBinding},
		LogoutSignatureMethod:            dsig.RSASHA256SignatureMethod,
		MetadataValidDuration:            7 * 24 * time.Hour,
		IgnoreCertificateExpiry:          true, // certificates in metadata are key containers (expiry is warned about, not enforced)
	}
	if m.idp.WantsSignedRequests {
		// Signed AuthnRequests only for IdPs that ask: some IdPs (crewjam's samlidp among
		// them) re-post the request after their login form and lose a Redirect signature.
		sp.SignatureMethod = dsig.RSASHA256SignatureMethod
	}
	if m.prevSP != nil {
		sp.DecryptionKeys = []*rsa.PrivateKey{m.prevSP.key}
	}
	solicited := sp
	m.spInit = &solicited
	unsolicited := sp
	unsolicited.AllowIDPInitiated = true
	// A response to no request of ours must not carry an InResponseTo.
	unsolicited.ValidateRequestID = func(r saml.Response, _ []string) error {
		if r.InResponseTo != "" {
			return saml.ErrRequestIDMismatch
		}
		return nil
	}
	m.spIdP = &unsolicited
}

// Metadata is the SP metadata of a connection (both certificates during a key rotation).
func (s *Service) Metadata(ctx context.Context, t tenant.Tenant, slug string) ([]byte, error) {
	c, err := s.bySlug(ctx, t, slug)
	if err != nil {
		return nil, err
	}
	m, err := s.load(t, c)
	if err != nil {
		return nil, err
	}
	sp := s.serviceProvider(ctx, t, m, false)
	ed := sp.Metadata()
	if m.prevSP != nil && len(ed.SPSSODescriptors) > 0 {
		prev := *sp
		prev.Key, prev.Certificate = m.prevSP.key, m.prevSP.cert
		old := prev.Metadata()
		if len(old.SPSSODescriptors) > 0 {
			d := &ed.SPSSODescriptors[0]
			d.KeyDescriptors = append(d.KeyDescriptors, old.SPSSODescriptors[0].KeyDescriptors...)
		}
	}
	for i := range ed.SPSSODescriptors {
		d := &ed.SPSSODescriptors[i]
		yes := true
		d.WantAssertionsSigned = &yes
		d.NameIDFormats = []saml.NameIDFormat{saml.UnspecifiedNameIDFormat, saml.EmailAddressNameIDFormat, saml.PersistentNameIDFormat}
	}
	return marshalMetadata(ed)
}

func (s *Service) bySlug(ctx context.Context, t tenant.Tenant, slug string) (sqlcgen.SSOConnection, error) {
	if !slugRe.MatchString(slug) {
		return sqlcgen.SSOConnection{}, ErrNotFound
	}
	var c sqlcgen.SSOConnection
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		var err error
		c, err = q.GetSSOConnectionBySlug(ctx, slug)
		if errors.Is(err, store.ErrNotFound) || err == nil && c.Protocol != ProtocolSAML {
			return ErrNotFound // the SAML endpoints know SAML connections only
		}
		return err
	}, store.ReadOnly(), store.Idempotent())
	return c, err
}

// replayCache is crewjam's AssertionReplayCache on the saml_replay table: an id is
// accepted once per connection until it expires (every node shares it).
type replayCache struct {
	s        *Service
	ctx      context.Context
	tenantID uuid.UUID
	connID   uuid.UUID
}

var errReplayed = errors.New("sso: message id already used")

func (r *replayCache) Consume(id string, expiresAt time.Time) error {
	return r.s.consumeID(r.ctx, r.tenantID, r.connID, id, expiresAt)
}

// replayExpiry is how long a message id is kept: until its NotOnOrAfter plus skew, at
// most a day.
func (s *Service) replayExpiry(notOnOrAfter time.Time) time.Time {
	if max := s.now().Add(24 * time.Hour); notOnOrAfter.After(max) || notOnOrAfter.IsZero() {
		notOnOrAfter = max
	}
	return notOnOrAfter.Add(s.cfg.Skew)
}

func (s *Service) consumeID(ctx context.Context, tenantID, connID uuid.UUID, id string, expiresAt time.Time) error {
	if len(id) > 256 || id == "" {
		return errors.New("sso: message id missing or too long")
	}
	expiresAt = s.replayExpiry(expiresAt)
	return s.store.InTenant(ctx, tenantID, func(q *sqlcgen.Queries) error {
		n, err := q.RecordSAMLMessage(ctx, sqlcgen.RecordSAMLMessageParams{ConnectionID: connID, MessageID: id, ExpiresAt: expiresAt})
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w (%w)", saml.ErrAssertionReplayed, errReplayed)
		}
		return nil
	})
}
