package sso_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/sso/oidctest"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestOIDCStepUpAndLogout: /sso/reauth of an OIDC-SSO session asks the IdP for
// prompt=login and max_age=0 and accepts only the same subject with a fresh auth_time,
// stepping the session up (method saml, as for SAML step-up); signing out sends the
// browser to the IdP's end_session_endpoint (RP-initiated logout).
func TestOIDCStepUpAndLogout(t *testing.T) {
	t.Parallel()
	o := newOIDCSetup(t, nil)
	r, _ := o.login(t, "ada")
	tok := sessionToken(r)
	if tok == "" {
		t.Fatalf("login: %d %s", r.StatusCode, r.Body)
	}
	reauth := func(t *testing.T, user string, tamper *oidctest.Tamper) *testutil.Response {
		t.Helper()
		f := o.begin(t, "/sso/reauth?return_to=/account", tok)
		if q := f.AuthURL.Query(); q.Get("prompt") != "login" || q.Get("max_age") != "0" {
			t.Fatalf("step-up request without prompt=login max_age=0: %s", f.AuthURL)
		}
		o.idp.SetTamper(tamper)
		defer o.idp.SetTamper(nil)
		o.signInAtIdP(t, &f, user)
		return o.finish(t, f.Callback, f.Browser, tok)
	}
	before := o.ssoSessionsOIDC(t)
	// Someone else at the IdP: refused.
	if r := reauth(t, "eve", nil); r.StatusCode != http.StatusForbidden || o.lastFailure(t) != "reauth_user_mismatch" {
		t.Fatalf("step-up as another subject: %d reason %q", r.StatusCode, o.lastFailure(t))
	}
	// The IdP reused an old authentication: refused.
	if r := reauth(t, "ada", &oidctest.Tamper{Claims: func(c map[string]any) { c["auth_time"] = time.Now().Add(-time.Hour).Unix() }}); r.StatusCode != http.StatusForbidden || o.lastFailure(t) != "not_fresh" {
		t.Fatalf("stale auth_time: %d reason %q", r.StatusCode, o.lastFailure(t))
	}
	// No auth_time at all: refused.
	if r := reauth(t, "ada", &oidctest.Tamper{Claims: func(c map[string]any) { delete(c, "auth_time") }}); r.StatusCode != http.StatusForbidden || o.lastFailure(t) != "not_fresh" {
		t.Fatalf("no auth_time: %d reason %q", r.StatusCode, o.lastFailure(t))
	}
	if r := o.call(t, "GET", "/api/v1/session", tok, nil); r.StatusCode != 200 {
		t.Fatalf("a refused step-up ended the session: %d", r.StatusCode)
	}
	// Fresh, same subject: the session is stepped up with a new token.
	r = reauth(t, "ada", nil)
	newTok := sessionToken(r)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/account" || newTok == "" || newTok == tok {
		t.Fatalf("step-up: %d %s %s", r.StatusCode, r.Header.Get("Location"), r.Body)
	}
	if o.ssoSessionsOIDC(t) != before {
		t.Fatal("step-up created a session instead of stepping this one up")
	}
	if r := o.call(t, "GET", "/api/v1/session", tok, nil); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("old token after step-up: %d", r.StatusCode)
	}
	var methods []string
	var authTime time.Time
	if err := o.d.Admin.QueryRow(context.Background(), `SELECT methods, auth_time FROM sessions WHERE tenant_id = $1 AND sso_connection_id = $2 AND revoked_at IS NULL`,
		o.t.ID, o.conn.ID).Scan(&methods, &authTime); err != nil {
		t.Fatal(err)
	}
	if time.Since(authTime) > time.Minute || !strings.Contains(strings.Join(methods, ","), "saml") {
		t.Fatalf("stepped-up session: methods %v auth_time %s", methods, authTime)
	}

	// Sign out: the browser continues to the IdP's end_session_endpoint.
	r = o.srv.Do(t, testutil.Request{Method: "POST", Host: o.host, Path: "/logout", Body: "",
		Header: http.Header{"Cookie": {"__Host-gatehouse=" + newTok}, "Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {"https://" + o.host}, "Sec-Fetch-Site": {"same-origin"}}})
	body := string(r.Body)
	i := strings.Index(body, o.conn.OIDC.EndSessionURL)
	if r.StatusCode != http.StatusOK || i < 0 {
		t.Fatalf("logout: %d, no continue to %s: %s", r.StatusCode, o.conn.OIDC.EndSessionURL, body)
	}
	end := body[i:]
	end = end[:strings.IndexAny(end, `"<`)]
	u, err := url.Parse(strings.ReplaceAll(end, "&amp;", "&"))
	if err != nil || u.Query().Get("client_id") != o.idp.ClientID || !strings.Contains(u.Query().Get("post_logout_redirect_uri"), "/signed-out") {
		t.Fatalf("end session URL: %s", end)
	}
	if r := o.call(t, "GET", "/api/v1/session", newTok, nil); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("session after logout: %d", r.StatusCode)
	}
}
