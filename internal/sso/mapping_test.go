package sso_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse-id/gatehouse/internal/sso"
	"github.com/gatehouse-id/gatehouse/internal/sso/samltest"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestCorruptMapping: a stored attribute or role mapping that does not read back as one
// the API accepts (written behind the API's back) never falls back to the default
// mapping. Every sign-in is refused with corrupt_mapping in the attempt trace and the
// audit log, the admin sees the problem on the connection, metadata is still served, and
// saving the mappings again repairs the connection.
func TestCorruptMapping(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t)
	s := newSite(t, srv, d)
	idp := mustIdP(t, "https://idp.example/mapping-"+s.t.Slug)
	const goodAttrs, goodRoles = `{"email": "mail"}`, `{"Admins": "admin"}`
	c := s.connect(t, idp, map[string]any{"attribute_mapping": map[string]string{"email": "mail"}, "role_mapping": map[string]string{"Admins": "admin"}})
	signIn := func(t *testing.T, email string) *testutil.Response {
		t.Helper()
		p := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
		doc := response(t, idp, c, p.RequestID, "nameid-"+email, func(r *samltest.Response) {
			r.Assertions[0].Attributes = map[string][]string{"mail": {email}, "groups": {"Admins"}}
		})
		return s.post(t, c.Slug, doc, p.Relay, p.Browser)
	}

	cases := []struct {
		name, attrs, roles, want string
	}{
		{"attribute mapping of the wrong type", `{"email": 42}`, goodRoles, "attribute mapping cannot be read"},
		{"unknown attribute mapping field", `{"emial": "mail"}`, goodRoles, `unknown field "emial"`},
		{"attribute name too long", `{"email": "` + strings.Repeat("m", 300) + `"}`, goodRoles, "at most 256 characters"},
		{"role mapping of the wrong type", goodAttrs, `{"Admins": ["admin"]}`, "role mapping cannot be read"},
		{"role mapping to no role", goodAttrs, `{"Admins": "root"}`, "role mapping is not valid"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.setMappings(t, c.ID, tc.attrs, tc.roles)
			email := fmt.Sprintf("case%d@example.org", i)
			sessions := s.ssoSessions(t)

			r := signIn(t, email)
			if r.StatusCode != http.StatusForbidden || sessionToken(r) != "" || r.Header.Get("X-Gatehouse-SSO-Reference") == "" {
				t.Fatalf("ACS: %d %s", r.StatusCode, r.Body)
			}
			if got := s.lastFailure(t); got != "corrupt_mapping" {
				t.Fatalf("audit reason %q, want corrupt_mapping", got)
			}
			last := s.attempts(t, c.ID)[0]
			if last.Success || last.Reason != "corrupt_mapping" || last.Report.Reason != "corrupt_mapping" {
				t.Fatalf("attempt: %+v", last)
			}
			wantSteps := []string{"decode", "xml_shape", "request", "signature_and_conditions", "mapping"}
			if diff := cmp.Diff(wantSteps, stepNames(last.Report)); diff != "" {
				t.Fatalf("trace steps (-want +got):\n%s", diff)
			}
			if st := last.Report.Steps[len(wantSteps)-1]; st.OK || !strings.Contains(st.Detail, tc.want) {
				t.Fatalf("mapping step %+v, want a failure naming %q", st, tc.want)
			}
			if last.Report.NameID != "nameid-"+email || last.Report.Email != "" {
				t.Fatalf("report identity: NameID %q, email %q (no email may be claimed without the mapping)", last.Report.NameID, last.Report.Email)
			}
			if got := s.ssoSessions(t); got != sessions {
				t.Fatalf("%d new sessions", got-sessions)
			}
			if got := s.countRows(t, `SELECT count(*) FROM users WHERE tenant_id = $1 AND lower(email) = $2`, email); got != 0 {
				t.Fatal("a user was provisioned with a corrupt mapping")
			}

			// The admin sees it on the connection (API and portal list).
			v := s.connView(t, c.ID)
			if v.Status != "mapping_corrupt" || !strings.Contains(v.MappingError, tc.want) {
				t.Fatalf("connection status %q, mapping_error %q", v.Status, v.MappingError)
			}
			if page := s.call(t, "GET", "/admin/sso", s.admin, nil); page.StatusCode != 200 || !strings.Contains(string(page.Body), "Mapping unreadable — sign-ins refused") {
				t.Fatalf("portal list: %d, status not shown", page.StatusCode)
			}
			// Nothing else depends on the mapping.
			if md := s.call(t, "GET", "/sso/saml/"+c.Slug+"/metadata", "", nil); md.StatusCode != 200 {
				t.Fatalf("SP metadata: %d", md.StatusCode)
			}
		})
	}

	t.Run("saved again", func(t *testing.T) {
		s.setMappings(t, c.ID, `{"email": 42}`, goodRoles)
		r := s.call(t, "PATCH", "/api/v1/admin/sso/connections/"+c.ID, s.admin, map[string]any{
			"attribute_mapping": map[string]string{"email": "mail"}, "role_mapping": map[string]string{"Admins": "admin"}})
		if r.StatusCode != 200 {
			t.Fatalf("PATCH: %d %s", r.StatusCode, r.Body)
		}
		if v := s.connView(t, c.ID); v.Status != "active" || v.MappingError != "" {
			t.Fatalf("after saving: status %q, mapping_error %q", v.Status, v.MappingError)
		}
		const email = "repaired@example.org"
		if r := signIn(t, email); r.StatusCode != http.StatusSeeOther || sessionToken(r) == "" {
			t.Fatalf("ACS after the repair: %d %s", r.StatusCode, r.Body)
		}
		id := s.userID(t, email)
		if got := s.countRows(t, `SELECT count(*) FROM role_bindings WHERE tenant_id = $1 AND user_id = $2 AND role = 'admin'`, id); got != 1 {
			t.Fatal("the repaired role mapping did not apply")
		}
	})
}

// setMappings writes a connection's mappings directly, as the superuser: what a bad
// migration or a hand edit would leave behind (updated_at moves, as any change does).
func (s *site) setMappings(t testing.TB, connID, attrs, roles string) {
	t.Helper()
	_, err := s.d.Admin.Exec(context.Background(), `UPDATE sso_connections SET attribute_mapping = $3::jsonb, role_mapping = $4::jsonb,
		updated_at = clock_timestamp() WHERE tenant_id = $1 AND id = $2`, s.t.ID, connID, attrs, roles)
	if err != nil {
		t.Fatal(err)
	}
}

// connView is the admin API's view of a connection.
func (s *site) connView(t testing.TB, id string) sso.Connection {
	t.Helper()
	r := s.call(t, "GET", "/api/v1/admin/sso/connections/"+id, s.admin, nil)
	if r.StatusCode != 200 {
		t.Fatalf("get connection: %d %s", r.StatusCode, r.Body)
	}
	var b struct{ Connection sso.Connection }
	r.JSON(t, &b)
	return b.Connection
}
