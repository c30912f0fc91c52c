package samltest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // RSA-OAEP-MGF1P with a SHA-1 digest is what SPs expect.
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/beevik/etree"
)

// XML Encryption algorithms EncryptAssertion uses.
const (
	AlgAES256GCM    = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
	AlgRSAOAEPMGF1P = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
	AlgSHA1Digest   = "http://www.w3.org/2000/09/xmldsig#sha1"
	xencTypeElement = "http://www.w3.org/2001/04/xmlenc#Element"
)

// EncryptAssertion replaces each saml:Assertion child of doc's Response
// (signed or not) with a saml:EncryptedAssertion for spCert's RSA key:
//
//	<saml:EncryptedAssertion>
//	  <xenc:EncryptedData Type="...xmlenc#Element">
//	    <xenc:EncryptionMethod Algorithm="...xmlenc11#aes256-gcm"/>
//	    <ds:KeyInfo>
//	      <xenc:EncryptedKey>
//	        <xenc:EncryptionMethod Algorithm="...xmlenc#rsa-oaep-mgf1p">
//	          <ds:DigestMethod Algorithm="...xmldsig#sha1"/>
//	        </xenc:EncryptionMethod>
//	        <ds:KeyInfo><ds:X509Data><ds:X509Certificate>spCert</...></ds:KeyInfo>
//	        <xenc:CipherData><xenc:CipherValue>RSA-OAEP(AES key)</xenc:CipherValue></xenc:CipherData>
//	      </xenc:EncryptedKey>
//	    </ds:KeyInfo>
//	    <xenc:CipherData><xenc:CipherValue>nonce(12) || ciphertext || tag(16)</xenc:CipherValue></xenc:CipherData>
//	  </xenc:EncryptedData>
//	</saml:EncryptedAssertion>
//
// The plaintext is the assertion serialized with every namespace in scope
// declared on it. Sign the assertion (Build with SignAssertion) before
// encrypting it; sign the Response, if at all, after. Encrypting to a
// certificate that is not the SP's gives an assertion the SP cannot read.
func EncryptAssertion(doc *etree.Document, spCert *x509.Certificate) error {
	pub, ok := spCert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return errors.New("samltest: EncryptAssertion: the certificate's key is not RSA")
	}
	root := doc.Root()
	if root == nil {
		return errors.New("samltest: EncryptAssertion: empty document")
	}
	assertions := children(root, NSAssertion, "Assertion")
	if len(assertions) == 0 {
		return errors.New("samltest: EncryptAssertion: the Response has no Assertion")
	}
	for _, a := range assertions {
		plaintext := mustSerialize(selfContained(a))
		ea, err := encryptedAssertion(plaintext, pub, spCert.Raw)
		if err != nil {
			return err
		}
		idx := a.Index()
		root.RemoveChild(a)
		root.InsertChildAt(idx, ea)
	}
	return nil
}

func encryptedAssertion(plaintext []byte, pub *rsa.PublicKey, certDER []byte) (*etree.Element, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	ciphertext := gcm.Seal(nonce, nonce, plaintext, nil)

	wrapped, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, key, nil)
	if err != nil {
		return nil, fmt.Errorf("samltest: RSA-OAEP: %w", err)
	}

	ea := etree.NewElement("saml:EncryptedAssertion")
	ea.CreateAttr("xmlns:saml", NSAssertion)
	ed := ea.CreateElement("xenc:EncryptedData")
	ed.CreateAttr("xmlns:xenc", NSXMLEnc)
	ed.CreateAttr("Type", xencTypeElement)
	ed.CreateElement("xenc:EncryptionMethod").CreateAttr("Algorithm", AlgAES256GCM)

	ki := ed.CreateElement("ds:KeyInfo")
	ki.CreateAttr("xmlns:ds", NSDSig)
	ek := ki.CreateElement("xenc:EncryptedKey")
	em := ek.CreateElement("xenc:EncryptionMethod")
	em.CreateAttr("Algorithm", AlgRSAOAEPMGF1P)
	em.CreateElement("ds:DigestMethod").CreateAttr("Algorithm", AlgSHA1Digest)
	ekKeyInfo := keyInfo(certDER)
	ekKeyInfo.RemoveAttr("xmlns:ds") // declared on the outer KeyInfo
	ek.AddChild(ekKeyInfo)
	ek.CreateElement("xenc:CipherData").CreateElement("xenc:CipherValue").
		SetText(base64.StdEncoding.EncodeToString(wrapped))

	ed.CreateElement("xenc:CipherData").CreateElement("xenc:CipherValue").
		SetText(base64.StdEncoding.EncodeToString(ciphertext))
	return ea, nil
}
