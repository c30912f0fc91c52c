package samltest

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/url"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// SignOptions says which elements Build signs, and how.
type SignOptions struct {
	SignAssertion bool // enveloped signature inside each Assertion (after its Issuer)
	SignResponse  bool // enveloped signature in the Response (after its Issuer)
	SHA1          bool // RSA-SHA1 signature and SHA-1 digest instead of SHA-256

	// Key and Cert override the signer, e.g. with an attacker's key. Cert
	// is the certificate put in the signature's KeyInfo; if Key is set and
	// Cert is nil, the IdP's certificate is put there (a signature by one
	// key claiming another's certificate).
	Key  *rsa.PrivateKey
	Cert *x509.Certificate
}

// Build builds r and signs it as opt says. It returns the document, so that
// a test can change it after signing. Each assertion is signed on its own
// first, then the Response (covering the signed assertions).
func (i *IdP) Build(r Response, opt SignOptions) (*etree.Document, error) {
	return i.build(r, opt, nil)
}

// Sign is Build, serialized (without an XML declaration).
func (i *IdP) Sign(r Response, opt SignOptions) ([]byte, error) {
	doc, err := i.Build(r, opt)
	if err != nil {
		return nil, err
	}
	return doc.WriteToBytes()
}

// build is Build, calling edit (if not nil) on each assertion element
// before it is signed.
func (i *IdP) build(r Response, opt SignOptions, edit func(assertion *etree.Element)) (*etree.Document, error) {
	resp := buildResponse(r)
	for _, a := range r.Assertions {
		ael := buildAssertion(a)
		if edit != nil {
			edit(ael)
		}
		if opt.SignAssertion {
			if err := i.signElement(ael, opt); err != nil {
				return nil, fmt.Errorf("samltest: sign assertion: %w", err)
			}
		}
		resp.AddChild(ael)
	}
	if opt.SignResponse {
		if err := i.signElement(resp, opt); err != nil {
			return nil, fmt.Errorf("samltest: sign response: %w", err)
		}
	}
	doc := etree.NewDocument()
	doc.SetRoot(resp)
	return doc, nil
}

// signingContext returns the goxmldsig context for opt: exclusive c14n
// without comments, RSA-SHA256 (or RSA-SHA1) with the IdP's key unless opt
// overrides it.
func (i *IdP) signingContext(opt SignOptions) (*dsig.SigningContext, error) {
	key, certDER := i.Key, i.CertDER
	if opt.Key != nil {
		key = opt.Key
		if opt.Cert != nil {
			certDER = opt.Cert.Raw
		}
	}
	ctx, err := dsig.NewSigningContext(key, [][]byte{certDER})
	if err != nil {
		return nil, err
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if opt.SHA1 {
		if err := ctx.SetSignatureMethod(dsig.RSASHA1SignatureMethod); err != nil {
			return nil, err
		}
		ctx.Hash = crypto.SHA1
	} else if err := ctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		return nil, err
	}
	return ctx, nil
}

// signElement adds an enveloped signature of el to el, right after its
// saml:Issuer child (or first, if it has none), where the SAML schema
// wants it.
//
// The signature is computed over a copy of el, because goxmldsig's
// exclusive canonicalizer rewrites the element it canonicalizes (it drops
// namespace declarations and comments); el itself is left as built, so that
// for instance a comment inside a NameID survives signing.
func (i *IdP) signElement(el *etree.Element, opt SignOptions) error {
	ctx, err := i.signingContext(opt)
	if err != nil {
		return err
	}
	sig, err := ctx.ConstructSignature(el.Copy(), true)
	if err != nil {
		return err
	}
	insertAfterIssuer(el, sig)
	return nil
}

// insertAfterIssuer inserts child into el right after el's saml:Issuer, or
// as its first child if it has none.
func insertAfterIssuer(el *etree.Element, child etree.Token) {
	if iss := firstChild(el, NSAssertion, "Issuer"); iss != nil {
		el.InsertChildAt(iss.Index()+1, child)
		return
	}
	el.InsertChildAt(0, child)
}

// Encode returns doc in base64 (standard encoding), as the SAMLResponse
// form value of the HTTP-POST binding.
func Encode(doc []byte) string {
	return base64.StdEncoding.EncodeToString(doc)
}

// PostForm returns the form the browser posts to acsURL with the HTTP-POST
// binding: SAMLResponse (base64 of samlResponse) and, if relayState is not
// empty, RelayState. acsURL is not part of the form; it is taken so that
// call sites read like the request they stand for.
func PostForm(acsURL string, samlResponse []byte, relayState string) url.Values {
	_ = acsURL
	v := url.Values{"SAMLResponse": {Encode(samlResponse)}}
	if relayState != "" {
		v.Set("RelayState", relayState)
	}
	return v
}

// SignResponseElement adds an enveloped signature to the Response at the
// root of doc, after its Issuer, as Build does with SignResponse. Use it to
// sign a Response after changing it, e.g. after EncryptAssertion.
func (i *IdP) SignResponseElement(doc *etree.Document, opt SignOptions) error {
	root := doc.Root()
	if root == nil {
		return fmt.Errorf("samltest: sign response: empty document")
	}
	return i.signElement(root, opt)
}
