package sso_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/gatehouse-id/gatehouse/internal/sso/samltest"
)

// TestCrossTenant: two tenants trust the same IdP (same entity id and certificate). A
// response made for tenant A's connection, posted to tenant B's ACS, is refused; users
// never cross tenants.
func TestCrossTenant(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t)
	a, b := newSite(t, srv, d), newSite(t, srv, d)
	idp := mustIdP(t, "https://shared-idp.example/entity")
	ca := a.connect(t, idp, map[string]any{"slug": "corp"})
	cb := b.connect(t, idp, map[string]any{"slug": "corp"})

	// A's response (audience and destination of A) with B's own pending request.
	pa := a.start(t, "/sso/saml/"+ca.Slug+"/login", "")
	pb := b.start(t, "/sso/saml/"+cb.Slug+"/login", "")
	forA := response(t, idp, ca, pb.RequestID, "mallory@example.org", nil)
	before := b.ssoSessions(t)
	refused(t, b, b.post(t, cb.Slug, forA, pb.Relay, pb.Browser), before, "destination_mismatch", "audience_mismatch")

	// A's response with A's relay state, delivered to B's ACS: the request is not B's.
	forA2 := response(t, idp, ca, pa.RequestID, "mallory@example.org", nil)
	refused(t, b, b.post(t, cb.Slug, forA2, pa.Relay, pa.Browser), before, "no_pending_request", "idp_initiated_disabled")

	// Right audience for B but the destination is A's ACS.
	pb2 := b.start(t, "/sso/saml/"+cb.Slug+"/login", "")
	mixed := response(t, idp, cb, pb2.RequestID, "mallory@example.org", func(r *samltest.Response) {
		r.Destination, r.Assertions[0].Recipient = ca.ACSURL, ca.ACSURL
	})
	refused(t, b, b.post(t, cb.Slug, mixed, pb2.Relay, pb2.Browser), before, "destination_mismatch")

	// The same person signs in at both: two users, one per tenant, each session only
	// valid on its own tenant host.
	pa3 := a.start(t, "/sso/saml/"+ca.Slug+"/login", "")
	ra := a.post(t, ca.Slug, response(t, idp, ca, pa3.RequestID, "sam@example.org", nil), pa3.Relay, pa3.Browser)
	pb3 := b.start(t, "/sso/saml/"+cb.Slug+"/login", "")
	rb := b.post(t, cb.Slug, response(t, idp, cb, pb3.RequestID, "sam@example.org", nil), pb3.Relay, pb3.Browser)
	if ra.StatusCode != http.StatusSeeOther || rb.StatusCode != http.StatusSeeOther {
		t.Fatalf("logins: %d %d", ra.StatusCode, rb.StatusCode)
	}
	var n int
	_ = d.Admin.QueryRow(context.Background(), `SELECT count(DISTINCT tenant_id) FROM users WHERE email = 'sam@example.org'`).Scan(&n)
	if n != 2 {
		t.Fatalf("users in %d tenants, want 2", n)
	}
	if r := b.call(t, "GET", "/api/v1/session", sessionToken(ra), nil); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("A's session on B: %d", r.StatusCode)
	}
}

// TestClockSkewBoundaries: the skew window (crewjam's MaxClockSkew) is honoured at both
// edges: inside by 20 s accepted, outside by 10 s refused.
func TestClockSkewBoundaries(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t)
	s := newSite(t, srv, d)
	idp := mustIdP(t, "https://idp.example/skew")
	c := s.connect(t, idp, nil)
	cases := []struct {
		name   string
		mut    func(r *samltest.Response)
		accept bool
		reason string
	}{
		{"NotOnOrAfter just inside the skew", func(r *samltest.Response) {
			at := time.Now().Add(-saml.MaxClockSkew + 20*time.Second)
			r.Assertions[0].NotOnOrAfter, r.Assertions[0].SubjectNotOnOrAfter = at, at
		}, true, ""},
		{"NotOnOrAfter just outside the skew", func(r *samltest.Response) {
			at := time.Now().Add(-saml.MaxClockSkew - 10*time.Second)
			r.Assertions[0].NotOnOrAfter, r.Assertions[0].SubjectNotOnOrAfter = at, at
		}, false, "expired"},
		{"NotBefore just inside the skew", func(r *samltest.Response) {
			r.Assertions[0].NotBefore = time.Now().Add(saml.MaxClockSkew - 20*time.Second)
		}, true, ""},
		{"NotBefore just outside the skew", func(r *samltest.Response) {
			r.Assertions[0].NotBefore = time.Now().Add(saml.MaxClockSkew + 10*time.Second)
		}, false, "not_yet_valid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
			before := s.ssoSessions(t)
			r := s.post(t, c.Slug, response(t, idp, c, p.RequestID, "clock@example.org", tc.mut), p.Relay, p.Browser)
			if tc.accept {
				if r.StatusCode != http.StatusSeeOther || sessionToken(r) == "" {
					t.Fatalf("refused: %d %s (audit %s)", r.StatusCode, r.Body, s.lastFailure(t))
				}
				return
			}
			refused(t, s, r, before, tc.reason)
		})
	}
}

// TestIdPInitiated: off by default; when on, unsolicited responses land on the default
// URL, are single-use (replay cache), must be fresh, and must not claim an InResponseTo.
func TestIdPInitiated(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t)
	s := newSite(t, srv, d)
	idp := mustIdP(t, "https://idp.example/unsolicited")
	c := s.connect(t, idp, map[string]any{"allow_idp_initiated": true, "default_redirect": "/account"})
	unsolicited := func(mut func(*samltest.Response)) []byte {
		return response(t, idp, c, "", "ivy@example.org", mut)
	}
	doc := unsolicited(nil)
	r := s.post(t, c.Slug, doc, "", "")
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/account" || sessionToken(r) == "" {
		t.Fatalf("IdP-initiated: %d %s %s", r.StatusCode, r.Header.Get("Location"), r.Body)
	}
	before := s.ssoSessions(t)
	refused(t, s, s.post(t, c.Slug, doc, "", ""), before, "replayed")
	// An IdP's RelayState that is not ours does not make it a different login.
	refused(t, s, s.post(t, c.Slug, doc, "https://app.example/after", ""), before, "replayed")
	stale := unsolicited(func(r *samltest.Response) {
		old := time.Now().Add(-5 * time.Minute)
		r.IssueInstant, r.Assertions[0].IssueInstant = old, old
		r.Assertions[0].NotOnOrAfter, r.Assertions[0].SubjectNotOnOrAfter = time.Now().Add(time.Hour), time.Now().Add(time.Hour)
	})
	refused(t, s, s.post(t, c.Slug, stale, "", ""), before, "stale_idp_initiated", "expired")
	claimed := unsolicited(func(r *samltest.Response) { r.InResponseTo, r.Assertions[0].InResponseTo = "_forged", "_forged" })
	refused(t, s, s.post(t, c.Slug, claimed, "", ""), before, "in_response_to_mismatch")

	// Turning it off refuses the next unsolicited response.
	off := false
	if r := s.call(t, "PATCH", "/api/v1/admin/sso/connections/"+c.ID, s.admin, map[string]any{"allow_idp_initiated": off}); r.StatusCode != 200 {
		t.Fatalf("patch: %d %s", r.StatusCode, r.Body)
	}
	refused(t, s, s.post(t, c.Slug, unsolicited(nil), "", ""), before, "idp_initiated_disabled")
}
