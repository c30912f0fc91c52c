package sso

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
)

// MaxMetadataBytes bounds an IdP metadata document (the largest real ones are ~150 KB).
const MaxMetadataBytes = 512 << 10

// MinRSABits is the smallest IdP signing key Gatehouse trusts.
const MinRSABits = 2048

var (
	ErrInvalidMetadata = apperr.New(apperr.Invalid, "invalid_metadata", "The IdP metadata could not be read.")
	ErrWeakIdPKey      = apperr.New(apperr.Invalid, "weak_idp_key", "The IdP signs with an RSA key shorter than 2048 bits; rotate it at the IdP first.")
)

// IdP is what Gatehouse takes from an IdP's metadata: only the IDPSSODescriptor of the
// chosen entity, de-duplicated signing certificates, and SAML 2.0 endpoints.
type IdP struct {
	EntityID      string     `json:"entity_id"`
	SSORedirect   string     `json:"sso_redirect_url,omitempty"`
	SSOPost       string     `json:"sso_post_url,omitempty"`
	SLORedirect   string     `json:"slo_redirect_url,omitempty"`
	SLOPost       string     `json:"slo_post_url,omitempty"`
	NameIDFormats []string   `json:"name_id_formats"`
	Certificates  []CertInfo `json:"certificates"`
	ValidUntil    *time.Time `json:"valid_until,omitempty"`
	// WantsSignedRequests: the IdP asks for signed AuthnRequests (then Gatehouse signs them).
	WantsSignedRequests bool `json:"want_authn_requests_signed,omitempty"`

	certs      []*x509.Certificate
	descriptor *saml.EntityDescriptor
}

// CertInfo describes one trusted IdP signing certificate.
type CertInfo struct {
	Subject   string    `json:"subject"`
	SHA256    string    `json:"sha256"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	KeyBits   int       `json:"key_bits"`
}

// EarliestExpiry is the first NotAfter among the signing certificates.
func (i IdP) EarliestExpiry() *time.Time {
	var t *time.Time
	for _, c := range i.Certificates {
		if t == nil || c.NotAfter.Before(*t) {
			na := c.NotAfter
			t = &na
		}
	}
	return t
}

// ParseMetadata reads IdP metadata as real IdPs publish it (EntityDescriptor or an
// aggregate, WS-Federation RoleDescriptors, BOMs, certificates repeated and wrapped). In
// an aggregate entityID picks the IdP; otherwise it may be empty. DOCTYPEs are refused.
func ParseMetadata(data []byte, entityID string) (IdP, error) {
	if len(data) == 0 {
		return IdP{}, ErrInvalidMetadata.WithDetails(map[string]any{"reason": "empty document"})
	}
	if len(data) > MaxMetadataBytes {
		return IdP{}, ErrInvalidMetadata.WithDetails(map[string]any{"reason": "larger than 512 KiB"})
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if err := checkXMLShape(data); err != nil {
		return IdP{}, ErrInvalidMetadata.WithDetails(map[string]any{"reason": err.Error()})
	}
	var ed *saml.EntityDescriptor
	var err error
	if entityID != "" {
		ed, err = samlsp.ParseMetadataByEntityID(data, entityID)
	} else {
		ed, err = samlsp.ParseMetadata(data)
	}
	if err != nil {
		return IdP{}, ErrInvalidMetadata.WithDetails(map[string]any{"reason": clipMsg(err.Error())})
	}
	return fromDescriptor(ed)
}

func fromDescriptor(ed *saml.EntityDescriptor) (IdP, error) {
	out := IdP{EntityID: ed.EntityID, NameIDFormats: []string{}, Certificates: []CertInfo{}}
	// crewjam trusts the signing keys of every IDPSSODescriptor it is given: it gets only
	// the SAML 2.0 ones, whose keys are all checked below.
	trusted := *ed
	trusted.IDPSSODescriptors = nil
	trusted.AttributeAuthorityDescriptors = nil
	out.descriptor = &trusted
	if !ed.ValidUntil.IsZero() {
		vu := ed.ValidUntil.UTC()
		out.ValidUntil = &vu
	}
	seen := map[string]bool{}
	found := false
	for _, d := range ed.IDPSSODescriptors {
		if !slices.Contains(strings.Fields(d.ProtocolSupportEnumeration), "urn:oasis:names:tc:SAML:2.0:protocol") {
			continue
		}
		found = true
		trusted.IDPSSODescriptors = append(trusted.IDPSSODescriptors, d)
		if d.WantAuthnRequestsSigned != nil && *d.WantAuthnRequestsSigned {
			out.WantsSignedRequests = true
		}
		for _, s := range d.SingleSignOnServices {
			switch strings.TrimSpace(s.Binding) {
			case saml.HTTPRedirectBinding:
				out.SSORedirect = first(out.SSORedirect, strings.TrimSpace(s.Location))
			case saml.HTTPPostBinding:
				out.SSOPost = first(out.SSOPost, strings.TrimSpace(s.Location))
			}
		}
		for _, s := range d.SingleLogoutServices {
			switch strings.TrimSpace(s.Binding) {
			case saml.HTTPRedirectBinding:
				out.SLORedirect = first(out.SLORedirect, strings.TrimSpace(s.Location))
			case saml.HTTPPostBinding:
				out.SLOPost = first(out.SLOPost, strings.TrimSpace(s.Location))
			}
		}
		for _, f := range d.NameIDFormats {
			if v := strings.TrimSpace(string(f)); v != "" && !slices.Contains(out.NameIDFormats, v) {
				out.NameIDFormats = append(out.NameIDFormats, v)
			}
		}
		for _, kd := range d.KeyDescriptors {
			if kd.Use != "" && kd.Use != "signing" {
				continue
			}
			for _, xc := range kd.KeyInfo.X509Data.X509Certificates {
				der, err := decodeCert(xc.Data)
				if err != nil {
					return IdP{}, ErrInvalidMetadata.WithDetails(map[string]any{"reason": "a signing certificate is not valid base64 DER"})
				}
				sum := sha256.Sum256(der)
				fp := hex.EncodeToString(sum[:])
				if seen[fp] {
					continue
				}
				seen[fp] = true
				cert, err := x509.ParseCertificate(der)
				if err != nil {
					return IdP{}, ErrInvalidMetadata.WithDetails(map[string]any{"reason": "a signing certificate does not parse: " + clipMsg(err.Error())})
				}
				bits := 0
				if pk, ok := cert.PublicKey.(*rsa.PublicKey); ok {
					bits = pk.N.BitLen()
					if bits < MinRSABits {
						return IdP{}, ErrWeakIdPKey.WithDetails(map[string]any{"key_bits": bits, "sha256": fp})
					}
				}
				out.certs = append(out.certs, cert)
				out.Certificates = append(out.Certificates, CertInfo{Subject: cert.Subject.String(), SHA256: fp,
					NotBefore: cert.NotBefore.UTC(), NotAfter: cert.NotAfter.UTC(), KeyBits: bits})
			}
		}
	}
	switch {
	case !found:
		return IdP{}, ErrInvalidMetadata.WithDetails(map[string]any{"reason": "no SAML 2.0 IDPSSODescriptor"})
	case out.SSORedirect == "" && out.SSOPost == "":
		return IdP{}, ErrInvalidMetadata.WithDetails(map[string]any{"reason": "no SingleSignOnService with the HTTP-Redirect or HTTP-POST binding"})
	case len(out.certs) == 0:
		return IdP{}, ErrInvalidMetadata.WithDetails(map[string]any{"reason": "no signing certificate"})
	}
	return out, nil
}

// decodeCert removes all XML whitespace (encoding/base64 skips only CR and LF) and decodes.
func decodeCert(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
	return base64.StdEncoding.DecodeString(s)
}

// checkXMLShape refuses DTDs (entity expansion, external entities) and malformed XML
// before anything trusts the document.
func checkXMLShape(data []byte) error {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	depth := 0
	for {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("malformed XML: %s", clipMsg(err.Error()))
		}
		switch tok.(type) {
		case xml.Directive:
			return errors.New("DOCTYPE and entity declarations are not allowed")
		case xml.StartElement:
			depth++
			if depth > 64 {
				return errors.New("nested too deeply")
			}
		case xml.EndElement:
			depth--
		}
	}
}

// ManualMetadata builds a metadata document from fields an admin typed in (entity id, SSO
// URL and binding, PEM or base64 certificates), so every connection has one source of truth.
func ManualMetadata(entityID, ssoURL, binding string, certs []string) ([]byte, error) {
	if entityID == "" || ssoURL == "" || len(certs) == 0 {
		return nil, ErrInvalidMetadata.WithDetails(map[string]any{"reason": "entity id, SSO URL and at least one certificate are required"})
	}
	if binding == "" {
		binding = saml.HTTPRedirectBinding
	}
	if binding != saml.HTTPRedirectBinding && binding != saml.HTTPPostBinding {
		return nil, ErrInvalidMetadata.WithDetails(map[string]any{"reason": "binding must be HTTP-Redirect or HTTP-POST"})
	}
	var kds []saml.KeyDescriptor
	for _, c := range certs {
		der, err := certDER(c)
		if err != nil {
			return nil, ErrInvalidMetadata.WithDetails(map[string]any{"reason": "certificate: " + err.Error()})
		}
		kds = append(kds, saml.KeyDescriptor{Use: "signing", KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{
			X509Certificates: []saml.X509Certificate{{Data: base64.StdEncoding.EncodeToString(der)}}}}})
	}
	ed := saml.EntityDescriptor{EntityID: entityID, IDPSSODescriptors: []saml.IDPSSODescriptor{{
		SSODescriptor: saml.SSODescriptor{RoleDescriptor: saml.RoleDescriptor{
			ProtocolSupportEnumeration: "urn:oasis:names:tc:SAML:2.0:protocol", KeyDescriptors: kds}},
		SingleSignOnServices: []saml.Endpoint{{Binding: binding, Location: ssoURL}},
	}}}
	out, err := xml.MarshalIndent(ed, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal metadata: %w", err)
	}
	return out, nil
}

func certDER(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "-----BEGIN") {
		s = strings.TrimPrefix(s, "-----BEGIN CERTIFICATE-----")
		s = strings.TrimSuffix(strings.TrimSpace(s), "-----END CERTIFICATE-----")
	}
	der, err := decodeCert(s)
	if err != nil {
		return nil, errors.New("not PEM or base64 DER")
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		return nil, errors.New("does not parse as X.509")
	}
	return der, nil
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func clipMsg(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
