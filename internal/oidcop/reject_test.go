package oidcop_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// get fetches u without following redirects.
func (e *env) get(t *testing.T, u, session string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if session != "" {
		req.Header.Set("Cookie", "__Host-gatehouse="+session)
	}
	c := *e.hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestCrossTenant: tenant A's client, tokens and keys mean nothing on tenant B's issuer.
func TestCrossTenant(t *testing.T) {
	t.Parallel()
	srv := testutil.NewServer(t, testutil.PackageDB(t))
	a, b := newEnv(t, srv, "opa"), newEnv(t, srv, "opb")
	redirect := "http://127.0.0.1:9/callback"
	clientID, secret := a.app(t, map[string]any{"name": "A app", "first_party": true, "redirect_uris": []string{redirect},
		"grant_types": []string{"authorization_code", "refresh_token", "client_credentials"}})
	ctx := oidc.ClientContext(context.Background(), a.hc)
	pa, err := oidc.NewProvider(ctx, a.issuer)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := oidc.NewProvider(ctx, b.issuer)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: pa.Endpoint(), RedirectURL: redirect, Scopes: []string{"openid", "email"}}
	_, session := a.Person(t, "ada@example.com")
	verifier := oauth2.GenerateVerifier()
	q := a.authorize(t, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), session, redirect)
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)

	// A's ID token does not verify against B's keys and issuer.
	if _, err := pb.Verifier(&oidc.Config{ClientID: clientID}).Verify(ctx, raw); err == nil {
		t.Fatal("tenant A's ID token verified on tenant B")
	}
	// A's access token at B's userinfo, A's refresh token at B's token endpoint.
	if _, err := pb.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
		t.Fatal("tenant A's access token answered on tenant B's userinfo")
	}
	confB := conf
	confB.Endpoint = pb.Endpoint()
	if _, err := confB.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Fatal("tenant A's refresh token worked on tenant B")
	}
	// A's client on B: unknown to the token endpoint, and no redirect from B's authorize.
	cc := clientcredentials.Config{ClientID: clientID, ClientSecret: secret, TokenURL: pb.Endpoint().TokenURL}
	if _, err := cc.Token(ctx); !isOAuthError(err, "invalid_client") {
		t.Fatalf("A's client at B's token endpoint: %v", err)
	}
	authB := confB.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier))
	if resp, _ := b.get(t, authB, ""); resp.StatusCode < 400 || resp.Header.Get("Location") != "" {
		t.Fatalf("A's client at B's authorize: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Introspection by A's client on B.
	if resp, _ := b.post(t, "/oauth2/introspect", clientID, secret, url.Values{"token": {tok.AccessToken}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("A's client at B's introspection: %d", resp.StatusCode)
	}
}

// TestBadInput: malformed, missing and hostile parameters get the RFCs' error codes, an
// unknown redirect_uri is never redirected to, and nothing answers 500.
func TestBadInput(t *testing.T) {
	t.Parallel()
	srv := testutil.NewServer(t, testutil.PackageDB(t))
	e := newEnv(t, srv, "opbad")
	redirect := "http://127.0.0.1:9/callback"
	clientID, secret := e.app(t, map[string]any{"name": "App", "redirect_uris": []string{redirect}})
	base := e.issuer + "/oauth2/authorize?"
	good := url.Values{"client_id": {clientID}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"st"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
	with := func(k, v string) string {
		q := url.Values{}
		for kk, vv := range good {
			q[kk] = vv
		}
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
		return base + q.Encode()
	}
	// Errors sent back to the app's redirect URI, with state and iss.
	for name, c := range map[string]struct{ url, code string }{
		"no PKCE":                 {with("code_challenge", ""), "invalid_request"},
		"plain PKCE":              {with("code_challenge_method", "plain"), "invalid_request"},
		"no openid":               {with("scope", "email"), "invalid_scope"},
		"prompt=none, no session": {with("prompt", "none"), "login_required"},
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := e.get(t, c.url, "")
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode >= 500 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			// prompt=none goes through the sign-in bridge first.
			if loc != nil && strings.HasPrefix(loc.Path, "/oauth2/login") {
				resp, body = e.get(t, e.issuer+loc.String(), "")
				loc, _ = url.Parse(resp.Header.Get("Location"))
			}
			if loc == nil || !strings.HasPrefix(loc.String(), redirect) {
				t.Fatalf("no redirect to the app: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
			}
			if q := loc.Query(); q.Get("error") != c.code || q.Get("state") != "st" || q.Get("iss") != e.issuer {
				t.Fatalf("error response %v, want error=%s with state and iss", q, c.code)
			}
		})
	}
	// Errors shown as a page: the redirect URI cannot be trusted.
	for name, u := range map[string]string{
		"unknown redirect_uri":         with("redirect_uri", "https://evil.example/cb"),
		"no redirect_uri":              with("redirect_uri", ""),
		"unknown client":               with("client_id", "app_nosuchclient"),
		"no client":                    with("client_id", ""),
		"implicit (http redirect URI)": with("response_type", "token"),
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := e.get(t, u, "")
			if resp.StatusCode < 400 || resp.StatusCode >= 500 || resp.Header.Get("Location") != "" {
				t.Fatalf("%d Location %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
			}
		})
	}
	// The token endpoint.
	for name, c := range map[string]struct {
		form         url.Values
		user, secret string
		code         string
	}{
		"password grant":  {url.Values{"grant_type": {"password"}, "username": {"a"}, "password": {"b"}}, clientID, secret, "unsupported_grant_type"},
		"unknown code":    {url.Values{"grant_type": {"authorization_code"}, "code": {"nope"}, "redirect_uri": {redirect}, "code_verifier": {strings.Repeat("a", 43)}}, clientID, secret, "invalid_grant"},
		"no code":         {url.Values{"grant_type": {"authorization_code"}, "redirect_uri": {redirect}}, clientID, secret, "invalid_request"},
		"wrong secret":    {url.Values{"grant_type": {"client_credentials"}}, clientID, "wrong", "invalid_client"},
		"unknown client":  {url.Values{"grant_type": {"client_credentials"}}, "app_nosuchclient", "x", "invalid_client"},
		"refresh garbage": {url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"garbage"}}, clientID, secret, "invalid_grant"},
		"no grant type":   {url.Values{}, clientID, secret, "invalid_request"},
		"cc not allowed":  {url.Values{"grant_type": {"client_credentials"}}, clientID, secret, "unauthorized_client"},
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := e.post(t, "/oauth2/token", c.user, c.secret, c.form)
			if resp.StatusCode < 400 || resp.StatusCode >= 500 || !strings.Contains(string(body), fmt.Sprintf(`"error":"%s"`, c.code)) {
				t.Fatalf("%d %s, want %s", resp.StatusCode, body, c.code)
			}
		})
	}
}

// TestClientAuthLimited: wrong client secrets share the credential limiter (a growing
// delay per app and address after ratelimit.FreeFailures, then the app's secret is locked):
// refused attempts are not even checked, so the right secret waits too; each checked wrong
// secret is audited.
func TestClientAuthLimited(t *testing.T) {
	t.Parallel()
	d := testutil.PackageDB(t)
	srv := testutil.NewServer(t, d)
	e := newEnv(t, srv, "oplim")
	clientID, secret := e.app(t, map[string]any{"name": "M2M", "redirect_uris": []string{"https://m2m.example/cb"},
		"grant_types": []string{"authorization_code", "client_credentials"}})
	form := url.Values{"grant_type": {"client_credentials"}}
	// An app's own concurrent requests never count against it (only wrong secrets count).
	var wg sync.WaitGroup
	codes := make([]int, 20)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := e.post(t, "/oauth2/token", clientID, secret, form)
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("concurrent request %d with the right secret: %d (%v)", i, c, codes)
		}
	}
	for i := range 12 {
		resp, body := e.post(t, "/oauth2/token", clientID, fmt.Sprintf("wrong-%d", i), form)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"error":"invalid_client"`) {
			t.Fatalf("wrong secret %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if resp, body := e.post(t, "/oauth2/token", clientID, secret, form); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the right secret right after 12 wrong ones was not held back: %d %s", resp.StatusCode, body)
	}
	var n int
	if err := d.Admin.QueryRow(context.Background(), `SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND action = 'oidc.client_auth_failed'
		AND details->>'reason' = 'wrong_secret'`, e.Tenant.ID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n < ratelimit.FreeFailures || n >= 12 {
		t.Fatalf("%d wrong secrets checked and audited of 12: want the first %d and then refusals unchecked", n, ratelimit.FreeFailures)
	}
}
