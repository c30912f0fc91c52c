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

// TestOtherConnectionsDomain: a second connection (say a partner's IdP) can neither link
// to nor pre-create accounts of a domain verified for the first connection.
func TestOtherConnectionsDomain(t *testing.T) {
	t.Parallel()
	dns, err := domainverify.StartServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dns.Close() })
	srv, d := newServer(t, testutil.WithConfig(func(c *config.Config) { c.DNSServer = dns.Addr }))
	s := newSite(t, srv, d)
	s.person(t, "carol@corp.example")
	corp := s.connect(t, mustIdP(t, "https://idp.example/corp"), map[string]any{"domains": []string{"corp.example"}})
	dns.SetTXT(corp.Domains[0].RecordName, corp.Domains[0].RecordValue)
	if r := s.call(t, "POST", "/api/v1/admin/sso/domains/corp.example/verify", s.admin, nil); r.StatusCode != 200 {
		t.Fatalf("verify: %d %s", r.StatusCode, r.Body)
	}
	partnerIdP := mustIdP(t, "https://idp.example/partner")
	partner := s.connect(t, partnerIdP, nil)
	for _, email := range []string{"carol@corp.example", "alice@corp.example"} {
		p := s.start(t, "/sso/saml/"+partner.Slug+"/login", "")
		before := s.ssoSessions(t)
		r := s.post(t, partner.Slug, response(t, partnerIdP, partner, p.RequestID, "attacker-"+email, func(r *samltest.Response) {
			r.Assertions[0].Attributes = map[string][]string{"email": {email}}
		}), p.Relay, p.Browser)
		refused(t, s, r, before, "link_refused_unverified_domain", "domain_of_other_connection")
	}
	var n int
	_ = d.Admin.QueryRow(context.Background(), `SELECT count(*) FROM users WHERE tenant_id = $1 AND email = 'alice@corp.example'`, s.t.ID).Scan(&n)
	if n != 0 {
		t.Fatal("the partner connection pre-created an account in corp.example")
	}
}

// TestHiddenWeakKey: a key the admin cannot see (in a non-SAML-2.0 IDPSSODescriptor) never
// verifies a response.
func TestHiddenWeakKey(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t)
	s := newSite(t, srv, d)
	idp := mustIdP(t, "https://idp.example/hidden")
	weak, err := samltest.NewIdPWithKeyBits(idp.EntityID, 1024)
	if err != nil {
		t.Fatal(err)
	}
	md := string(idp.Metadata("https://idp.example/sso", ""))
	weakMD := string(weak.Metadata("https://idp.example/sso", ""))
	// Graft the weak IdP's descriptor, marked SAML 1.1 only, into the real metadata.
	start := strings.Index(weakMD, "<md:IDPSSODescriptor")
	end := strings.Index(weakMD, "</md:IDPSSODescriptor>") + len("</md:IDPSSODescriptor>")
	if start < 0 || end < start {
		t.Fatalf("unexpected metadata shape: %s", weakMD)
	}
	extra := strings.Replace(weakMD[start:end], "urn:oasis:names:tc:SAML:2.0:protocol", "urn:oasis:names:tc:SAML:1.1:protocol", 1)
	md = strings.Replace(md, "</md:EntityDescriptor>", extra+"</md:EntityDescriptor>", 1)
	c := s.createConn(t, map[string]any{"name": "Hidden", "idp_metadata_xml": md})
	if len(c.IdP.Certificates) != 1 {
		t.Fatalf("certificates shown: %d", len(c.IdP.Certificates))
	}
	p := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
	before := s.ssoSessions(t)
	refused(t, s, s.post(t, c.Slug, response(t, weak, c, p.RequestID, "x@example.org", nil), p.Relay, p.Browser), before,
		"untrusted_certificate", "signature_invalid")
}

// TestPortalListRenders: the connections page renders with connections in it.
func TestPortalListRenders(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t)
	s := newSite(t, srv, d)
	c := s.connect(t, mustIdP(t, "https://idp.example/list"), nil)
	r := s.call(t, "GET", "/admin/sso", s.admin, nil)
	if r.StatusCode != http.StatusOK || !strings.Contains(string(r.Body), "/admin/sso/"+c.ID) {
		t.Fatalf("/admin/sso: %d %s", r.StatusCode, r.Body)
	}
	// The failed-create page renders too.
	r = s.call(t, "POST", "/admin/sso", s.admin, "name=Broken&idp_metadata_xml=nope", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(r.Body), "could not be read") {
		t.Fatalf("failed create: %d %s", r.StatusCode, r.Body)
	}
}

// TestSSOStartRateLimit: one address cannot fill the request table.
func TestSSOStartRateLimit(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t)
	s := newSite(t, srv, d)
	c := s.connect(t, mustIdP(t, "https://idp.example/limit"), nil)
	limited := false
	for i := 0; i < 70 && !limited; i++ {
		r := s.call(t, "GET", "/sso/saml/"+c.Slug+"/login", "", nil, http.Header{"X-Forwarded-For": {"192.0.2.77"}})
		limited = r.StatusCode == http.StatusTooManyRequests
	}
	if !limited {
		t.Fatal("70 starts from one address in a minute were all accepted")
	}
}
