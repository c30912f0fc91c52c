// Package samltest is a SAML 2.0 test identity provider for exercising a
// service provider, with valid responses and hostile ones.
//
// It deliberately shares no SAML code with the service provider under test
// (github.com/crewjam/saml): XML is built with github.com/beevik/etree and
// signed with github.com/russellhaering/goxmldsig directly, and XML
// encryption is done with crypto/rsa and crypto/aes. A bug in the SP's SAML
// library therefore cannot be masked by the same bug in the IdP that feeds it.
//
// The usual flow in a test is:
//
//	idp, _ := samltest.NewIdP("https://idp.example/metadata")
//	// give idp.Metadata(ssoURL, "") to the SP
//	r := idp.NewResponse(time.Now(), acsURL, spEntityID, requestID, "alice@example.com")
//	xml, _ := idp.Sign(r, samltest.SignOptions{SignAssertion: true})
//	form := samltest.PostForm(acsURL, xml, relayState)
//
// and the attack helpers (XSW, StripSignatures, ReplaceNameID, ...) turn a
// validly signed response into a hostile one.
package samltest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"time"

	"github.com/beevik/etree"
)

// XML namespaces and URIs used in the messages.
const (
	NSProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	NSAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	NSMetadata  = "urn:oasis:names:tc:SAML:2.0:metadata"
	NSDSig      = "http://www.w3.org/2000/09/xmldsig#"
	NSXMLEnc    = "http://www.w3.org/2001/04/xmlenc#"
	NSXS        = "http://www.w3.org/2001/XMLSchema"
	NSXSI       = "http://www.w3.org/2001/XMLSchema-instance"

	StatusSuccess   = "urn:oasis:names:tc:SAML:2.0:status:Success"
	StatusRequester = "urn:oasis:names:tc:SAML:2.0:status:Requester"
	StatusResponder = "urn:oasis:names:tc:SAML:2.0:status:Responder"

	NameIDFormatEmail       = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
	NameIDFormatUnspecified = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
	NameIDFormatPersistent  = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"

	AttrNameFormatBasic       = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
	AttrNameFormatUnspecified = "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified"

	BindingHTTPRedirect = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
	BindingHTTPPost     = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"

	CMBearer                   = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
	PasswordProtectedTransport = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
)

// IdP is a test identity provider: an entity ID and the RSA key and
// self-signed certificate it signs with.
type IdP struct {
	EntityID string
	Key      *rsa.PrivateKey   // 2048-bit unless NewIdPWithKeyBits is used
	Cert     *x509.Certificate // self-signed, valid from now-1h to now+1y unless NewIdPWithValidity is used
	CertDER  []byte
}

// NewIdP generates an RSA-2048 key and a self-signed certificate valid from
// an hour ago until a year from now.
func NewIdP(entityID string) (*IdP, error) {
	return NewIdPWithKeyBits(entityID, 2048)
}

// NewIdPWithKeyBits is NewIdP with an RSA key of the given size, for tests
// that must refuse short keys (e.g. 1024).
func NewIdPWithKeyBits(entityID string, bits int) (*IdP, error) {
	now := time.Now()
	return newIdP(entityID, bits, now.Add(-time.Hour), now.AddDate(1, 0, 0))
}

// NewIdPWithValidity is NewIdP with a certificate valid from notBefore to
// notAfter, for tests of expired or not-yet-valid signing certificates.
func NewIdPWithValidity(entityID string, notBefore, notAfter time.Time) (*IdP, error) {
	return newIdP(entityID, 2048, notBefore, notAfter)
}

func newIdP(entityID string, bits int, notBefore, notAfter time.Time) (*IdP, error) {
	key, cert, err := NewKeyPairWithValidity("samltest IdP", bits, notBefore, notAfter)
	if err != nil {
		return nil, err
	}
	return &IdP{EntityID: entityID, Key: key, Cert: cert, CertDER: cert.Raw}, nil
}

// NewKeyPair generates an RSA key of the given size and a self-signed
// certificate for it valid from an hour ago until a year from now. Use it
// for the SP's own key pair, or for an attacker's signing key.
func NewKeyPair(commonName string, bits int) (*rsa.PrivateKey, *x509.Certificate, error) {
	now := time.Now()
	return NewKeyPairWithValidity(commonName, bits, now.Add(-time.Hour), now.AddDate(1, 0, 0))
}

// NewKeyPairWithValidity is NewKeyPair with the given certificate validity.
func NewKeyPairWithValidity(commonName string, bits int, notBefore, notAfter time.Time) (*rsa.PrivateKey, *x509.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, nil, fmt.Errorf("samltest: generate RSA key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("samltest: create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return key, cert, nil
}

// Metadata returns the IdP's metadata: an md:EntityDescriptor with one
// IDPSSODescriptor (protocolSupportEnumeration SAML 2.0) holding a
// KeyDescriptor use="signing" with the certificate, a SingleLogoutService
// (HTTP-Redirect) at sloURL if it is not empty, the emailAddress and
// unspecified NameIDFormats, and SingleSignOnService endpoints for
// HTTP-Redirect and HTTP-POST at ssoURL.
func (i *IdP) Metadata(ssoURL string, sloURL string) []byte {
	ed := etree.NewElement("md:EntityDescriptor")
	ed.CreateAttr("xmlns:md", NSMetadata)
	ed.CreateAttr("entityID", i.EntityID)

	sso := ed.CreateElement("md:IDPSSODescriptor")
	sso.CreateAttr("protocolSupportEnumeration", NSProtocol)
	sso.CreateAttr("WantAuthnRequestsSigned", "false")

	kd := sso.CreateElement("md:KeyDescriptor")
	kd.CreateAttr("use", "signing")
	kd.AddChild(keyInfo(i.CertDER))

	if sloURL != "" {
		slo := sso.CreateElement("md:SingleLogoutService")
		slo.CreateAttr("Binding", BindingHTTPRedirect)
		slo.CreateAttr("Location", sloURL)
	}
	sso.CreateElement("md:NameIDFormat").SetText(NameIDFormatEmail)
	sso.CreateElement("md:NameIDFormat").SetText(NameIDFormatUnspecified)
	for _, b := range []string{BindingHTTPRedirect, BindingHTTPPost} {
		s := sso.CreateElement("md:SingleSignOnService")
		s.CreateAttr("Binding", b)
		s.CreateAttr("Location", ssoURL)
	}
	return mustSerialize(ed)
}

// keyInfo returns <ds:KeyInfo> holding certDER as an X509Certificate.
func keyInfo(certDER []byte) *etree.Element {
	ki := etree.NewElement("ds:KeyInfo")
	ki.CreateAttr("xmlns:ds", NSDSig)
	ki.CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").
		SetText(base64.StdEncoding.EncodeToString(certDER))
	return ki
}

// NewID returns a random XML ID: "_" followed by 20 random bytes in hex.
func NewID() string {
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return "_" + hex.EncodeToString(b[:])
}

// mustSerialize writes el as a document without an XML declaration.
func mustSerialize(el *etree.Element) []byte {
	doc := etree.NewDocument()
	doc.SetRoot(el)
	b, err := doc.WriteToBytes()
	if err != nil {
		panic(fmt.Sprintf("samltest: serialize: %v", err))
	}
	return b
}
