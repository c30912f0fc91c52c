package sso_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/sso/oidctest"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// oidcConn is an OIDC connection as the admin API returns it.
type oidcConn struct {
	ID          string `json:"id"`
	Slug        string `json:"slug"`
	Protocol    string `json:"protocol"`
	Status      string `json:"status"`
	LoginURL    string `json:"login_url"`
	RedirectURI string `json:"redirect_uri"`
	ACSURL      string `json:"acs_url"`
	OIDC        struct {
		Issuer          string   `json:"issuer"`
		ClientID        string   `json:"client_id"`
		ClientSecretSet bool     `json:"client_secret_set"`
		Scopes          []string `json:"scopes"`
		EndSessionURL   string   `json:"end_session_endpoint"`
	} `json:"oidc"`
}

// oidcSetup is a tenant with an OIDC connection to a zitadel-based test IdP.
type oidcSetup struct {
	*site
	idp  *oidctest.IdP
	conn oidcConn
}

var people = []oidctest.Person{
	{Sub: "sub-ada", Username: "ada", Password: "idp-pass", Email: "ada@corp.example", EmailVerified: true, FirstName: "Ada", LastName: "Lovelace",
		Claims: map[string]any{"hd": "corp.example", "tid": "11111111-2222-3333-4444-555555555555", "groups": []string{"engineering", "admins"}}},
	{Sub: "sub-bob", Username: "bob", Password: "idp-pass", Email: "bob@corp.example", EmailVerified: false, FirstName: "Bob", LastName: "Unverified",
		Claims: map[string]any{"hd": "corp.example", "tid": "11111111-2222-3333-4444-555555555555"}},
	{Sub: "sub-eve", Username: "eve", Password: "idp-pass", Email: "eve@other.example", EmailVerified: true, FirstName: "Eve", LastName: "Outsider",
		Claims: map[string]any{"hd": "other.example", "tid": "99999999-2222-3333-4444-555555555555"}},
}

func newOIDCSetup(t *testing.T, extra map[string]any) *oidcSetup {
	t.Helper()
	idp, err := oidctest.New(nil, people...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	srv, d := newServer(t, testutil.WithConfig(func(c *config.Config) {
		c.OutboundRootCAs = testutil.CertPool(idp.Server)
		c.OutboundAllowPrivate = true
	}))
	s := newSite(t, srv, d)
	body := map[string]any{"protocol": "oidc", "name": "Corp OIDC " + uuid.NewString()[:6], "issuer": idp.Issuer,
		"client_id": idp.ClientID, "client_secret": idp.Secret, "scopes": []string{"openid", "email", "profile"},
		"domains": []string{"corp.example"}, "role_mapping": map[string]string{"admins": "admin"}}
	for k, v := range extra {
		body[k] = v
	}
	r := s.call(t, "POST", "/api/v1/admin/sso/connections", s.admin, body)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("create oidc connection: %d %s", r.StatusCode, r.Body)
	}
	var b struct{ Connection oidcConn }
	r.JSON(t, &b)
	if b.Connection.Protocol != "oidc" || b.Connection.RedirectURI == "" || b.Connection.ACSURL != "" || !b.Connection.OIDC.ClientSecretSet ||
		strings.Contains(string(r.Body), idp.Secret) || b.Connection.OIDC.EndSessionURL == "" {
		t.Fatalf("connection view: %s", r.Body)
	}
	idp.Register(b.Connection.RedirectURI)
	return &oidcSetup{site: s, idp: idp, conn: b.Connection}
}

// flight is a login in progress: the IdP's answer and the browser's binding.
type flight struct {
	Browser  string
	AuthURL  *url.URL
	Callback *url.URL // the redirect back to Gatehouse (code, state)
}

// begin starts a login at Gatehouse (optionally signed in, for step-up) and returns the
// authorization request.
func (o *oidcSetup) begin(t *testing.T, path, tok string) flight {
	t.Helper()
	n := startN.Add(1)
	r := o.call(t, "GET", path, tok, nil, http.Header{"X-Forwarded-For": {fmt.Sprintf("198.51.%d.%d", n/250%250, n%250+1)}})
	if r.StatusCode != http.StatusFound {
		t.Fatalf("GET %s: %d %s", path, r.StatusCode, r.Body)
	}
	loc, err := url.Parse(r.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	f := flight{AuthURL: loc}
	for _, c := range r.Cookies() {
		if c.Name == "__Host-gatehouse-saml" {
			f.Browser = c.Value
		}
	}
	q := loc.Query()
	if f.Browser == "" || q.Get("state") == "" || q.Get("nonce") == "" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" ||
		q.Get("response_type") != "code" || !strings.HasPrefix(loc.String(), o.idp.Issuer) {
		t.Fatalf("authorization request: %s (browser %q)", loc, f.Browser)
	}
	return f
}

// signInAtIdP follows the authorization request through the IdP's login form.
func (o *oidcSetup) signInAtIdP(t *testing.T, f *flight, username string) {
	t.Helper()
	c := o.idp.Server.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(f.AuthURL.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loginURL, err := resp.Location()
	if err != nil {
		t.Fatalf("authorize: %d, no redirect to the login", resp.StatusCode)
	}
	id := loginURL.Query().Get("authRequestID")
	resp, err = c.PostForm(o.idp.Issuer+"/login/username", url.Values{"id": {id}, "username": {username}, "password": {"idp-pass"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	next, err := resp.Location()
	if err != nil {
		t.Fatalf("login at the IdP: %d", resp.StatusCode)
	}
	resp, err = c.Get(next.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if f.Callback, err = resp.Location(); err != nil {
		t.Fatalf("authorize callback: %d", resp.StatusCode)
	}
	if !strings.HasPrefix(f.Callback.String(), o.conn.RedirectURI) {
		t.Fatalf("the IdP did not send the browser to the redirect URI: %s", f.Callback)
	}
}

// finish delivers the IdP's answer to Gatehouse as the browser would.
func (o *oidcSetup) finish(t *testing.T, cb *url.URL, browser, tok string) *testutil.Response {
	t.Helper()
	h := http.Header{"Sec-Fetch-Site": {"cross-site"}}
	if browser != "" {
		h.Set("Cookie", "__Host-gatehouse-saml="+browser)
	}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	return o.srv.Do(t, testutil.Request{Method: "GET", Host: o.host, Path: cb.Path + "?" + cb.RawQuery, Header: h})
}

func (o *oidcSetup) login(t *testing.T, username string) (*testutil.Response, flight) {
	t.Helper()
	f := o.begin(t, "/sso/oidc/"+o.conn.Slug+"/login?return_to=/account", "")
	o.signInAtIdP(t, &f, username)
	return o.finish(t, f.Callback, f.Browser, ""), f
}

// TestOIDCSSOEndToEnd: an OIDC connection to a provider on zitadel/oidc's op package: the
// code flow with PKCE, JIT with the group mapping, discovery answering oidc, a known
// identity the second time, the attempt trace, and the sso.connection.* events.
func TestOIDCSSOEndToEnd(t *testing.T) {
	t.Parallel()
	o := newOIDCSetup(t, nil)
	r, _ := o.login(t, "ada")
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/account" || sessionToken(r) == "" {
		t.Fatalf("login: %d %s %s", r.StatusCode, r.Header.Get("Location"), r.Body)
	}
	var role, email string
	var nameID string
	if err := o.d.Admin.QueryRow(context.Background(), `SELECT u.email, g.role, i.name_id FROM users u
		JOIN sso_identities i ON i.user_id = u.id JOIN role_bindings g ON g.user_id = u.id
		WHERE u.tenant_id = $1 AND u.email = 'ada@corp.example'`, o.t.ID).Scan(&email, &role, &nameID); err != nil {
		t.Fatalf("JIT user: %v", err)
	}
	if role != "admin" || nameID != "sub-ada" {
		t.Fatalf("JIT: role %q name_id %q", role, nameID)
	}
	// The session's origin: the connection and the subject.
	var sub string
	if err := o.d.Admin.QueryRow(context.Background(), `SELECT saml_name_id FROM sessions WHERE tenant_id = $1 AND sso_connection_id = $2`, o.t.ID, o.conn.ID).Scan(&sub); err != nil || sub != "sub-ada" {
		t.Fatalf("session origin: %q %v", sub, err)
	}
	// Second sign-in: the known identity.
	if r, _ := o.login(t, "ada"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("second login: %d %s", r.StatusCode, r.Body)
	}
	// Discovery answers oidc with the OIDC door.
	r = o.call(t, "POST", "/api/v1/sso/discover", "", map[string]string{"email": "someone@corp.example"})
	var route struct {
		Method      string `json:"method"`
		RedirectURL string `json:"redirect_url"`
	}
	r.JSON(t, &route)
	if route.Method != "oidc" || !strings.Contains(route.RedirectURL, "/sso/oidc/"+o.conn.Slug+"/login") {
		t.Fatalf("discover: %s", r.Body)
	}
	// The SAML door does not know an OIDC connection.
	if r := o.call(t, "GET", "/sso/saml/"+o.conn.Slug+"/login", "", nil); r.StatusCode != http.StatusNotFound {
		t.Fatalf("saml door for an oidc connection: %d", r.StatusCode)
	}
	// The trace and the events.
	r = o.call(t, "GET", "/api/v1/admin/sso/connections/"+o.conn.ID+"/attempts", o.admin, nil)
	if !strings.Contains(string(r.Body), `"success":true`) || !strings.Contains(string(r.Body), `"id_token"`) {
		t.Fatalf("attempts: %s", r.Body)
	}
	var n int
	if err := o.d.Admin.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE tenant_id = $1 AND type = 'sso.connection.created'`, o.t.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("sso.connection.created events: %d %v", n, err)
	}
	// The secret is sealed, never stored in the clear.
	var sealed []byte
	if err := o.d.Admin.QueryRow(context.Background(), `SELECT oidc_secret_sealed FROM sso_connections WHERE id = $1`, o.conn.ID).Scan(&sealed); err != nil ||
		strings.Contains(string(sealed), o.idp.Secret) {
		t.Fatalf("secret at rest: %v", err)
	}
	// Test connection: a report, no session.
	before := o.ssoSessionsOIDC(t)
	r = o.call(t, "GET", "/admin/sso/"+o.conn.ID+"/test", o.admin, nil)
	if r.StatusCode != http.StatusFound {
		t.Fatalf("test connection start: %d %s", r.StatusCode, r.Body)
	}
	loc, _ := url.Parse(r.Header.Get("Location"))
	f := flight{AuthURL: loc}
	for _, c := range r.Cookies() {
		if c.Name == "__Host-gatehouse-saml" {
			f.Browser = c.Value
		}
	}
	o.signInAtIdP(t, &f, "ada")
	r = o.finish(t, f.Callback, f.Browser, o.admin)
	if r.StatusCode != http.StatusOK || !strings.Contains(string(r.Body), "sub-ada") || o.ssoSessionsOIDC(t) != before {
		t.Fatalf("test connection: %d (sessions %d→%d) %s", r.StatusCode, before, o.ssoSessionsOIDC(t), r.Body)
	}
	// Delete: the event.
	if r := o.call(t, "DELETE", "/api/v1/admin/sso/connections/"+o.conn.ID, o.admin, nil); r.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.StatusCode, r.Body)
	}
	if err := o.d.Admin.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE tenant_id = $1 AND type = 'sso.connection.deleted'`, o.t.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("sso.connection.deleted events: %d %v", n, err)
	}
}

func (o *oidcSetup) ssoSessionsOIDC(t *testing.T) int {
	t.Helper()
	var n int
	if err := o.d.Admin.QueryRow(context.Background(), `SELECT count(*) FROM sessions WHERE tenant_id = $1 AND sso_connection_id = $2`, o.t.ID, o.conn.ID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOIDCSSORefusals is the negative table: each answer is refused with its reason, no
// session is created, and the attempt is recorded.
func TestOIDCSSORefusals(t *testing.T) {
	t.Parallel()
	o := newOIDCSetup(t, map[string]any{"hosted_domain": "corp.example", "entra_tenant_id": "11111111-2222-3333-4444-555555555555"})
	// Existing password accounts in the verified domain, for the linking rows: bob's IdP
	// says his address is unverified (refused), ada's says verified (linked).
	o.person(t, "bob@corp.example")
	o.person(t, "ada@corp.example")
	if _, err := o.d.Admin.Exec(context.Background(), `UPDATE sso_domains SET verified_at = now() WHERE tenant_id = $1`, o.t.ID); err != nil {
		t.Fatal(err)
	}
	tamper := func(f func(map[string]any)) *oidctest.Tamper { return &oidctest.Tamper{Claims: f} }
	cases := []struct {
		name   string
		user   string
		tamper *oidctest.Tamper
		mut    func(f *flight) // changes what the browser brings back
		reason string
	}{
		{name: "wrong issuer", user: "ada", tamper: tamper(func(c map[string]any) { c["iss"] = "https://evil.example" }), reason: "issuer_mismatch"},
		{name: "wrong audience", user: "ada", tamper: tamper(func(c map[string]any) { c["aud"] = []string{"another-client"} }), reason: "audience_mismatch"},
		{name: "nonce mismatch", user: "ada", tamper: tamper(func(c map[string]any) { c["nonce"] = "not-the-nonce" }), reason: "nonce_mismatch"},
		{name: "nonce missing", user: "ada", tamper: tamper(func(c map[string]any) { delete(c, "nonce") }), reason: "nonce_mismatch"},
		{name: "expired token", user: "ada", tamper: tamper(func(c map[string]any) {
			c["exp"] = time.Now().Add(-time.Hour).Unix()
			c["iat"] = time.Now().Add(-2 * time.Hour).Unix()
		}), reason: "expired"},
		{name: "signed by another key", user: "ada", tamper: &oidctest.Tamper{Signing: oidctest.SignOtherKey}, reason: "signature_invalid"},
		{name: "alg none", user: "ada", tamper: &oidctest.Tamper{Signing: oidctest.SignNone}, reason: "signature_algorithm_refused"},
		{name: "hd mismatch", user: "eve", tamper: tamper(func(c map[string]any) { c["tid"] = "11111111-2222-3333-4444-555555555555" }), reason: "hd_mismatch"},
		{name: "tid mismatch", user: "ada", tamper: tamper(func(c map[string]any) { c["tid"] = "99999999-2222-3333-4444-555555555555" }), reason: "tid_mismatch"},
		{name: "state mismatch", user: "ada", mut: func(f *flight) {
			q := f.Callback.Query()
			q.Set("state", "AAAA"+q.Get("state")[4:])
			f.Callback.RawQuery = q.Encode()
		}, reason: "state_mismatch"},
		{name: "another browser", user: "ada", mut: func(f *flight) { f.Browser = "" }, reason: "browser_mismatch"},
		{name: "unverified email claim for linking", user: "bob", reason: "link_refused_unverified_email"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o.idp.SetTamper(tc.tamper)
			defer o.idp.SetTamper(nil)
			before := o.ssoSessionsOIDC(t)
			f := o.begin(t, "/sso/oidc/"+o.conn.Slug+"/login", "")
			o.signInAtIdP(t, &f, tc.user)
			if tc.mut != nil {
				tc.mut(&f)
			}
			r := o.finish(t, f.Callback, f.Browser, "")
			if r.StatusCode != http.StatusForbidden || sessionToken(r) != "" || r.Header.Get("X-Gatehouse-SSO-Reference") == "" {
				t.Fatalf("want a refusal, got %d %s", r.StatusCode, r.Body)
			}
			if got := o.lastFailure(t); got != tc.reason {
				t.Fatalf("reason %q, want %q", got, tc.reason)
			}
			if o.ssoSessionsOIDC(t) != before {
				t.Fatal("a refused answer created a session")
			}
		})
	}

	t.Run("code replay", func(t *testing.T) {
		// The first use links ada's verified address to her existing account.
		r, f := o.login(t, "ada")
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("login (link with a verified email): %d %s reason %q", r.StatusCode, r.Body, o.lastFailure(t))
		}
		before := o.ssoSessionsOIDC(t)
		r = o.finish(t, f.Callback, f.Browser, "")
		if r.StatusCode != http.StatusForbidden || o.lastFailure(t) != "request_already_used" || o.ssoSessionsOIDC(t) != before {
			t.Fatalf("replayed callback: %d reason %q", r.StatusCode, o.lastFailure(t))
		}
		// The same code with a fresh state of the same browser: the IdP refuses the code.
		g := o.begin(t, "/sso/oidc/"+o.conn.Slug+"/login", "")
		q := f.Callback.Query()
		q.Set("state", g.AuthURL.Query().Get("state"))
		cb := *f.Callback
		cb.RawQuery = q.Encode()
		r = o.finish(t, &cb, g.Browser, "")
		if r.StatusCode != http.StatusForbidden || o.lastFailure(t) != "token_exchange_failed" || o.ssoSessionsOIDC(t) != before {
			t.Fatalf("replayed code: %d reason %q", r.StatusCode, o.lastFailure(t))
		}
	})
}

// TestOIDCDiscoveryRefresh: the periodic refresh fetches each OIDC connection's discovery
// document again through the outbound client; when the issuer stops answering, the last
// good document stays (sign-in keeps its endpoints) and the error is shown on the
// connection.
func TestOIDCDiscoveryRefresh(t *testing.T) {
	t.Parallel()
	o := newOIDCSetup(t, nil)
	refresh := func() {
		t.Helper()
		tenants, err := o.srv.App.Tenants.List(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		_ = o.srv.App.SSO.RefreshMetadata(t.Context(), []tenant.Tenant{findTenant(tenants, o.t.Slug)})
	}
	var before time.Time
	if err := o.d.Admin.QueryRow(context.Background(), `SELECT metadata_fetched_at FROM sso_connections WHERE id = $1`, o.conn.ID).Scan(&before); err != nil {
		t.Fatal(err)
	}
	refresh()
	var after time.Time
	var msg *string
	if err := o.d.Admin.QueryRow(context.Background(), `SELECT metadata_fetched_at, metadata_error FROM sso_connections WHERE id = $1`, o.conn.ID).Scan(&after, &msg); err != nil {
		t.Fatal(err)
	}
	if !after.After(before) || msg != nil {
		t.Fatalf("refresh: fetched %s → %s, error %v", before, after, msg)
	}
	o.idp.Server.CloseClientConnections()
	o.idp.Close()
	refresh()
	r := o.call(t, "GET", "/api/v1/admin/sso/connections/"+o.conn.ID, o.admin, nil)
	var b struct {
		Connection struct {
			MetadataError *string `json:"metadata_error"`
			OIDC          struct {
				TokenURL string `json:"token_endpoint"`
			} `json:"oidc"`
		}
	}
	r.JSON(t, &b)
	if b.Connection.MetadataError == nil || !strings.Contains(*b.Connection.MetadataError, "discovery") || b.Connection.OIDC.TokenURL == "" {
		t.Fatalf("after a failed refresh: %s", r.Body)
	}
}

// TestOIDCConnectionInput: the admin API's refusals for OIDC connection settings, each a
// 400 with a stable code and the field, nothing written.
func TestOIDCConnectionInput(t *testing.T) {
	t.Parallel()
	o := newOIDCSetup(t, nil)
	base := map[string]any{"protocol": "oidc", "name": "X", "issuer": o.idp.Issuer, "client_id": o.idp.ClientID, "client_secret": o.idp.Secret}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range base {
			m[a] = b
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name  string
		body  map[string]any
		code  string
		field string
	}{
		{"issuer not a URL", with("issuer", "not a url"), "invalid_connection", "issuer"},
		{"issuer with a query", with("issuer", o.idp.Issuer+"?x=1"), "invalid_connection", "issuer"},
		{"issuer without discovery", with("issuer", o.idp.Issuer+"/nothing-here"), "oidc_discovery_failed", ""},
		{"no client id", with("client_id", nil), "invalid_connection", "client_id"},
		{"no client secret", with("client_secret", nil), "invalid_connection", "client_secret"},
		{"scope with a space", with("scopes", []string{"openid email"}), "invalid_connection", "scopes"},
		{"tid not a GUID", with("entra_tenant_id", "contoso"), "invalid_connection", "entra_tenant_id"},
		{"SAML metadata on OIDC", with("idp_metadata_xml", "<x/>"), "invalid_connection", "idp_metadata_xml"},
		{"OIDC fields on SAML", map[string]any{"name": "Y", "issuer": o.idp.Issuer}, "invalid_connection", "issuer"},
		{"unknown protocol", with("protocol", "ws-fed"), "invalid_connection", "protocol"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := o.call(t, "POST", "/api/v1/admin/sso/connections", o.admin, tc.body)
			if r.StatusCode != http.StatusBadRequest || r.ErrorCode() != tc.code || (tc.field != "" && !strings.Contains(string(r.Body), `"field":"`+tc.field+`"`)) {
				t.Fatalf("%d %s", r.StatusCode, r.Body)
			}
		})
	}
	if r := o.call(t, "PATCH", "/api/v1/admin/sso/connections/"+o.conn.ID, o.admin, map[string]any{"protocol": "saml"}); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("protocol change: %d %s", r.StatusCode, r.Body)
	}
	if r := o.call(t, "POST", "/api/v1/admin/sso/connections/"+o.conn.ID+"/rotate-key", o.admin, nil); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("rotate-key on OIDC: %d %s", r.StatusCode, r.Body)
	}
	// PATCH without a secret keeps it: sign-in still works.
	if r := o.call(t, "PATCH", "/api/v1/admin/sso/connections/"+o.conn.ID, o.admin, map[string]any{"scopes": []string{"email", "profile"}}); r.StatusCode != 200 {
		t.Fatalf("patch scopes: %d %s", r.StatusCode, r.Body)
	}
	if r, _ := o.login(t, "ada"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("login after a PATCH without secret: %d %s reason %q", r.StatusCode, r.Body, o.lastFailure(t))
	}
	var n int
	if err := o.d.Admin.QueryRow(context.Background(), `SELECT count(*) FROM sso_connections WHERE tenant_id = $1`, o.t.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("connections after refusals: %d %v", n, err)
	}
}
