package samltest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/beevik/etree"
)

// XSWVariants is the number of XML Signature Wrapping variants XSW knows,
// numbered 1 to XSWVariants.
const XSWVariants = 8

// XSW applies XML Signature Wrapping variant 1..XSWVariants to signed, a
// validly signed Response this package produced, and puts evilNameID in the
// NameID (and in any AttributeValue that held the original NameID) of the
// "evil" assertion: the one at the place an SP that does not tie what it
// reads to what the signature covers would read.
//
// The variants follow the catalogue of Somorovsky et al., "On Breaking
// SAML: Be Whoever You Want to Be" (USENIX Security 2012), as implemented in
// the SAML Raider Burp extension. "Clean copy" below means a copy of the
// original signed element with its own ds:Signature removed: a signature
// verifier that resolves the Reference URI to it finds the digest still
// matches, because the enveloped-signature transform removed that
// Signature when the digest was made.
//
// Variants 1 and 2 wrap the Response signature (signed must have one):
//
//	XSW1: <Response ID=evil>
//	        <Issuer/>
//	        <ds:Signature (Reference #orig)> ...
//	          <Response ID=orig/>        clean copy, last child of the Signature
//	        </ds:Signature>
//	        <Status/>
//	        <Assertion NameID=evil/>     the Response's own assertion(s), changed
//	      </Response>
//	XSW2: as XSW1, but the clean copy is a sibling right before the
//	      Signature (detached signature) instead of inside it:
//	      <Response ID=evil> <Issuer/> <Response ID=orig/> <ds:Signature/> <Status/> <Assertion NameID=evil/>
//
// Variants 3 to 8 wrap the signature of the first Assertion (which must have
// one); the Response signature, if any, is left in place (and no longer
// matches):
//
//	XSW3: <Response> <Assertion ID=evil NameID=evil/> (no signature)
//	                 <Assertion ID=orig><ds:Signature/></Assertion>
//	XSW4: <Response> <Assertion ID=evil NameID=evil> (no signature)
//	                   ...<Assertion ID=orig><ds:Signature/></Assertion>  as its last child
//	                 </Assertion>
//	XSW5: <Response> <Assertion ID=evil NameID=evil><ds:Signature (Reference #orig)/></Assertion>
//	                 ... <Assertion ID=orig/>   clean copy, last child of Response
//	XSW6: <Response> <Assertion ID=evil NameID=evil>
//	                   <ds:Signature (Reference #orig)> ... <Assertion ID=orig/> </ds:Signature>
//	                 </Assertion>
//	XSW7: <Response> <samlp:Extensions><Assertion ID=orig/></samlp:Extensions>  clean copy
//	                 <Assertion ID=orig NameID=evil><ds:Signature/></Assertion>  same ID
//	XSW8: <Response> <Assertion ID=orig NameID=evil>                              same ID
//	                   <ds:Signature> ... <ds:Object><Assertion ID=orig/></ds:Object> </ds:Signature>
//	                 </Assertion>
//
// The original ds:Signature element (its SignatureValue unchanged) is kept
// in every variant. XSW returns an error if signed lacks the signature the
// variant wraps.
func XSW(signed []byte, variant int, evilNameID string) ([]byte, error) {
	doc, root, err := parseResponse(signed)
	if err != nil {
		return nil, err
	}
	switch variant {
	case 1, 2:
		sig := firstChild(root, NSDSig, "Signature")
		if sig == nil {
			return nil, fmt.Errorf("samltest: XSW%d wraps the Response signature, but the Response is not signed", variant)
		}
		clean := selfContained(root)
		removeChildren(clean, NSDSig, "Signature")
		root.CreateAttr("ID", NewID())
		for _, a := range children(root, NSAssertion, "Assertion") {
			setEvil(a, evilNameID)
		}
		if variant == 1 {
			sig.AddChild(clean)
		} else {
			root.InsertChildAt(sig.Index(), clean)
		}

	case 3, 4, 5, 6, 7, 8:
		assertion := firstChild(root, NSAssertion, "Assertion")
		if assertion == nil {
			return nil, fmt.Errorf("samltest: XSW%d: the Response has no Assertion", variant)
		}
		sig := firstChild(assertion, NSDSig, "Signature")
		if sig == nil {
			return nil, fmt.Errorf("samltest: XSW%d wraps the Assertion signature, but the Assertion is not signed", variant)
		}
		clean := selfContained(assertion)
		removeChildren(clean, NSDSig, "Signature")

		switch variant {
		case 3, 4:
			evil := clean.Copy()
			evil.CreateAttr("ID", NewID())
			setEvil(evil, evilNameID)
			root.InsertChildAt(assertion.Index(), evil)
			if variant == 4 {
				evil.AddChild(assertion)
			}
		case 5, 6:
			assertion.CreateAttr("ID", NewID())
			setEvil(assertion, evilNameID)
			if variant == 5 {
				root.AddChild(clean)
			} else {
				sig.AddChild(clean)
			}
		case 7:
			setEvil(assertion, evilNameID)
			ext := newSibling(root, "Extensions")
			ext.AddChild(clean)
			// Extensions comes before Status in the schema.
			before := firstChild(root, NSProtocol, "Status")
			if before == nil {
				before = assertion
			}
			root.InsertChildAt(before.Index(), ext)
		case 8:
			setEvil(assertion, evilNameID)
			obj := newSibling(sig, "Object")
			obj.AddChild(clean)
			sig.AddChild(obj)
		}

	default:
		return nil, fmt.Errorf("samltest: no XSW variant %d (1..%d)", variant, XSWVariants)
	}
	return doc.WriteToBytes()
}

// setEvil puts evilNameID in the NameID of assertion, and in each
// AttributeValue that held the NameID it replaced.
func setEvil(assertion *etree.Element, evilNameID string) {
	for _, subj := range children(assertion, NSAssertion, "Subject") {
		for _, n := range children(subj, NSAssertion, "NameID") {
			old := n.Text()
			setText(n, evilNameID)
			for _, v := range descendants(assertion, NSAssertion, "AttributeValue") {
				if v.Text() == old {
					setText(v, evilNameID)
				}
			}
		}
	}
}

// StripSignatures removes every ds:Signature element from signed.
func StripSignatures(signed []byte) []byte {
	doc, root := mustParseResponse(signed)
	for _, s := range descendants(root, NSDSig, "Signature") {
		if p := s.Parent(); p != nil {
			p.RemoveChild(s)
		}
	}
	return mustWrite(doc)
}

// ReplaceNameID sets the text of every saml:NameID in signed to newNameID,
// leaving the signatures as they were (and so no longer matching).
func ReplaceNameID(signed []byte, newNameID string) []byte {
	doc, root := mustParseResponse(signed)
	for _, n := range descendants(root, NSAssertion, "NameID") {
		setText(n, newNameID)
	}
	return mustWrite(doc)
}

// CommentInjectNameID builds and signs r as Sign does, except that the
// NameID of each assertion is prefix, an empty XML comment, then suffix:
//
//	<saml:NameID>user@evil.com<!---->.acme.test</saml:NameID>
//
// The signatures are valid: exclusive canonicalization without comments
// drops the comment, so what is signed is the NameID prefix+suffix. An SP
// that reads only the first text node of the NameID sees just prefix.
func (i *IdP) CommentInjectNameID(r Response, opt SignOptions, prefix, suffix string) ([]byte, error) {
	doc, err := i.build(r, opt, func(assertion *etree.Element) {
		for _, subj := range children(assertion, NSAssertion, "Subject") {
			for _, n := range children(subj, NSAssertion, "NameID") {
				n.Child = nil
				n.CreateText(prefix)
				n.CreateComment("")
				n.CreateText(suffix)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return doc.WriteToBytes()
}

// AddUnsignedAssertion builds a (unsigned) and inserts it into the Response
// signed, right after its last Assertion or EncryptedAssertion (or at the
// end, if it has none):
//
//	<Response> ... <Assertion (signed)/> <Assertion (a, unsigned)/> </Response>
func AddUnsignedAssertion(signed []byte, a Assertion) ([]byte, error) {
	doc, root, err := parseResponse(signed)
	if err != nil {
		return nil, err
	}
	el := buildAssertion(a)
	idx := -1
	for _, c := range root.ChildElements() {
		if isElem(c, NSAssertion, "Assertion") || isElem(c, NSAssertion, "EncryptedAssertion") {
			idx = c.Index()
		}
	}
	if idx < 0 {
		root.AddChild(el)
	} else {
		root.InsertChildAt(idx+1, el)
	}
	return doc.WriteToBytes()
}

// DuplicateID inserts, right before the first (signed) Assertion of
// signed, a clean copy of it: same ID, same content, no ds:Signature.
//
//	<Response> <Assertion ID=X/> <Assertion ID=X><ds:Signature/></Assertion> </Response>
//
// The document then has two elements with the ID the signature references;
// an SP must refuse it rather than pick one.
func DuplicateID(signed []byte) ([]byte, error) {
	doc, root, err := parseResponse(signed)
	if err != nil {
		return nil, err
	}
	assertion := firstChild(root, NSAssertion, "Assertion")
	if assertion == nil || assertion.SelectAttrValue("ID", "") == "" {
		return nil, errors.New("samltest: DuplicateID: the Response has no Assertion with an ID")
	}
	dup := selfContained(assertion)
	removeChildren(dup, NSDSig, "Signature")
	root.InsertChildAt(assertion.Index(), dup)
	return doc.WriteToBytes()
}

// Kinds of DOCTYPE that WithDoctype adds.
const (
	// DoctypeXXE declares an external entity (file:///etc/passwd), not
	// referenced, so the rest of the document is unchanged.
	DoctypeXXE = "xxe"
	// DoctypeBomb declares a "billion laughs" entity (10^9 "lol"s once
	// expanded), not referenced.
	DoctypeBomb = "bomb"
	// DoctypeXXERef is DoctypeXXE with &xxe; appended to the first NameID.
	DoctypeXXERef = "xxe-ref"
	// DoctypeBombRef is DoctypeBomb with &lol9; appended to the first
	// NameID: about 3 GB for a parser that expands entities.
	DoctypeBombRef = "bomb-ref"
)

const (
	xxeDTD  = `<!DOCTYPE samlp:Response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>`
	bombDTD = `<!DOCTYPE samlp:Response [
<!ENTITY lol "lol">
<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>`
)

// WithDoctype returns xml with a DOCTYPE of the given kind (DoctypeXXE,
// DoctypeBomb, DoctypeXXERef or DoctypeBombRef) put before the root
// element, after the XML declaration if there is one. An SP must refuse
// any message with a DOCTYPE. It panics on an unknown kind.
func WithDoctype(xml []byte, kind string) []byte {
	var dtd, ref string
	switch kind {
	case DoctypeXXE:
		dtd = xxeDTD
	case DoctypeBomb:
		dtd = bombDTD
	case DoctypeXXERef:
		dtd, ref = xxeDTD, "&xxe;"
	case DoctypeBombRef:
		dtd, ref = bombDTD, "&lol9;"
	default:
		panic(fmt.Sprintf("samltest: WithDoctype: unknown kind %q", kind))
	}

	body := xml
	if ref != "" {
		body = appendToFirstNameID(body, ref)
	}
	var out bytes.Buffer
	rest := body
	if bytes.HasPrefix(bytes.TrimSpace(body), []byte("<?xml")) {
		end := bytes.Index(body, []byte("?>")) + len("?>")
		out.Write(body[:end])
		out.WriteString("\n")
		rest = body[end:]
	}
	out.WriteString(dtd)
	out.WriteString("\n")
	out.Write(bytes.TrimLeft(rest, " \t\r\n"))
	return out.Bytes()
}

// appendToFirstNameID inserts raw text right before the first NameID end
// tag, whatever its prefix.
func appendToFirstNameID(xml []byte, raw string) []byte {
	s := string(xml)
	i := strings.Index(s, "NameID>")
	for i >= 0 {
		// Find the "</prefix:NameID>" end tag that this match belongs to.
		start := strings.LastIndex(s[:i], "<")
		if start >= 0 && strings.HasPrefix(s[start:], "</") {
			return []byte(s[:start] + raw + s[start:])
		}
		next := strings.Index(s[i+1:], "NameID>")
		if next < 0 {
			break
		}
		i += 1 + next
	}
	panic("samltest: WithDoctype: no NameID to reference the entity from")
}
