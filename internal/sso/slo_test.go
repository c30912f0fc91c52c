package sso_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/sso/samltest"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestSingleLogout: an IdP-initiated LogoutRequest (Redirect binding, signed) revokes the
// sessions of that NameID and SessionIndex; unsigned or foreign-signed requests revoke
// nothing; a browser logout of an SSO session sends a signed LogoutRequest to the IdP.
func TestSingleLogout(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t)
	s := newSite(t, srv, d)
	idp := mustIdP(t, "https://idp.example/slo")
	c := s.connect(t, idp, nil)
	login := func(sessionIndex string) string {
		p := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
		r := s.post(t, c.Slug, response(t, idp, c, p.RequestID, "lou@example.org", func(r *samltest.Response) {
			r.Assertions[0].SessionIndex = sessionIndex
		}), p.Relay, p.Browser)
		if tok := sessionToken(r); tok != "" {
			return tok
		}
		t.Fatalf("login: %d %s", r.StatusCode, r.Body)
		return ""
	}
	one, two, three := login("idx-1"), login("idx-2"), login("idx-3")
	alive := func(tok string) bool { return s.call(t, "GET", "/api/v1/session", tok, nil).StatusCode == 200 }
	slo := strings.Replace(c.ACSURL, "/acs", "/slo", 1)
	send := func(u string) *testutil.Response {
		pu, _ := url.Parse(u)
		return s.srv.Do(t, testutil.Request{Host: s.host, Path: pu.Path + "?" + pu.RawQuery})
	}

	// Unsigned, and signed by another key: refused, nothing revoked.
	u, _ := idp.LogoutRequestURL(slo, "lou@example.org", "", "", false)
	if r := send(u); r.StatusCode < 400 || r.StatusCode >= 500 {
		t.Fatalf("unsigned LogoutRequest: %d %s", r.StatusCode, r.Body)
	}
	other := mustIdP(t, idp.EntityID)
	u, _ = other.LogoutRequestURL(slo, "lou@example.org", "", "", true)
	if r := send(u); r.StatusCode < 400 || r.StatusCode >= 500 {
		t.Fatalf("foreign-signed LogoutRequest: %d %s", r.StatusCode, r.Body)
	}
	if !alive(one) || !alive(two) || !alive(three) {
		t.Fatal("a refused LogoutRequest revoked a session")
	}

	// One SessionIndex: only that session ends; the answer goes back to the IdP.
	u, _ = idp.LogoutRequestURL(slo, "lou@example.org", "idx-1", "state-1", true)
	r := send(u)
	if r.StatusCode != http.StatusFound || !strings.HasPrefix(r.Header.Get("Location"), "https://idp.example/slo?SAMLResponse=") {
		t.Fatalf("LogoutRequest: %d %s %s", r.StatusCode, r.Header.Get("Location"), r.Body)
	}
	if alive(one) || !alive(two) || !alive(three) {
		t.Fatal("SessionIndex idx-1 should end exactly one session")
	}
	// No SessionIndex: every session of the NameID.
	u, _ = idp.LogoutRequestURL(slo, "lou@example.org", "", "", true)
	if r := send(u); r.StatusCode != http.StatusFound {
		t.Fatalf("LogoutRequest: %d %s", r.StatusCode, r.Body)
	}
	if alive(two) || alive(three) {
		t.Fatal("a LogoutRequest without SessionIndex should end every session of the NameID")
	}

	// SP-initiated: the browser logout of an SSO session continues to the IdP's SLO with
	// a signed LogoutRequest.
	tok := login("idx-4")
	r = s.srv.Do(t, testutil.Request{Method: "POST", Host: s.host, Path: "/logout",
		Header: http.Header{"Cookie": {"__Host-gatehouse=" + tok}, "Content-Type": {"application/x-www-form-urlencoded"}}})
	if r.StatusCode != 200 || !strings.Contains(string(r.Body), "https://idp.example/slo?SAMLRequest=") || !strings.Contains(string(r.Body), "Signature=") {
		t.Fatalf("logout: %d %s", r.StatusCode, r.Body)
	}
	if alive(tok) {
		t.Fatal("the session survived logout")
	}
}
