package sso_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/sso/samltest"
)

// TestSPInitiatedLogin: a full SP-initiated login against an IdP that shares no SAML code
// with the SP (goxmldsig signing directly), then the session works on the API.
func TestSPInitiatedLogin(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t)
	s := newSite(t, srv, d)
	idp := mustIdP(t, "https://idp.example/"+s.t.Slug)
	c := s.connect(t, idp, map[string]any{"domains": []string{"example.org"}})
	if !strings.HasSuffix(c.SPEntityID, "/sso/saml/"+c.Slug+"/metadata") || !strings.HasSuffix(c.ACSURL, "/sso/saml/"+c.Slug+"/acs") {
		t.Fatalf("SP URLs: %+v", c)
	}
	// SP metadata is served at the entity id.
	md := s.call(t, "GET", "/sso/saml/"+c.Slug+"/metadata", "", nil)
	if md.StatusCode != 200 || !strings.Contains(string(md.Body), c.ACSURL) || !strings.Contains(string(md.Body), `WantAssertionsSigned="true"`) ||
		!strings.Contains(string(md.Body), "X509Certificate") {
		t.Fatalf("SP metadata: %d %s", md.StatusCode, md.Body)
	}

	p := s.start(t, "/sso/saml/"+c.Slug+"/login?return_to=/account", "")
	doc := response(t, idp, c, p.RequestID, "alice@example.org", func(r *samltest.Response) {
		r.Assertions[0].Attributes = map[string][]string{"email": {"alice@example.org"}, "firstName": {"Alice"}, "lastName": {"Liddell"}}
	})
	r := s.post(t, c.Slug, doc, p.Relay, p.Browser)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/account" {
		t.Fatalf("ACS: %d %s %s", r.StatusCode, r.Header.Get("Location"), r.Body)
	}
	tok := sessionToken(r)
	if tok == "" {
		t.Fatal("no session cookie")
	}
	who := s.call(t, "GET", "/api/v1/session", tok, nil)
	if who.StatusCode != 200 || !strings.Contains(string(who.Body), "alice@example.org") || !strings.Contains(string(who.Body), `"saml"`) {
		t.Fatalf("whoami: %d %s", who.StatusCode, who.Body)
	}
	var name string
	if err := d.Admin.QueryRow(context.Background(), `SELECT name FROM users WHERE tenant_id = $1 AND email = 'alice@example.org'`, s.t.ID).Scan(&name); err != nil || name != "Alice Liddell" {
		t.Fatalf("JIT user name %q: %v", name, err)
	}

	// Second login: same (connection, NameID) → same user, no second account.
	p2 := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
	r2 := s.post(t, c.Slug, response(t, idp, c, p2.RequestID, "alice@example.org", nil), p2.Relay, p2.Browser)
	if r2.StatusCode != http.StatusSeeOther {
		t.Fatalf("second login: %d %s", r2.StatusCode, r2.Body)
	}
	var users int
	_ = d.Admin.QueryRow(context.Background(), `SELECT count(*) FROM users WHERE tenant_id = $1 AND email = 'alice@example.org'`, s.t.ID).Scan(&users)
	if users != 1 {
		t.Fatalf("%d users for one identity", users)
	}
	// The attempt trace shows both successes.
	at := s.call(t, "GET", "/api/v1/admin/sso/connections/"+c.ID+"/attempts", s.admin, nil)
	if at.StatusCode != 200 || strings.Count(string(at.Body), `"success":true`) != 2 {
		t.Fatalf("attempts: %d %s", at.StatusCode, at.Body)
	}
}

// TestInvitationAndUserList: an open invitation is accepted by the invitee's first SSO
// sign-in (its role applies); the admin user list shows and filters SSO users.
func TestInvitationAndUserList(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t)
	s := newSite(t, srv, d)
	idp := mustIdP(t, "https://idp.example/invites")
	c := s.connect(t, idp, nil)
	if r := s.call(t, "POST", "/api/v1/admin/invitations", s.admin, map[string]string{"email": "ivan@example.org", "role": "admin"}); r.StatusCode != 201 && r.StatusCode != 200 {
		t.Fatalf("invite: %d %s", r.StatusCode, r.Body)
	}
	p := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
	r := s.post(t, c.Slug, response(t, idp, c, p.RequestID, "ivan@example.org", nil), p.Relay, p.Browser)
	tok := sessionToken(r)
	if tok == "" {
		t.Fatalf("login: %d %s", r.StatusCode, r.Body)
	}
	if r := s.call(t, "GET", "/api/v1/admin/users", tok, nil); r.StatusCode != 200 {
		t.Fatalf("the invitation's admin role did not apply: %d %s", r.StatusCode, r.Body)
	}
	var open int
	_ = d.Admin.QueryRow(t.Context(), `SELECT count(*) FROM invitations WHERE tenant_id = $1 AND accepted_at IS NULL`, s.t.ID).Scan(&open)
	if open != 0 {
		t.Fatal("the invitation is still open")
	}
	var list struct {
		Users []struct {
			Email string   `json:"email"`
			SSO   []string `json:"sso"`
		} `json:"users"`
	}
	s.call(t, "GET", "/api/v1/admin/users?sso=true", s.admin, nil).JSON(t, &list)
	if len(list.Users) != 1 || list.Users[0].Email != "ivan@example.org" || len(list.Users[0].SSO) != 1 || list.Users[0].SSO[0] != c.Slug {
		t.Fatalf("SSO users: %+v", list.Users)
	}
	s.call(t, "GET", "/api/v1/admin/users?sso=false", s.admin, nil).JSON(t, &list)
	for _, u := range list.Users {
		if u.Email == "ivan@example.org" {
			t.Fatal("sso=false lists an SSO user")
		}
	}
	if page := s.call(t, "GET", "/admin/users?sso=true", s.admin, nil); page.StatusCode != 200 || !strings.Contains(string(page.Body), "ivan@example.org") {
		t.Fatalf("portal users filter: %d", page.StatusCode)
	}
}
