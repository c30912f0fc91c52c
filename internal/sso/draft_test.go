package sso_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/sso/samltest"
)

// TestDraftConnection: a connection created by name alone is a draft. Its SP values and
// SP metadata exist at once (the admin gives them to the IdP first); it cannot be turned
// on, tested or used for sign-in until the IdP's metadata is set (409
// idp_metadata_missing), and the database refuses an enabled draft too. Once the
// metadata is given it stays off until enabled; then sign-in works.
func TestDraftConnection(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t)
	s := newSite(t, srv, d)

	r := s.call(t, "POST", "/api/v1/admin/sso/connections", s.admin, map[string]any{"name": "Okta draft", "provider": "okta", "enabled": true})
	if r.StatusCode != http.StatusConflict || r.ErrorCode() != "idp_metadata_missing" {
		t.Fatalf("create an enabled draft: %d %s", r.StatusCode, r.Body)
	}
	c := s.createConn(t, map[string]any{"name": "Okta draft", "provider": "okta"})
	if c.Status != "draft" || c.IdP.EntityID != "" || c.Slug != "okta-draft" {
		t.Fatalf("draft: %+v", c)
	}
	for _, v := range []string{c.ACSURL, c.SPEntityID, c.SPMetadataURL} {
		if !strings.Contains(v, "/sso/saml/okta-draft/") {
			t.Fatalf("SP value %q", v)
		}
	}
	var raw struct {
		Connection struct {
			Enabled bool `json:"enabled"`
		}
	}
	s.call(t, "GET", "/api/v1/admin/sso/connections/"+c.ID, s.admin, nil).JSON(t, &raw)
	if raw.Connection.Enabled {
		t.Fatal("a draft must be disabled")
	}

	md := s.call(t, "GET", "/sso/saml/"+c.Slug+"/metadata", "", nil)
	if md.StatusCode != 200 || !strings.Contains(string(md.Body), `entityID="`+c.SPEntityID+`"`) ||
		!strings.Contains(string(md.Body), `Location="`+c.ACSURL+`"`) {
		t.Fatalf("SP metadata of a draft: %d %s", md.StatusCode, md.Body)
	}

	r = s.call(t, "PATCH", "/api/v1/admin/sso/connections/"+c.ID, s.admin, map[string]any{"enabled": true})
	if r.StatusCode != http.StatusConflict || r.ErrorCode() != "idp_metadata_missing" {
		t.Fatalf("enable a draft: %d %s", r.StatusCode, r.Body)
	}
	for _, path := range []string{"/sso/saml/" + c.Slug + "/login"} {
		if r := s.call(t, "GET", path, "", nil); r.StatusCode != http.StatusConflict || r.ErrorCode() != "idp_metadata_missing" {
			t.Fatalf("GET %s of a draft: %d %s", path, r.StatusCode, r.Body)
		}
	}
	if r := s.call(t, "GET", "/admin/sso/"+c.ID+"/test", s.admin, nil); r.StatusCode != http.StatusConflict {
		t.Fatalf("test a draft: %d %s", r.StatusCode, r.Body)
	}
	// An answer posted to a draft's ACS is refused without a session.
	idp := mustIdP(t, "https://idp.example/draft-"+s.t.Slug)
	if r := s.post(t, c.Slug, response(t, idp, c, "", "ada@example.org", nil), "", ""); r.StatusCode != http.StatusForbidden || sessionToken(r) != "" {
		t.Fatalf("ACS of a draft: %d %s", r.StatusCode, r.Body)
	}
	// The database holds the rule too.
	if _, err := d.Admin.Exec(context.Background(), `UPDATE sso_connections SET enabled = true WHERE id = $1`, c.ID); err == nil ||
		!strings.Contains(err.Error(), "sso_connections_draft_check") {
		t.Fatalf("enabled draft in the database: %v", err)
	}

	// Step 2: the IdP's metadata. The connection stays off until enabled.
	r = s.call(t, "PATCH", "/api/v1/admin/sso/connections/"+c.ID, s.admin,
		map[string]any{"idp_metadata_xml": string(idp.Metadata("https://idp.example/sso", ""))})
	if r.StatusCode != 200 {
		t.Fatalf("set metadata: %d %s", r.StatusCode, r.Body)
	}
	if got := s.getConn(t, c.ID); got.Status != "disabled" || got.IdP.EntityID != idp.EntityID {
		t.Fatalf("after metadata: %+v", got)
	}
	if r := s.call(t, "GET", "/sso/saml/"+c.Slug+"/login", "", nil); r.StatusCode != http.StatusForbidden || r.ErrorCode() != "sso_disabled" {
		t.Fatalf("login before enabling: %d %s", r.StatusCode, r.Body)
	}
	if r := s.call(t, "PATCH", "/api/v1/admin/sso/connections/"+c.ID, s.admin, map[string]any{"enabled": true}); r.StatusCode != 200 {
		t.Fatalf("enable: %d %s", r.StatusCode, r.Body)
	}
	c = s.getConn(t, c.ID)
	p := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
	doc := response(t, idp, c, p.RequestID, "ada@example.org", func(r *samltest.Response) {
		r.Assertions[0].Attributes = map[string][]string{"email": {"ada@example.org"}}
	})
	if r := s.post(t, c.Slug, doc, p.Relay, p.Browser); r.StatusCode != http.StatusSeeOther || sessionToken(r) == "" {
		t.Fatalf("sign-in after enabling: %d %s", r.StatusCode, r.Body)
	}
}

// TestJITRoleGrantAudited: the role a user gets at JIT provisioning is recorded as a role
// assignment (role.assigned, as an admin's), with the connection as the actor and where
// the role came from.
func TestJITRoleGrantAudited(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t)
	s := newSite(t, srv, d)
	idp := mustIdP(t, "https://idp.example/jit-audit-"+s.t.Slug)
	c := s.connect(t, idp, map[string]any{"role_mapping": map[string]string{"Admins": "admin"}})
	for _, tc := range []struct {
		email, group, role, source string
	}{
		{"grace@example.org", "Admins", "admin", "group_mapping"},
		{"linus@example.org", "Staff", "member", "default"},
	} {
		p := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
		doc := response(t, idp, c, p.RequestID, tc.email, func(r *samltest.Response) {
			r.Assertions[0].Attributes = map[string][]string{"email": {tc.email}, "groups": {tc.group}}
		})
		if r := s.post(t, c.Slug, doc, p.Relay, p.Browser); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in %s: %d %s", tc.email, r.StatusCode, r.Body)
		}
		var actorLabel string
		var actorID *string
		var details []byte
		err := d.Admin.QueryRow(context.Background(), `SELECT actor_label, actor_id::text, details FROM audit_events
			WHERE tenant_id = $1 AND action = 'role.assigned' AND subject_label = $2`, s.t.ID, tc.email).Scan(&actorLabel, &actorID, &details)
		if err != nil {
			t.Fatalf("role.assigned for %s: %v", tc.email, err)
		}
		var got struct {
			Roles        []string `json:"roles"`
			Source       string   `json:"source"`
			ConnectionID string   `json:"connection_id"`
		}
		if err := json.Unmarshal(details, &got); err != nil {
			t.Fatal(err)
		}
		if actorLabel != "sso connection "+c.Slug || actorID != nil || len(got.Roles) != 1 || got.Roles[0] != tc.role ||
			got.Source != tc.source || got.ConnectionID != c.ID {
			t.Fatalf("%s: actor %q %v, details %s", tc.email, actorLabel, actorID, details)
		}
	}
}
