package sso_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/sso/samltest"
)

// TestSPKeyRotation: during a rotation both SP certificates are published and an
// assertion encrypted to either key is accepted; finishing the rotation drops the old one.
func TestSPKeyRotation(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t)
	s := newSite(t, srv, d)
	idp := mustIdP(t, "https://idp.example/rotation")
	c := s.connect(t, idp, nil)
	oldCert := spCertificate(t, s, c.Slug)
	if r := s.call(t, "POST", "/api/v1/admin/sso/connections/"+c.ID+"/rotate-key", s.admin, nil); r.StatusCode != 200 {
		t.Fatalf("rotate: %d %s", r.StatusCode, r.Body)
	}
	md := string(s.call(t, "GET", "/sso/saml/"+c.Slug+"/metadata", "", nil).Body)
	if n := len(certRe.FindAllString(md, -1)); n < 3 {
		t.Fatalf("metadata during rotation publishes %d certificates, want the new pair and the old one", n)
	}
	newCert := spCertificate(t, s, c.Slug)
	if newCert.Equal(oldCert) {
		t.Fatal("the first published certificate is still the old one")
	}
	login := func() int {
		p := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
		doc, err := idp.Build(idp.NewResponse(time.Now(), c.ACSURL, c.SPEntityID, p.RequestID, "rot@example.org"), samltest.SignOptions{SignAssertion: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := samltest.EncryptAssertion(doc, oldCert); err != nil {
			t.Fatal(err)
		}
		out, _ := doc.WriteToBytes()
		return s.post(t, c.Slug, out, p.Relay, p.Browser).StatusCode
	}
	if code := login(); code != http.StatusSeeOther {
		t.Fatalf("assertion encrypted to the old key during the rotation: %d", code)
	}
	if r := s.call(t, "DELETE", "/api/v1/admin/sso/connections/"+c.ID+"/previous-key", s.admin, nil); r.StatusCode != 204 {
		t.Fatalf("finish rotation: %d %s", r.StatusCode, r.Body)
	}
	md = string(s.call(t, "GET", "/sso/saml/"+c.Slug+"/metadata", "", nil).Body)
	if n := len(certRe.FindAllString(md, -1)); n != 2 { // one certificate, for signing and for encryption
		t.Fatalf("%d certificates published after the rotation, want 2 (one, twice): %s", n, md)
	}
	if code := login(); code != http.StatusForbidden {
		t.Fatalf("assertion encrypted to the dropped key: %d", code)
	}
}
