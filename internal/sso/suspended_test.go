package sso_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// disabledMessage is what password sign-in says for a suspended account.
const disabledMessage = "This account is disabled. Contact your administrator."

// scimUser returns a SCIM client of a new directory of s and the SCIM id of the user with
// address email, found as IdPs find it (userName eq, in another case).
func scimUser(t *testing.T, s *site, email string) (func(method, path string, body any) map[string]any, string) {
	t.Helper()
	r := s.call(t, "POST", "/api/v1/admin/directories", s.admin, map[string]any{"name": "Okta " + email, "provider": "okta"})
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("create directory: %d %s", r.StatusCode, r.Body)
	}
	var dir struct{ Token string }
	r.JSON(t, &dir)
	scim := func(method, path string, body any) map[string]any {
		t.Helper()
		r := s.srv.Do(t, testutil.Request{Method: method, Host: s.host, Path: "/scim/v2" + path, Body: body,
			Header: http.Header{"Authorization": {"Bearer " + dir.Token}, "Content-Type": {"application/scim+json"}}})
		if r.StatusCode != http.StatusOK && r.StatusCode != http.StatusNoContent {
			t.Fatalf("%s %s: %d %s", method, path, r.StatusCode, r.Body)
		}
		var m map[string]any
		if len(r.Body) > 0 {
			if err := json.Unmarshal(r.Body, &m); err != nil {
				t.Fatal(err)
			}
		}
		return m
	}
	list := scim("GET", "/Users?filter="+url.QueryEscape(`userName eq "`+strings.ToUpper(email)+`"`), nil)
	res, _ := list["Resources"].([]any)
	if len(res) != 1 {
		t.Fatalf("userName look-up of %s: %v", email, list)
	}
	return scim, res[0].(map[string]any)["id"].(string)
}

// suspendBySCIM suspends the user with address email as an IdP does: PATCH active:false.
func suspendBySCIM(t *testing.T, s *site, email string) {
	t.Helper()
	scim, id := scimUser(t, s, email)
	u := scim("PATCH", "/Users/"+id, map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "Replace", "path": "active", "value": "False"}}})
	if u["active"] != false {
		t.Fatalf("after PATCH active:false: %v", u)
	}
}

// refusedAsDisabled checks an SSO answer for a suspended account: 403 with the password
// sign-in's code and sentence (a page for browsers, JSON for API clients), the attempt's
// reference, no session, and the reason in the audit log and in the connection's newest
// attempt (with the failed user step) under mode.
func refusedAsDisabled(t *testing.T, s *site, connID string, r *testutil.Response, html bool, sessionsBefore int, mode string) {
	t.Helper()
	ref := r.Header.Get("X-Gatehouse-SSO-Reference")
	if r.StatusCode != http.StatusForbidden || ref == "" {
		t.Fatalf("status %d (reference %q), want 403: %s", r.StatusCode, ref, r.Body)
	}
	body := string(r.Body)
	if html {
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, disabledMessage) ||
			!strings.Contains(body, "<code>account_disabled</code>") || !strings.Contains(body, ref) || strings.Contains(body, "Single sign-on did not work") {
			t.Fatalf("page for a suspended account: %s", body)
		}
	} else {
		var e struct {
			Error struct {
				Code    string
				Message string
				Details map[string]any
			}
		}
		if err := json.Unmarshal(r.Body, &e); err != nil {
			t.Fatalf("answer is not JSON: %s", body)
		}
		if e.Error.Code != "account_disabled" || e.Error.Message != disabledMessage || e.Error.Details["reference"] != ref {
			t.Fatalf("JSON answer for a suspended account: %s", body)
		}
	}
	if sessionToken(r) != "" || s.countRows(t, `SELECT count(*) FROM sessions WHERE tenant_id = $1`) != sessionsBefore {
		t.Fatal("a session was created for a suspended account")
	}
	if got := s.lastFailure(t); got != "account_disabled" {
		t.Fatalf("audit reason %q, want account_disabled", got)
	}
	var mode2 string
	if err := s.d.Admin.QueryRow(t.Context(), `SELECT mode FROM sso_attempts WHERE tenant_id = $1 AND reference = $2`, s.t.ID, ref).Scan(&mode2); err != nil || mode2 != mode {
		t.Fatalf("attempt %s: mode %q (%v), want %q", ref, mode2, err, mode)
	}
	a := s.attempts(t, connID)[0]
	last := a.Report.Steps[len(a.Report.Steps)-1]
	if a.Success || a.Reason != "account_disabled" || a.Report.Reason != "account_disabled" || last.Name != "user" || last.OK {
		t.Fatalf("attempt trace: %+v", a)
	}
}

// TestSAMLSuspendedAccount: a user the directory suspended (SCIM active:false) who signs
// in through SAML, or whose step-up answer arrives after the suspension, is told what
// password sign-in tells them (account_disabled), not the generic SSO failure page.
func TestSAMLSuspendedAccount(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t)
	s := newSite(t, srv, d)
	idp := mustIdP(t, "https://idp.example/suspended")
	c := s.connect(t, idp, nil)
	const email = "sam@example.org"
	p := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
	tok := sessionToken(s.post(t, c.Slug, response(t, idp, c, p.RequestID, email, nil), p.Relay, p.Browser))
	if tok == "" {
		t.Fatal("first sign-in (JIT) did not succeed")
	}
	stepUp := s.start(t, "/sso/reauth?return_to=/account", tok) // answered after the suspension

	suspendBySCIM(t, s, email)
	if r := s.call(t, "GET", "/api/v1/session", tok, nil); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("session after suspension: %d", r.StatusCode)
	}
	before := s.countRows(t, `SELECT count(*) FROM sessions WHERE tenant_id = $1`)
	post := func(p pending, accept string) *testutil.Response {
		t.Helper()
		h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {"https://idp.example"}, "Sec-Fetch-Site": {"cross-site"},
			"Cookie": {"__Host-gatehouse-saml=" + p.Browser}, "Accept": {accept}}
		return s.srv.Do(t, testutil.Request{Method: "POST", Host: s.host, Path: "/sso/saml/" + c.Slug + "/acs",
			Body: url.Values{"SAMLResponse": {b64(response(t, idp, c, p.RequestID, email, nil))}, "RelayState": {p.Relay}}.Encode(), Header: h})
	}
	t.Run("browser", func(t *testing.T) {
		p := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
		refusedAsDisabled(t, s, c.ID, post(p, "text/html,application/xhtml+xml"), true, before, "login")
	})
	t.Run("api", func(t *testing.T) {
		p := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
		refusedAsDisabled(t, s, c.ID, post(p, "application/json"), false, before, "login")
	})
	t.Run("step-up", func(t *testing.T) {
		refusedAsDisabled(t, s, c.ID, post(stepUp, "text/html"), true, before, "reauth")
	})
	// An account the directory deleted (the deletion lifecycle: pending_deletion) gets
	// password sign-in's account_pending_deletion the same way.
	t.Run("pending deletion", func(t *testing.T) {
		const gone = "gone@example.org"
		p := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
		if sessionToken(s.post(t, c.Slug, response(t, idp, c, p.RequestID, gone, nil), p.Relay, p.Browser)) == "" {
			t.Fatal("first sign-in (JIT) did not succeed")
		}
		scim, id := scimUser(t, s, gone)
		scim("DELETE", "/Users/"+id, nil)
		n := s.countRows(t, `SELECT count(*) FROM sessions WHERE tenant_id = $1`)
		p = s.start(t, "/sso/saml/"+c.Slug+"/login", "")
		r := s.srv.Do(t, testutil.Request{Method: "POST", Host: s.host, Path: "/sso/saml/" + c.Slug + "/acs",
			Body: url.Values{"SAMLResponse": {b64(response(t, idp, c, p.RequestID, gone, nil))}, "RelayState": {p.Relay}}.Encode(),
			Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {"https://idp.example"}, "Sec-Fetch-Site": {"cross-site"},
				"Cookie": {"__Host-gatehouse-saml=" + p.Browser}, "Accept": {"application/json"}}})
		var e struct {
			Error struct {
				Code    string
				Details map[string]any
			}
		}
		_ = json.Unmarshal(r.Body, &e)
		if r.StatusCode != http.StatusForbidden || e.Error.Code != "account_pending_deletion" || e.Error.Details["reference"] != r.Header.Get("X-Gatehouse-SSO-Reference") ||
			e.Error.Details["resend_url"] == nil || sessionToken(r) != "" || s.countRows(t, `SELECT count(*) FROM sessions WHERE tenant_id = $1`) != n ||
			s.lastFailure(t) != "account_deletion" {
			t.Fatalf("sign-in of an account pending deletion: %d %s (reason %q)", r.StatusCode, r.Body, s.lastFailure(t))
		}
	})
}

// TestOIDCSuspendedAccount: the same for an OIDC connection, login and step-up.
func TestOIDCSuspendedAccount(t *testing.T) {
	t.Parallel()
	o := newOIDCSetup(t, nil)
	r, _ := o.login(t, "ada")
	tok := sessionToken(r)
	if tok == "" {
		t.Fatalf("first sign-in (JIT): %d %s", r.StatusCode, r.Body)
	}
	stepUp := o.begin(t, "/sso/reauth?return_to=/account", tok)
	o.signInAtIdP(t, &stepUp, "ada") // the IdP answers; the answer reaches Gatehouse after the suspension

	suspendBySCIM(t, o.site, "ada@corp.example")
	if r := o.call(t, "GET", "/api/v1/session", tok, nil); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("session after suspension: %d", r.StatusCode)
	}
	before := o.countRows(t, `SELECT count(*) FROM sessions WHERE tenant_id = $1`)
	finish := func(f flight, accept string) *testutil.Response {
		t.Helper()
		h := http.Header{"Sec-Fetch-Site": {"cross-site"}, "Cookie": {"__Host-gatehouse-saml=" + f.Browser}, "Accept": {accept}}
		return o.srv.Do(t, testutil.Request{Method: "GET", Host: o.host, Path: f.Callback.Path + "?" + f.Callback.RawQuery, Header: h})
	}
	t.Run("browser", func(t *testing.T) {
		f := o.begin(t, "/sso/oidc/"+o.conn.Slug+"/login?return_to=/account", "")
		o.signInAtIdP(t, &f, "ada")
		refusedAsDisabled(t, o.site, o.conn.ID, finish(f, "text/html"), true, before, "login")
	})
	t.Run("api", func(t *testing.T) {
		f := o.begin(t, "/sso/oidc/"+o.conn.Slug+"/login?return_to=/account", "")
		o.signInAtIdP(t, &f, "ada")
		refusedAsDisabled(t, o.site, o.conn.ID, finish(f, "application/json"), false, before, "login")
	})
	t.Run("step-up", func(t *testing.T) {
		refusedAsDisabled(t, o.site, o.conn.ID, finish(stepUp, "text/html"), true, before, "reauth")
	})
}
