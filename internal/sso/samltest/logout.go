package samltest

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html"
	"net/url"
	"time"
)

// LogoutRequestURL is an IdP-initiated LogoutRequest for the HTTP-Redirect binding:
// DEFLATE + base64 in SAMLRequest, signed over the query string with RSA-SHA256
// (saml-bindings §3.4.4.1). sessionIndex may be empty (every session of the NameID).
// With sign false the Signature and SigAlg parameters are left out.
func (i *IdP) LogoutRequestURL(sloURL, nameID, sessionIndex, relay string, sign bool) (string, error) {
	si := ""
	if sessionIndex != "" {
		si = "<samlp:SessionIndex>" + html.EscapeString(sessionIndex) + "</samlp:SessionIndex>"
	}
	xml := fmt.Sprintf(`<samlp:LogoutRequest xmlns:samlp="%s" xmlns:saml="%s" ID="%s" Version="2.0" IssueInstant="%s" Destination="%s">`+
		`<saml:Issuer>%s</saml:Issuer><saml:NameID>%s</saml:NameID>%s</samlp:LogoutRequest>`,
		NSProtocol, NSAssertion, NewID(), time.Now().UTC().Format(TimeFormat), html.EscapeString(sloURL),
		html.EscapeString(i.EntityID), html.EscapeString(nameID), si)
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		return "", err
	}
	if _, err := w.Write([]byte(xml)); err != nil {
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	q := "SAMLRequest=" + url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes()))
	if relay != "" {
		q += "&RelayState=" + url.QueryEscape(relay)
	}
	if sign {
		q += "&SigAlg=" + url.QueryEscape("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")
		sum := sha256.Sum256([]byte(q))
		sig, err := rsa.SignPKCS1v15(rand.Reader, i.Key, crypto.SHA256, sum[:])
		if err != nil {
			return "", err
		}
		q += "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	}
	return sloURL + "?" + q, nil
}
