package sso_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/domainverify"
	"github.com/gatehouse-id/gatehouse/internal/sso/samltest"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestDomainsDiscoveryEnforcement: a real DNS server on loopback answers the TXT lookup;
// discovery routes the domain; enforcement turns password login, signup and reset into
// sso_required; linking an existing password account needs the verified domain; groups
// map to roles.
func TestDomainsDiscoveryEnforcement(t *testing.T) {
	t.Parallel()
	dns, err := domainverify.StartServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dns.Close() })
	srv, d := newServer(t, testutil.WithConfig(func(c *config.Config) { c.DNSServer = dns.Addr }))
	s := newSite(t, srv, d)
	s.person(t, "carol@corp.example") // an existing password account
	idp := mustIdP(t, "https://idp.example/corp")
	c := s.connect(t, idp, map[string]any{"domains": []string{"Corp.Example."}, "enforce": true,
		"role_mapping": map[string]string{"gatehouse-admins": "admin"}})
	if len(c.Domains) != 1 || c.Domains[0].Domain != "corp.example" || c.Domains[0].Verified {
		t.Fatalf("domains: %+v", c.Domains)
	}
	dom := c.Domains[0]
	if dom.RecordName != "_gatehouse.corp.example" || !strings.HasPrefix(dom.RecordValue, "gatehouse-verification=") {
		t.Fatalf("TXT record: %+v", dom)
	}

	// Discovery routes the domain even before verification; other domains use passwords.
	disc := func(email string) (string, string) {
		r := s.call(t, "POST", "/api/v1/sso/discover", "", map[string]string{"email": email})
		var b struct {
			Method      string `json:"method"`
			RedirectURL string `json:"redirect_url"`
		}
		if r.StatusCode != 200 {
			t.Fatalf("discover: %d %s", r.StatusCode, r.Body)
		}
		r.JSON(t, &b)
		return b.Method, b.RedirectURL
	}
	if m, u := disc("dave@corp.example"); m != "saml" || !strings.Contains(u, "/sso/saml/"+c.Slug+"/login") {
		t.Fatalf("discover corp: %s %s", m, u)
	}
	if m, _ := disc("eve@elsewhere.example"); m != "password" {
		t.Fatalf("discover other: %s", m)
	}
	// Enforcement needs verification: until then, password login still works.
	if r := s.call(t, "POST", "/api/v1/login", "", map[string]string{"email": "carol@corp.example", "password": pw}); r.StatusCode != 200 {
		t.Fatalf("login before verification: %d %s", r.StatusCode, r.Body)
	}
	// Linking carol's password account is refused while the domain is unverified.
	p := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
	before := s.ssoSessions(t)
	refused(t, s, s.post(t, c.Slug, response(t, idp, c, p.RequestID, "carol-idp-id", func(r *samltest.Response) {
		r.Assertions[0].Attributes = map[string][]string{"email": {"carol@corp.example"}}
	}), p.Relay, p.Browser), before, "link_refused_unverified_domain")

	// Wrong record, then the right one.
	dns.SetTXT("_gatehouse.corp.example", "something-else")
	if r := s.call(t, "POST", "/api/v1/admin/sso/domains/corp.example/verify", s.admin, nil); r.StatusCode != 400 || r.ErrorCode() != "domain_not_verified" {
		t.Fatalf("verify with a wrong record: %d %s", r.StatusCode, r.Body)
	}
	dns.SetTXT("_gatehouse.corp.example", "v=spf1 -all", dom.RecordValue)
	if r := s.call(t, "POST", "/api/v1/admin/sso/domains/corp.example/verify", s.admin, nil); r.StatusCode != 200 || !strings.Contains(string(r.Body), `"verified":true`) {
		t.Fatalf("verify: %d %s", r.StatusCode, r.Body)
	}

	// Enforced: password login, signup and reset answer sso_required with the redirect.
	for _, tc := range []struct {
		path string
		body map[string]string
	}{
		{"/api/v1/login", map[string]string{"email": "carol@corp.example", "password": pw}},
		{"/api/v1/signup", map[string]string{"email": "new@corp.example", "password": "a much longer passphrase here"}},
		{"/api/v1/password/forgot", map[string]string{"email": "carol@corp.example"}},
	} {
		r := s.call(t, "POST", tc.path, "", tc.body)
		if r.StatusCode != http.StatusConflict || r.ErrorCode() != "sso_required" || !strings.Contains(string(r.Body), "/sso/saml/"+c.Slug+"/login") {
			t.Fatalf("%s: %d %s", tc.path, r.StatusCode, r.Body)
		}
	}
	// Other domains are untouched.
	if r := s.call(t, "POST", "/api/v1/password/forgot", "", map[string]string{"email": "eve@elsewhere.example"}); r.StatusCode != http.StatusAccepted {
		t.Fatalf("forgot other domain: %d", r.StatusCode)
	}
	// The login page sends the enforced address to the IdP.
	r := s.srv.Do(t, testutil.Request{Method: "POST", Host: s.host, Path: "/login", Body: "email=carol%40corp.example&password=x",
		Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}})
	if r.StatusCode != http.StatusOK || !strings.Contains(string(r.Body), `id="sso-continue" href="http://`+s.host) ||
		!strings.Contains(string(r.Body), "/sso/saml/"+c.Slug+"/login") {
		t.Fatalf("login page: %d %s", r.StatusCode, r.Body)
	}

	// Now the SSO identity links to carol's existing account.
	var carolID string
	_ = d.Admin.QueryRow(context.Background(), `SELECT id FROM users WHERE tenant_id = $1 AND email = 'carol@corp.example'`, s.t.ID).Scan(&carolID)
	p = s.start(t, "/sso/saml/"+c.Slug+"/login", "")
	rr := s.post(t, c.Slug, response(t, idp, c, p.RequestID, "carol-idp-id", func(r *samltest.Response) {
		r.Assertions[0].Attributes = map[string][]string{"email": {"carol@corp.example"}}
	}), p.Relay, p.Browser)
	if rr.StatusCode != http.StatusSeeOther {
		t.Fatalf("linked login: %d %s (audit %s)", rr.StatusCode, rr.Body, s.lastFailure(t))
	}
	who := s.call(t, "GET", "/api/v1/session", sessionToken(rr), nil)
	if !strings.Contains(string(who.Body), carolID) {
		t.Fatalf("linked session is not carol's: %s", who.Body)
	}

	// JIT with a group mapped to admin: the new user can use the admin API.
	p = s.start(t, "/sso/saml/"+c.Slug+"/login", "")
	rr = s.post(t, c.Slug, response(t, idp, c, p.RequestID, "frank@corp.example", func(r *samltest.Response) {
		r.Assertions[0].Attributes = map[string][]string{"email": {"frank@corp.example"}, "groups": {"staff", "gatehouse-admins"}}
	}), p.Relay, p.Browser)
	if rr.StatusCode != http.StatusSeeOther {
		t.Fatalf("JIT: %d %s", rr.StatusCode, rr.Body)
	}
	if r := s.call(t, "GET", "/api/v1/admin/users", sessionToken(rr), nil); r.StatusCode != 200 {
		t.Fatalf("mapped admin role: %d %s", r.StatusCode, r.Body)
	}
	var verified bool
	_ = d.Admin.QueryRow(context.Background(), `SELECT email_verified_at IS NOT NULL FROM users WHERE tenant_id = $1 AND email = 'frank@corp.example'`, s.t.ID).Scan(&verified)
	if !verified {
		t.Fatal("a JIT user of a verified domain should have a verified address")
	}

	// JIT off: an unknown identity is refused.
	if r := s.call(t, "PATCH", "/api/v1/admin/sso/connections/"+c.ID, s.admin, map[string]any{"jit": false}); r.StatusCode != 200 {
		t.Fatalf("patch: %d", r.StatusCode)
	}
	p = s.start(t, "/sso/saml/"+c.Slug+"/login", "")
	before = s.ssoSessions(t)
	refused(t, s, s.post(t, c.Slug, response(t, idp, c, p.RequestID, "grace@corp.example", nil), p.Relay, p.Browser), before, "jit_disabled")
}
