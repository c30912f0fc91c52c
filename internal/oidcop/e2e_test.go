package oidcop_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// env is a tenant on a running server and an HTTP client that reaches every
// *.localhost host on the server's port (as a browser on the machine would).
type env struct {
	*testutil.Site
	hc     *http.Client
	issuer string
}

func newEnv(t *testing.T, srv *testutil.Server, prefix string, opts ...testutil.SiteOption) *env {
	t.Helper()
	site := testutil.NewSite(t, srv, prefix, opts...)
	dialer := &net.Dialer{}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, _ := net.SplitHostPort(addr)
		if strings.HasSuffix(host, ".localhost") {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return dialer.DialContext(ctx, network, addr)
	}}}
	return &env{Site: site, hc: hc, issuer: fmt.Sprintf("http://%s:%d", site.Host, srv.Port)}
}

// app registers an app through the admin API as an owner and returns client id and secret.
func (e *env) app(t *testing.T, body map[string]any) (string, string) {
	t.Helper()
	_, owner := e.Person(t, testutil.UniqueSlug("owner")+"@example.com", "owner")
	r := e.Do(t, http.MethodPost, "/api/v1/admin/apps", owner, body)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("create app: %d %s", r.StatusCode, r.Body)
	}
	var out struct {
		App struct {
			ClientID string `json:"client_id"`
		}
		ClientSecret string `json:"client_secret"`
	}
	r.JSON(t, &out)
	return out.App.ClientID, out.ClientSecret
}

// authorize runs the browser's part of the code flow for the signed-in session token:
// it follows redirects from the authorization URL until one leaves for redirectURI and
// returns that URL's query.
func (e *env) authorize(t *testing.T, authURL, session, redirectURI string) url.Values {
	t.Helper()
	next := authURL
	for range 10 {
		req, _ := http.NewRequest(http.MethodGet, next, nil)
		if session != "" {
			req.Header.Set("Cookie", "__Host-gatehouse="+session)
		}
		c := *e.hc
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if loc == "" {
			t.Fatalf("GET %s: %d without a redirect: %s", next, resp.StatusCode, body)
		}
		u, err := resp.Request.URL.Parse(loc)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(u.String(), redirectURI) {
			return u.Query()
		}
		next = u.String()
	}
	t.Fatalf("no redirect to %s after 10 hops", redirectURI)
	return nil
}

// TestCodeFlowWithGoOIDC: an unmodified go-oidc + x/oauth2 client discovers the tenant's
// issuer, signs a user in by code + PKCE, verifies the ID token with the JWKS, reads
// userinfo, refreshes with rotation (a reused refresh token revokes its family),
// introspects and revokes; a reused code revokes what it issued.
func TestCodeFlowWithGoOIDC(t *testing.T) {
	t.Parallel()
	srv := testutil.NewServer(t, testutil.PackageDB(t))
	e := newEnv(t, srv, "op")
	redirect := "http://127.0.0.1:9/callback"
	clientID, secret := e.app(t, map[string]any{"name": "Acme CRM", "type": "confidential", "first_party": true,
		"redirect_uris": []string{redirect}, "grant_types": []string{"authorization_code", "refresh_token", "client_credentials"}})
	ctx := oidc.ClientContext(context.Background(), e.hc)
	provider, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var disc struct {
		ISS     bool     `json:"authorization_response_iss_parameter_supported"`
		Methods []string `json:"code_challenge_methods_supported"`
		ACR     []string `json:"acr_values_supported"`
		BCL     bool     `json:"backchannel_logout_supported"`
		Types   []string `json:"response_types_supported"`
	}
	if err := provider.Claims(&disc); err != nil || !disc.ISS || !slices.Equal(disc.Methods, []string{"S256"}) || !disc.BCL ||
		!slices.Equal(disc.Types, []string{"code"}) || !slices.Contains(disc.ACR, "urn:gatehouse:aal2") {
		t.Fatalf("discovery document: %+v %v", disc, err)
	}
	conf := oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: provider.Endpoint(), RedirectURL: redirect,
		Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}
	userID, session := e.Person(t, "ada@example.com")

	signIn := func() (*oauth2.Token, string) {
		t.Helper()
		verifier := oauth2.GenerateVerifier()
		q := e.authorize(t, conf.AuthCodeURL("st-1", oauth2.S256ChallengeOption(verifier), oidc.Nonce("n-1")), session, redirect)
		if q.Get("state") != "st-1" || q.Get("iss") != e.issuer || q.Get("code") == "" {
			t.Fatalf("authorization response: %v", q)
		}
		tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		return tok, q.Get("code")
	}
	tok, code := signIn()
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: clientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var claims struct {
		Email    string   `json:"email"`
		Verified bool     `json:"email_verified"`
		Sid      string   `json:"sid"`
		Tenant   string   `json:"tenant"`
		AMR      []string `json:"amr"`
		ACR      string   `json:"acr"`
		AuthTime int64    `json:"auth_time"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != userID.String() || idt.Nonce != "n-1" || claims.Email != "ada@example.com" || !claims.Verified ||
		claims.Sid == "" || claims.Tenant != e.Tenant.Slug || !slices.Equal(claims.AMR, []string{"pwd"}) ||
		claims.ACR != "urn:gatehouse:aal1" || claims.AuthTime == 0 {
		t.Fatalf("ID token claims: sub %s nonce %s %+v", idt.Subject, idt.Nonce, claims)
	}
	// The access token is an RFC 9068 JWT: typ at+jwt, signed by the tenant's key.
	if hdr, claims := jwtParts(t, tok.AccessToken); hdr["typ"] != "at+jwt" || claims["client_id"] != clientID || claims["sub"] != userID.String() ||
		claims["iss"] != e.issuer || claims["jti"] == nil || claims["scope"] != "openid profile email offline_access" || claims["sid"] != claims2sid(t, raw) {
		t.Fatalf("access token header %v, claims %v", hdr, claims)
	}
	if _, err := (&oidc.StaticKeySet{}).VerifySignature(ctx, tok.AccessToken); err == nil {
		t.Fatal("an empty key set verified the access token")
	}
	if _, err := oidc.NewRemoteKeySet(ctx, e.issuer+"/oauth2/jwks").VerifySignature(ctx, tok.AccessToken); err != nil {
		t.Fatalf("the access token does not verify with the tenant's JWKS: %v", err)
	}
	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || info.Email != "ada@example.com" || info.Subject != userID.String() {
		t.Fatalf("userinfo: %+v %v", info, err)
	}

	// A first-party app gets a refresh token; each use rotates it, a reuse revokes all.
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token for a first-party app")
	}
	refresh := func(rt string) (*oauth2.Token, error) {
		return conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
	}
	tok2, err := refresh(tok.RefreshToken)
	if err != nil || tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken || tok2.AccessToken == "" {
		t.Fatalf("refresh: %+v %v", tok2, err)
	}
	if _, err := refresh(tok.RefreshToken); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("reused refresh token: %v", err)
	}
	if _, err := refresh(tok2.RefreshToken); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("the successor of a reused refresh token still works: %v", err)
	}

	// Introspection and revocation (RFC 7662, RFC 7009) by the confidential client.
	if a := e.introspect(t, clientID, secret, tok.AccessToken); a["active"] != true || a["sub"] != userID.String() || a["client_id"] != clientID {
		t.Fatalf("introspection of a live token: %v", a)
	}
	tok3, _ := signIn()
	e.revoke(t, clientID, secret, tok3.RefreshToken)
	if _, err := refresh(tok3.RefreshToken); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("revoked refresh token: %v", err)
	}

	// A code works once; its second use revokes the tokens of the first.
	if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption("whatever")); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("code replay: %v", err)
	}
	if a := e.introspect(t, clientID, secret, tok.AccessToken); a["active"] != false {
		t.Fatalf("a replayed code left its access token active: %v", a)
	}

	// The session is the source of truth: once it ends, tokens issued under it stop.
	tok4, _ := signIn()
	if r := e.Do(t, http.MethodPost, "/api/v1/logout", session, nil); r.StatusCode != http.StatusNoContent && r.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d %s", r.StatusCode, r.Body)
	}
	if _, err := refresh(tok4.RefreshToken); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("refresh after the session ended: %v", err)
	}
	if a := e.introspect(t, clientID, secret, tok4.AccessToken); a["active"] != false {
		t.Fatalf("introspection after the session ended: %v", a)
	}
	if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok4)); err == nil {
		t.Fatal("userinfo answered for a token whose session ended")
	}

	// Machine to machine: client_credentials, no user.
	cc := clientcredentials.Config{ClientID: clientID, ClientSecret: secret, TokenURL: provider.Endpoint().TokenURL}
	mt, err := cc.Token(ctx)
	if err != nil {
		t.Fatalf("client_credentials: %v", err)
	}
	if a := e.introspect(t, clientID, secret, mt.AccessToken); a["active"] != true || a["sub"] != clientID {
		t.Fatalf("introspection of a client token: %v", a)
	}
	bad := clientcredentials.Config{ClientID: clientID, ClientSecret: secret + "x", TokenURL: provider.Endpoint().TokenURL}
	if _, err := bad.Token(ctx); !isOAuthError(err, "invalid_client") {
		t.Fatalf("a wrong secret: %v", err)
	}
}

func isOAuthError(err error, code string) bool {
	var re *oauth2.RetrieveError
	if e, ok := err.(*oauth2.RetrieveError); ok {
		re = e
	}
	return re != nil && re.ErrorCode == code
}

func (e *env) post(t *testing.T, path, clientID, secret string, form url.Values) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func (e *env) introspect(t *testing.T, clientID, secret, token string) map[string]any {
	t.Helper()
	resp, b := e.post(t, "/oauth2/introspect", clientID, secret, url.Values{"token": {token}})
	var out map[string]any
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &out) != nil {
		t.Fatalf("introspect: %d %s", resp.StatusCode, b)
	}
	return out
}

func (e *env) revoke(t *testing.T, clientID, secret, token string) {
	t.Helper()
	resp, b := e.post(t, "/oauth2/revoke", clientID, secret, url.Values{"token": {token}, "token_type_hint": {"refresh_token"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", resp.StatusCode, b)
	}
}

// jwtParts decodes a JWT's header and claims without verifying it.
func jwtParts(t *testing.T, tok string) (map[string]any, map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	dec := func(s string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(s)
		var m map[string]any
		if err != nil || json.Unmarshal(b, &m) != nil {
			t.Fatalf("JWT part %q", s)
		}
		return m
	}
	return dec(parts[0]), dec(parts[1])
}

func claims2sid(t *testing.T, idToken string) any {
	_, c := jwtParts(t, idToken)
	return c["sid"]
}
