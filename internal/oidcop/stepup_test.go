package oidcop_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// follow walks redirects from u with the session cookie and stops at the first answer that
// is not a redirect on the tenant's host: it returns that response's status, final URL and
// body (a redirect to the app comes back as 302 with the app's URL).
func (e *env) follow(t *testing.T, u, session string) (int, *url.URL, string) {
	t.Helper()
	for range 10 {
		resp, body := e.get(t, u, session)
		loc := resp.Header.Get("Location")
		if loc == "" {
			cur, _ := url.Parse(u)
			return resp.StatusCode, cur, body
		}
		next, _ := resp.Request.URL.Parse(loc)
		if !strings.HasPrefix(next.String(), e.issuer) {
			return resp.StatusCode, next, body
		}
		u = next.String()
	}
	t.Fatal("more than 10 redirects")
	return 0, nil, ""
}

// TestMaxAgeStepUpAndConsent: max_age=0 sends a signed-in user through re-authentication
// before the code is issued and auth_time says so; a third-party app shows the consent
// page once, remembers the grant, asks again on prompt=consent, and a refusal reaches the
// app as access_denied.
func TestMaxAgeStepUpAndConsent(t *testing.T) {
	t.Parallel()
	srv := testutil.NewServer(t, testutil.PackageDB(t))
	e := newEnv(t, srv, "opstep")
	redirect := "http://127.0.0.1:9/cb"
	clientID, secret := e.app(t, map[string]any{"name": "Third Party Notes", "redirect_uris": []string{redirect}})
	ctx := oidc.ClientContext(context.Background(), e.hc)
	provider, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: provider.Endpoint(), RedirectURL: redirect,
		Scopes: []string{"openid", "email", "profile"}}
	_, session := e.Person(t, "bea@example.com")
	time.Sleep(1100 * time.Millisecond) // auth_time has second precision: make "fresher" visible

	// max_age=0: the bridge sends the user to /reauth and back.
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("s1", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("max_age", "0"))
	status, at, _ := e.follow(t, authURL, session)
	if status != http.StatusOK || at.Path != "/reauth" {
		t.Fatalf("max_age=0 led to %d %s, want the re-authentication page", status, at)
	}
	returnTo := at.Query().Get("return_to")
	if !strings.HasPrefix(returnTo, "/oauth2/login?id=") {
		t.Fatalf("re-authentication returns to %q", returnTo)
	}
	r := e.Do(t, http.MethodPost, "/api/v1/reauth", session, map[string]string{"password": testutil.Password})
	var re struct{ Session struct{ Token string } }
	r.JSON(t, &re)
	if r.StatusCode != http.StatusOK || re.Session.Token == "" {
		t.Fatalf("reauth: %d %s", r.StatusCode, r.Body)
	}
	session = re.Session.Token

	// Back at the bridge: a third-party app asks for consent.
	status, _, body := e.follow(t, e.issuer+returnTo, session)
	if status != http.StatusOK || !strings.Contains(body, "Allow Third Party Notes?") || !strings.Contains(body, "See your email address") {
		t.Fatalf("consent page: %d %s", status, body)
	}
	id := strings.TrimPrefix(returnTo, "/oauth2/login?id=")
	consent := func(decision string) *url.URL {
		t.Helper()
		r := e.Form(t, "/oauth2/consent", url.Values{"id": {id}, "decision": {decision}}, "Cookie", "__Host-gatehouse="+session)
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("consent %s: %d %s", decision, r.StatusCode, r.Body)
		}
		loc := r.Header.Get("Location")
		if strings.HasPrefix(loc, "http") {
			final, _ := url.Parse(loc)
			return final
		}
		_, final, _ := e.follow(t, e.issuer+loc, session)
		return final
	}
	final := consent("allow")
	tok, err := conf.Exchange(ctx, final.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange after step-up: %v (%s)", err, final)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: clientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		AuthTime int64 `json:"auth_time"`
	}
	_ = idt.Claims(&c)
	if age := time.Since(time.Unix(c.AuthTime, 0)); age > 3*time.Second {
		t.Fatalf("auth_time is %v old after a max_age=0 re-authentication", age)
	}

	// The grant is remembered: no consent page, straight back to the app.
	v2 := oauth2.GenerateVerifier()
	q := e.authorize(t, conf.AuthCodeURL("s2", oauth2.S256ChallengeOption(v2)), session, redirect)
	if q.Get("code") == "" {
		t.Fatalf("remembered consent: %v", q)
	}
	// prompt=consent asks again; Cancel answers access_denied to the app.
	status, at, body = e.follow(t, conf.AuthCodeURL("s3", oauth2.S256ChallengeOption(v2), oauth2.SetAuthURLParam("prompt", "consent")), session)
	if status != http.StatusOK || !strings.Contains(body, "Allow Third Party Notes?") {
		t.Fatalf("prompt=consent: %d %s", status, at)
	}
	id = at.Query().Get("id")
	if denied := consent("deny"); denied.Query().Get("error") != "access_denied" || denied.Query().Get("state") != "s3" || denied.Query().Get("iss") != e.issuer {
		t.Fatalf("refused consent reached the app as %s", denied)
	}

	// "Apps with access" on the account: removing the app ends its tokens and forgets the
	// consent (the next sign-in asks again).
	page := e.Page(t, "/account/apps", "Cookie", "__Host-gatehouse="+session)
	if !strings.Contains(string(page.Body), "Third Party Notes") || !strings.Contains(string(page.Body), "See your email address") {
		t.Fatalf("apps with access: %d %s", page.StatusCode, page.Body)
	}
	if a := e.introspect(t, clientID, secret, tok.AccessToken); a["active"] != true {
		t.Fatalf("token before removing access: %v", a)
	}
	appID := between(string(page.Body), `/account/apps/`, `/revoke`)
	r = e.Form(t, "/account/apps/"+appID+"/revoke", url.Values{}, "Cookie", "__Host-gatehouse="+session)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/account/apps?removed=1" {
		t.Fatalf("remove access: %d %s", r.StatusCode, r.Body)
	}
	if a := e.introspect(t, clientID, secret, tok.AccessToken); a["active"] != false {
		t.Fatalf("token after removing access: %v", a)
	}
	if status, _, body := e.follow(t, conf.AuthCodeURL("s4", oauth2.S256ChallengeOption(v2)), session); status != http.StatusOK || !strings.Contains(body, "Allow Third Party Notes?") {
		t.Fatalf("sign-in after removing access did not ask again: %d", status)
	}
	if r := e.Form(t, "/account/apps/"+appID+"/revoke", url.Values{}, "Cookie", "__Host-gatehouse="+session); r.StatusCode != http.StatusNotFound {
		t.Fatalf("removing access twice: %d", r.StatusCode)
	}
}

func between(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return ""
	}
	s = s[i+len(from):]
	if j := strings.Index(s, to); j >= 0 {
		return s[:j]
	}
	return ""
}

// TestAuthorizeRequiresPasskey: in a tenant that requires a passkey of admins, an admin
// signed in by password gets no code: the bridge sends them to the passkey page (which
// comes back to the request), and prompt=none answers the app interaction_required. A
// member of the same tenant gets the code.
func TestAuthorizeRequiresPasskey(t *testing.T) {
	t.Parallel()
	srv := testutil.NewServer(t, testutil.PackageDB(t))
	e := newEnv(t, srv, "oppk", testutil.SitePolicy(func(p *tenant.Policy) { p.Passkeys.RequireForRoles = []string{"admin"} }))
	redirect := "http://127.0.0.1:9/cb"
	clientID, secret := e.app(t, map[string]any{"name": "Notes", "type": "confidential", "first_party": true, "redirect_uris": []string{redirect}})
	ctx := oidc.ClientContext(context.Background(), e.hc)
	provider, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: provider.Endpoint(), RedirectURL: redirect,
		Scopes: []string{"openid", "email"}}
	verifier := oauth2.GenerateVerifier()

	_, admin := e.Person(t, "ada@example.com", "admin")
	status, at, _ := e.follow(t, conf.AuthCodeURL("s1", oauth2.S256ChallengeOption(verifier)), admin)
	if status != http.StatusOK || at.Path != "/account/passkeys/required" || at.Query().Get("code") != "" {
		t.Fatalf("admin with a password session led to %d %s, want the passkey page", status, at)
	}
	if rt := at.Query().Get("return_to"); !strings.HasPrefix(rt, "/oauth2/login?id=") {
		t.Errorf("the passkey page returns to %q", rt)
	}
	status, at, _ = e.follow(t, conf.AuthCodeURL("s2", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "none")), admin)
	if !strings.HasPrefix(at.String(), redirect) || at.Query().Get("error") != "interaction_required" || at.Query().Get("code") != "" {
		t.Errorf("prompt=none for the admin: %d %s", status, at)
	}

	_, member := e.Person(t, "bea@example.com")
	status, at, _ = e.follow(t, conf.AuthCodeURL("s3", oauth2.S256ChallengeOption(verifier)), member)
	if !strings.HasPrefix(at.String(), redirect) || at.Query().Get("code") == "" {
		t.Errorf("member: %d %s, want a code", status, at)
	}
}
