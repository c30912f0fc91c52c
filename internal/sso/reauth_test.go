package sso_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/sso/samltest"
)

// TestReauthAndTestMode: /sso/reauth sends ForceAuthn and accepts only a fresh
// authentication of the same user, stepping the session up; test mode reports what came
// back and creates no session.
func TestReauthAndTestMode(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t)
	s := newSite(t, srv, d)
	idp := mustIdP(t, "https://idp.example/reauth")
	c := s.connect(t, idp, nil)
	p := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
	r := s.post(t, c.Slug, response(t, idp, c, p.RequestID, "rita@example.org", nil), p.Relay, p.Browser)
	tok := sessionToken(r)
	if tok == "" {
		t.Fatalf("login: %d %s", r.StatusCode, r.Body)
	}
	// Another SSO user, for the mismatch case.
	p = s.start(t, "/sso/saml/"+c.Slug+"/login", "")
	if r := s.post(t, c.Slug, response(t, idp, c, p.RequestID, "oscar@example.org", nil), p.Relay, p.Browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("second user: %d", r.StatusCode)
	}

	// Stale AuthnInstant (the IdP reused an old login): refused.
	p = s.start(t, "/sso/reauth?return_to=/account", tok)
	if !strings.Contains(p.Request, `ForceAuthn="true"`) {
		t.Fatalf("no ForceAuthn in %s", p.Request)
	}
	before := s.ssoSessions(t)
	refused(t, s, s.post(t, c.Slug, response(t, idp, c, p.RequestID, "rita@example.org", func(r *samltest.Response) {
		r.Assertions[0].AuthnInstant = time.Now().Add(-30 * time.Minute)
	}), p.Relay, p.Browser), before, "not_fresh")
	// Someone else at the IdP: refused.
	p = s.start(t, "/sso/reauth?return_to=/account", tok)
	refused(t, s, s.post(t, c.Slug, response(t, idp, c, p.RequestID, "oscar@example.org", nil), p.Relay, p.Browser), before, "reauth_user_mismatch")
	// Fresh, same user: the session is stepped up with a new token.
	p = s.start(t, "/sso/reauth?return_to=/account", tok)
	r = s.post(t, c.Slug, response(t, idp, c, p.RequestID, "rita@example.org", nil), p.Relay, p.Browser)
	newTok := sessionToken(r)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/account" || newTok == "" || newTok == tok {
		t.Fatalf("reauth: %d %s %s", r.StatusCode, r.Header.Get("Location"), r.Body)
	}
	if r := s.call(t, "GET", "/api/v1/session", tok, nil); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("old token after step-up: %d", r.StatusCode)
	}
	if r := s.call(t, "GET", "/api/v1/session", newTok, nil); r.StatusCode != 200 {
		t.Fatalf("new token: %d", r.StatusCode)
	}
	// A password session cannot use /sso/reauth.
	if r := s.call(t, "GET", "/sso/reauth", s.admin, nil); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("sso reauth for a password session: %d", r.StatusCode)
	}

	// Test mode from the portal: a report, no session, attempt recorded.
	p = s.start(t, "/admin/sso/"+c.ID+"/test", s.admin)
	before = s.ssoSessions(t)
	r = s.post(t, c.Slug, response(t, idp, c, p.RequestID, "tess@example.org", func(r *samltest.Response) {
		r.Assertions[0].Attributes = map[string][]string{"email": {"tess@example.org"}, "department": {"QA"}}
	}), p.Relay, p.Browser)
	if r.StatusCode != 200 || !strings.Contains(string(r.Body), "tess@example.org") || !strings.Contains(string(r.Body), "department") ||
		!strings.Contains(string(r.Body), "passed every check") {
		t.Fatalf("test mode: %d %s", r.StatusCode, r.Body)
	}
	if sessionToken(r) != "" || s.ssoSessions(t) != before {
		t.Fatal("test mode created a session")
	}
	var users int
	_ = d.Admin.QueryRow(t.Context(), `SELECT count(*) FROM users WHERE tenant_id = $1 AND email = 'tess@example.org'`, s.t.ID).Scan(&users)
	if users != 0 {
		t.Fatal("test mode provisioned a user")
	}
	// A failing test shows which check failed.
	p = s.start(t, "/admin/sso/"+c.ID+"/test", s.admin)
	r = s.post(t, c.Slug, samltest.StripSignatures(response(t, idp, c, p.RequestID, "tess@example.org", nil)), p.Relay, p.Browser)
	if r.StatusCode != http.StatusForbidden || !strings.Contains(string(r.Body), "signature_missing") {
		t.Fatalf("failed test: %d %s", r.StatusCode, r.Body)
	}
}
