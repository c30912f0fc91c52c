package sso_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/sso"
	"github.com/gatehouse-id/gatehouse/internal/sso/samltest"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestConnectionCacheAcrossNodes: node B caches the connection its ACS used; the IdP's
// metadata (a new signing certificate) changes through node A; node B then accepts a
// response signed with the new key and refuses one signed with the old key, at once
// (the row trigger's NOTIFY drops B's entry), not when the cache entry would expire.
func TestConnectionCacheAcrossNodes(t *testing.T) {
	t.Parallel()
	nodeA, d := newServer(t)
	// One deployment: one public origin (the SP URLs) and one secret key (the SP keys).
	nodeB := testutil.NewServer(t, d, testutil.WithConfig(func(c *config.Config) {
		c.TrustedProxies, _ = config.ParsePrefixes("127.0.0.1")
		c.PublicPort, c.SecretKey = nodeA.Port, nodeA.Config.SecretKey
	}))
	a := newSite(t, nodeA, d)
	b := &site{srv: nodeB, d: d, t: a.t, host: a.host, admin: a.admin, adminEmail: a.adminEmail}
	entity := "https://idp.example/cache-" + a.t.Slug
	oldIdP := mustIdP(t, entity)
	c := a.connect(t, oldIdP, nil)

	signIn := func(s *site, idp *samltest.IdP, who string) *testutil.Response {
		p := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
		return s.post(t, c.Slug, response(t, idp, c, p.RequestID, who, nil), p.Relay, p.Browser)
	}
	// Sign-ins on B until its cache holds the connection (the cache is on once B's
	// listener has proven itself).
	deadline := time.Now().Add(15 * time.Second)
	for !sso.ConnCached(nodeB.App.SSO, a.t.ID, c.Slug) {
		if r := signIn(b, oldIdP, "cache@example.org"); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in on node B with the current certificate: %d %s", r.StatusCode, r.Body)
		}
		if time.Now().After(deadline) {
			t.Fatal("node B never cached the connection")
		}
	}

	newIdP := mustIdP(t, entity) // same IdP, new signing key
	if r := a.call(t, "PATCH", "/api/v1/admin/sso/connections/"+c.ID, a.admin,
		map[string]any{"idp_metadata_xml": string(newIdP.Metadata("https://idp.example/sso", "https://idp.example/slo"))}); r.StatusCode != 200 {
		t.Fatalf("new metadata on node A: %d %s", r.StatusCode, r.Body)
	}
	// The notification travels to B's listener: allow it a moment, far less than the
	// cache entry's lifetime.
	var r *testutil.Response
	for end := time.Now().Add(3 * time.Second); ; {
		if r = signIn(b, newIdP, "cache@example.org"); r.StatusCode == http.StatusSeeOther || time.Now().After(end) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r.StatusCode != http.StatusSeeOther || sessionToken(r) == "" {
		t.Fatalf("node B refuses the new certificate after the change on node A: %d (reason %s)", r.StatusCode, b.lastFailure(t))
	}
	if r := signIn(b, oldIdP, "cache@example.org"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("node B still accepts the replaced certificate: %d", r.StatusCode)
	}
	if got := b.lastFailure(t); got != "untrusted_certificate" && got != "signature_invalid" {
		t.Fatalf("old certificate refused for %q", got)
	}
}
