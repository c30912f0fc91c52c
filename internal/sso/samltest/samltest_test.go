package samltest

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // RSA-OAEP-MGF1P with SHA-1, as encrypted.
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

const (
	testACS      = "https://sp.example/saml/acs"
	testAudience = "https://sp.example/metadata"
	testNameID   = "alice@acme.test"
)

func newTestIdP(t *testing.T) *IdP {
	t.Helper()
	idp, err := NewIdP("https://idp.example/metadata")
	if err != nil {
		t.Fatal(err)
	}
	return idp
}

func signed(t *testing.T, idp *IdP, opt SignOptions) []byte {
	t.Helper()
	r := idp.NewResponse(time.Now(), testACS, testAudience, "_req1", testNameID)
	b, err := idp.Sign(r, opt)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parse(t *testing.T, b []byte) *etree.Element {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		t.Fatalf("parse: %v\n%s", err, b)
	}
	return doc.Root()
}

// validate checks el's enveloped signature with goxmldsig, trusting only
// cert.
func validate(el *etree.Element, cert *x509.Certificate) error {
	ctx := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}})
	_, err := ctx.Validate(el)
	return err
}

func firstAssertion(t *testing.T, root *etree.Element) *etree.Element {
	t.Helper()
	a := firstChild(root, NSAssertion, "Assertion")
	if a == nil {
		t.Fatal("no Assertion")
	}
	return a
}

// requireSignatureAfterIssuer checks that el's Signature is the child
// element right after its Issuer.
func requireSignatureAfterIssuer(t *testing.T, el *etree.Element) {
	t.Helper()
	kids := el.ChildElements()
	if len(kids) < 2 || !isElem(kids[0], NSAssertion, "Issuer") || !isElem(kids[1], NSDSig, "Signature") {
		t.Fatalf("%s: Signature is not right after Issuer", el.Tag)
	}
}

func TestSignaturesValidate(t *testing.T) {
	idp := newTestIdP(t)
	for _, tc := range []struct {
		name string
		opt  SignOptions
	}{
		{"assertion", SignOptions{SignAssertion: true}},
		{"response", SignOptions{SignResponse: true}},
		{"both", SignOptions{SignAssertion: true, SignResponse: true}},
		{"both-sha1", SignOptions{SignAssertion: true, SignResponse: true, SHA1: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := signed(t, idp, tc.opt)
			root := parse(t, b)
			a := firstAssertion(t, root)
			if tc.opt.SignAssertion {
				requireSignatureAfterIssuer(t, a)
				if err := validate(a, idp.Cert); err != nil {
					t.Fatalf("assertion signature: %v\n%s", err, b)
				}
			} else if firstChild(a, NSDSig, "Signature") != nil {
				t.Fatal("assertion signed although SignAssertion is false")
			}
			if tc.opt.SignResponse {
				requireSignatureAfterIssuer(t, root)
				if err := validate(root, idp.Cert); err != nil {
					t.Fatalf("response signature: %v\n%s", err, b)
				}
			} else if firstChild(root, NSDSig, "Signature") != nil {
				t.Fatal("response signed although SignResponse is false")
			}
			wantAlg := dsig.RSASHA256SignatureMethod
			if tc.opt.SHA1 {
				wantAlg = dsig.RSASHA1SignatureMethod
			}
			if !bytes.Contains(b, []byte(`Algorithm="`+wantAlg+`"`)) {
				t.Fatalf("signature method %s not used", wantAlg)
			}
		})
	}
}

func TestOtherKeyDoesNotValidate(t *testing.T) {
	idp := newTestIdP(t)
	key, cert, err := NewKeyPair("attacker", 2048)
	if err != nil {
		t.Fatal(err)
	}
	r := idp.NewResponse(time.Now(), testACS, testAudience, "", testNameID)
	for _, opt := range []SignOptions{
		{SignAssertion: true, Key: key, Cert: cert},
		{SignAssertion: true, Key: key}, // claims the IdP's certificate
	} {
		b, err := idp.Sign(r, opt)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(firstAssertion(t, parse(t, b)), idp.Cert); err == nil {
			t.Fatal("signature by another key validated against the IdP certificate")
		}
	}
}

func TestResponseShape(t *testing.T) {
	idp := newTestIdP(t)
	now := time.Date(2030, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	r := idp.NewResponse(now, testACS, testAudience, "_req1", testNameID)
	if !strings.HasPrefix(r.ID, "_") || len(r.ID) != 41 || r.ID == r.Assertions[0].ID {
		t.Fatalf("bad IDs %q %q", r.ID, r.Assertions[0].ID)
	}
	b, err := idp.Sign(r, SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`Destination="` + testACS + `"`,
		`InResponseTo="_req1"`,
		`IssueInstant="2030-01-02T03:04:05.600Z"`,
		`NotBefore="2030-01-02T03:03:05.600Z"`,
		`NotOnOrAfter="2030-01-02T03:09:05.600Z"`,
		`<saml:Audience>` + testAudience + `</saml:Audience>`,
		`Method="` + CMBearer + `"`,
		`Recipient="` + testACS + `"`,
		`<samlp:StatusCode Value="` + StatusSuccess + `"/>`,
		`<saml:AuthnContextClassRef>` + PasswordProtectedTransport + `</saml:AuthnContextClassRef>`,
		`<saml:Attribute Name="email" NameFormat="` + AttrNameFormatBasic + `">`,
		`<saml:Assertion xmlns:saml="` + NSAssertion + `"`,
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("missing %s in\n%s", want, b)
		}
	}

	r.Assertions[0].Audience = ""
	r.InResponseTo, r.Assertions[0].InResponseTo = "", ""
	b, err = idp.Sign(r, SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("AudienceRestriction")) || bytes.Contains(b, []byte("InResponseTo")) {
		t.Fatalf("empty Audience/InResponseTo not omitted:\n%s", b)
	}
}

func TestMetadata(t *testing.T) {
	idp := newTestIdP(t)
	md := parse(t, idp.Metadata("https://idp.example/sso", "https://idp.example/slo"))
	if !isElem(md, NSMetadata, "EntityDescriptor") || md.SelectAttrValue("entityID", "") != idp.EntityID {
		t.Fatal("bad EntityDescriptor")
	}
	sso := firstChild(md, NSMetadata, "IDPSSODescriptor")
	if sso == nil || sso.SelectAttrValue("protocolSupportEnumeration", "") != NSProtocol {
		t.Fatal("bad IDPSSODescriptor")
	}
	kd := firstChild(sso, NSMetadata, "KeyDescriptor")
	certs := descendants(kd, NSDSig, "X509Certificate")
	if kd.SelectAttrValue("use", "") != "signing" || len(certs) != 1 || certs[0].Text() != base64.StdEncoding.EncodeToString(idp.CertDER) {
		t.Fatal("bad KeyDescriptor")
	}
	var bindings []string
	for _, s := range children(sso, NSMetadata, "SingleSignOnService") {
		bindings = append(bindings, s.SelectAttrValue("Binding", "")+" "+s.SelectAttrValue("Location", ""))
	}
	if fmt.Sprint(bindings) != fmt.Sprint([]string{BindingHTTPRedirect + " https://idp.example/sso", BindingHTTPPost + " https://idp.example/sso"}) {
		t.Fatalf("SingleSignOnService: %v", bindings)
	}
	if len(children(sso, NSMetadata, "SingleLogoutService")) != 1 || len(children(sso, NSMetadata, "NameIDFormat")) != 2 {
		t.Fatal("bad SingleLogoutService or NameIDFormat")
	}
	md = parse(t, idp.Metadata("https://idp.example/sso", ""))
	if len(descendants(md, NSMetadata, "SingleLogoutService")) != 0 {
		t.Fatal("SingleLogoutService without sloURL")
	}
}

func TestKeySizes(t *testing.T) {
	idp, err := NewIdPWithKeyBits("https://idp.example/metadata", 1024)
	if err != nil {
		t.Fatal(err)
	}
	if idp.Key.N.BitLen() != 1024 || newTestIdP(t).Key.N.BitLen() != 2048 {
		t.Fatal("wrong key size")
	}
	expired, err := NewIdPWithValidity("https://idp.example/metadata", time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !expired.Cert.NotAfter.Before(time.Now()) {
		t.Fatal("certificate not expired")
	}
}

func TestPostForm(t *testing.T) {
	f := PostForm(testACS, []byte("<x/>"), "state")
	if f.Get("SAMLResponse") != base64.StdEncoding.EncodeToString([]byte("<x/>")) || f.Get("RelayState") != "state" {
		t.Fatalf("bad form %v", f)
	}
}

func TestStripSignatures(t *testing.T) {
	idp := newTestIdP(t)
	out := StripSignatures(signed(t, idp, SignOptions{SignAssertion: true, SignResponse: true}))
	if bytes.Contains(out, []byte("Signature")) {
		t.Fatalf("signature left:\n%s", out)
	}
	if err := validate(firstAssertion(t, parse(t, out)), idp.Cert); err == nil {
		t.Fatal("stripped assertion validated")
	}
}

func TestReplaceNameID(t *testing.T) {
	idp := newTestIdP(t)
	out := ReplaceNameID(signed(t, idp, SignOptions{SignAssertion: true}), "mallory@acme.test")
	a := firstAssertion(t, parse(t, out))
	if got := a.FindElement("./Subject/NameID").Text(); got != "mallory@acme.test" {
		t.Fatalf("NameID %q", got)
	}
	if err := validate(a, idp.Cert); err == nil {
		t.Fatal("tampered assertion validated")
	}
}

// shape describes the structure of the tree below el: element names, with
// each ID attribute given as "orig" if it is one of origIDs and "new"
// otherwise, and the inside of SignedInfo/SignatureValue/KeyInfo left out.
func shape(el *etree.Element, origIDs map[string]bool) string {
	var sb strings.Builder
	sb.WriteString(el.Tag)
	if id := el.SelectAttrValue("ID", ""); id != "" {
		if origIDs[id] {
			sb.WriteString("#orig")
		} else {
			sb.WriteString("#new")
		}
	}
	switch el.Tag {
	case "SignedInfo", "SignatureValue", "KeyInfo":
		return sb.String()
	}
	sb.WriteString("(")
	for _, c := range el.ChildElements() {
		sb.WriteString(shape(c, origIDs) + " ")
	}
	sb.WriteString(")")
	return sb.String()
}

func TestXSW(t *testing.T) {
	idp := newTestIdP(t)
	in := signed(t, idp, SignOptions{SignAssertion: true, SignResponse: true})
	root := parse(t, in)
	origIDs := map[string]bool{}
	for _, el := range []*etree.Element{root, firstAssertion(t, root)} {
		origIDs[el.SelectAttrValue("ID", "")] = true
	}
	respSig := root.FindElement("./Signature/SignatureValue").Text()
	assertionSig := firstAssertion(t, root).FindElement("./Signature/SignatureValue").Text()

	shapes := map[string]int{shape(root, origIDs): 0}
	for v := 1; v <= XSWVariants; v++ {
		out, err := XSW(in, v, "mallory@evil.test")
		if err != nil {
			t.Fatalf("XSW%d: %v", v, err)
		}
		if bytes.Equal(out, in) {
			t.Fatalf("XSW%d: unchanged", v)
		}
		wantSig := assertionSig
		if v <= 2 {
			wantSig = respSig
		}
		if !bytes.Contains(out, []byte(wantSig)) {
			t.Fatalf("XSW%d: original signature gone", v)
		}
		if !bytes.Contains(out, []byte("mallory@evil.test")) || !bytes.Contains(out, []byte(testNameID)) {
			t.Fatalf("XSW%d: does not hold both the evil and the original NameID", v)
		}
		s := shape(parse(t, out), origIDs)
		if prev, dup := shapes[s]; dup {
			t.Fatalf("XSW%d has the same shape as variant %d: %s", v, prev, s)
		}
		shapes[s] = v
	}

	if _, err := XSW(in, 0, "x"); err == nil {
		t.Fatal("XSW0 accepted")
	}
	if _, err := XSW(signed(t, idp, SignOptions{SignAssertion: true}), 1, "x"); err == nil {
		t.Fatal("XSW1 without a Response signature accepted")
	}
	if _, err := XSW(signed(t, idp, SignOptions{SignResponse: true}), 3, "x"); err == nil {
		t.Fatal("XSW3 without an Assertion signature accepted")
	}
}

// TestXSWCleanCopyDigest checks that the clean copy each variant embeds is
// what the original signature covers: moved back in place of the evil
// element, with the original Signature, it validates.
func TestXSWCleanCopyDigest(t *testing.T) {
	idp := newTestIdP(t)
	in := signed(t, idp, SignOptions{SignAssertion: true})
	out, err := XSW(in, 8, "mallory@evil.test")
	if err != nil {
		t.Fatal(err)
	}
	evil := firstAssertion(t, parse(t, out))
	sig := firstChild(evil, NSDSig, "Signature")
	clean := descendants(sig, NSAssertion, "Assertion")[0].Copy()
	obj := firstChild(sig, NSDSig, "Object")
	sig.RemoveChild(obj)
	clean.InsertChildAt(firstChild(clean, NSAssertion, "Issuer").Index()+1, sig)
	if err := validate(clean, idp.Cert); err != nil {
		t.Fatalf("clean copy does not validate: %v", err)
	}
	if err := validate(evil, idp.Cert); err == nil {
		t.Fatal("evil assertion validated")
	}
}

func TestCommentInjectNameID(t *testing.T) {
	idp := newTestIdP(t)
	r := idp.NewResponse(time.Now(), testACS, testAudience, "", "user@evil.com.acme.test")
	out, err := idp.CommentInjectNameID(r, SignOptions{SignAssertion: true, SignResponse: true}, "user@evil.com", ".acme.test")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte("user@evil.com<!---->.acme.test")) {
		t.Fatalf("no comment in NameID:\n%s", out)
	}
	root := parse(t, out)
	a := firstAssertion(t, root)
	if err := validate(a, idp.Cert); err != nil {
		t.Fatalf("assertion: %v", err)
	}
	if err := validate(root, idp.Cert); err != nil {
		t.Fatalf("response: %v", err)
	}
	// etree's Text() joins the text around comments; the first text node
	// alone is what a naive reader sees.
	nameID := a.FindElement("./Subject/NameID")
	if cd, ok := nameID.Child[0].(*etree.CharData); !ok || cd.Data != "user@evil.com" {
		t.Fatalf("first child of NameID is %#v", nameID.Child[0])
	}
	if got := nameID.Text(); got != "user@evil.com.acme.test" {
		t.Fatalf("NameID text %q", got)
	}
}

func TestAddUnsignedAssertion(t *testing.T) {
	idp := newTestIdP(t)
	in := signed(t, idp, SignOptions{SignAssertion: true})
	extra := idp.NewResponse(time.Now(), testACS, testAudience, "", "mallory@evil.test").Assertions[0]
	out, err := AddUnsignedAssertion(in, extra)
	if err != nil {
		t.Fatal(err)
	}
	as := children(parse(t, out), NSAssertion, "Assertion")
	if len(as) != 2 || firstChild(as[0], NSDSig, "Signature") == nil || firstChild(as[1], NSDSig, "Signature") != nil ||
		as[1].FindElement("./Subject/NameID").Text() != "mallory@evil.test" {
		t.Fatalf("unexpected result:\n%s", out)
	}
}

func TestDuplicateID(t *testing.T) {
	idp := newTestIdP(t)
	in := signed(t, idp, SignOptions{SignAssertion: true})
	id := firstAssertion(t, parse(t, in)).SelectAttrValue("ID", "")
	out, err := DuplicateID(in)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(out, []byte(`ID="`+id+`"`)); n != 2 {
		t.Fatalf("ID appears %d times", n)
	}
}

func TestWithDoctype(t *testing.T) {
	idp := newTestIdP(t)
	in := signed(t, idp, SignOptions{SignAssertion: true})
	for kind, want := range map[string]string{
		DoctypeXXE: "SYSTEM", DoctypeBomb: "lol9", DoctypeXXERef: "&xxe;</saml:NameID>", DoctypeBombRef: "&lol9;</saml:NameID>",
	} {
		for _, doc := range [][]byte{in, append([]byte(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"), in...)} {
			out := WithDoctype(doc, kind)
			if !bytes.Contains(out, []byte("<!DOCTYPE samlp:Response")) || !bytes.Contains(out, []byte(want)) {
				t.Fatalf("%s: %s", kind, out)
			}
			if bytes.HasPrefix(doc, []byte("<?xml")) && !bytes.HasPrefix(out, []byte("<?xml")) {
				t.Fatalf("%s: DOCTYPE before the XML declaration", kind)
			}
		}
	}
}

// decryptAssertion decrypts an EncryptedAssertion made by EncryptAssertion.
func decryptAssertion(ea *etree.Element, key *rsa.PrivateKey) ([]byte, error) {
	ek := ea.FindElement("./EncryptedData/KeyInfo/EncryptedKey/CipherData/CipherValue")
	data := ea.FindElement("./EncryptedData/CipherData/CipherValue")
	if ek == nil || data == nil {
		return nil, fmt.Errorf("malformed EncryptedAssertion")
	}
	wrapped, err := base64.StdEncoding.DecodeString(ek.Text())
	if err != nil {
		return nil, err
	}
	aesKey, err := rsa.DecryptOAEP(sha1.New(), nil, key, wrapped, nil)
	if err != nil {
		return nil, err
	}
	ct, err := base64.StdEncoding.DecodeString(data.Text())
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(aesKey)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if len(ct) < gcm.NonceSize() {
		return nil, fmt.Errorf("short ciphertext")
	}
	return gcm.Open(nil, ct[:gcm.NonceSize()], ct[gcm.NonceSize():], nil)
}

func TestEncryptAssertion(t *testing.T) {
	idp := newTestIdP(t)
	spKey, spCert, err := NewKeyPair("sp", 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _, err := NewKeyPair("other", 2048)
	if err != nil {
		t.Fatal(err)
	}
	r := idp.NewResponse(time.Now(), testACS, testAudience, "", testNameID)
	doc, err := idp.Build(r, SignOptions{SignAssertion: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := EncryptAssertion(doc, spCert); err != nil {
		t.Fatal(err)
	}
	out, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte(testNameID)) || bytes.Contains(out, []byte("NameID")) {
		t.Fatalf("plaintext left:\n%s", out)
	}
	root := parse(t, out)
	if len(children(root, NSAssertion, "Assertion")) != 0 {
		t.Fatal("Assertion left")
	}
	ea := firstChild(root, NSAssertion, "EncryptedAssertion")
	if ea == nil || !bytes.Contains(out, []byte(AlgAES256GCM)) || !bytes.Contains(out, []byte(AlgRSAOAEPMGF1P)) {
		t.Fatalf("no EncryptedAssertion:\n%s", out)
	}

	if _, err := decryptAssertion(ea, otherKey); err == nil {
		t.Fatal("decrypted with another key")
	}
	plain, err := decryptAssertion(ea, spKey)
	if err != nil {
		t.Fatal(err)
	}
	a := parse(t, plain)
	if !isElem(a, NSAssertion, "Assertion") || a.FindElement("./Subject/NameID").Text() != testNameID {
		t.Fatalf("bad plaintext:\n%s", plain)
	}
	if err := validate(a, idp.Cert); err != nil {
		t.Fatalf("decrypted assertion signature: %v", err)
	}

	// The Response can be signed after encryption.
	if err := idp.SignResponseElement(doc, SignOptions{}); err != nil {
		t.Fatal(err)
	}
	requireSignatureAfterIssuer(t, doc.Root())
	if err := validate(doc.Root(), idp.Cert); err != nil {
		t.Fatalf("response signed after encryption: %v", err)
	}
}
