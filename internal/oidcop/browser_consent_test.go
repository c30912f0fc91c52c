package oidcop_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestBrowserConsentThirdPartyApp: in Chromium, a third-party confidential app's
// authorization URL (x/oauth2 + PKCE) leads to the tenant's login page on the tenant host;
// after signing in the user sees "Allow <app>?" with the requested scopes in words and
// their email, presses Allow and lands on the app's redirect URI with code, state and iss;
// the code exchanges for an ID token that go-oidc verifies. A second authorization in the
// same browser goes straight to the app (the grant is remembered), and with prompt=consent
// the page asks again and Cancel lands on the app with error=access_denied.
func TestBrowserConsentThirdPartyApp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	t.Parallel()
	srv := testutil.NewServer(t, testutil.PackageDB(t))
	e := newEnv(t, srv, "consentui")

	// The app: its redirect URI records every query it receives.
	hits := make(chan url.Values, 8)
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		hits <- r.URL.Query()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>Notes</title><h1 id="app-callback">Notes callback</h1>`)
	}))
	t.Cleanup(rp.Close)
	redirect := rp.URL + "/callback"
	if !strings.HasPrefix(redirect, "http://127.0.0.1:") {
		t.Fatalf("the app's redirect URI %s is not on 127.0.0.1", redirect)
	}
	clientID, secret := e.app(t, map[string]any{"name": "Notes by Example", "type": "confidential", "first_party": false,
		"redirect_uris": []string{redirect}, "grant_types": []string{"authorization_code"}})

	octx := oidc.ClientContext(context.Background(), e.hc)
	provider, err := oidc.NewProvider(octx, e.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	conf := oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: provider.Endpoint(), RedirectURL: redirect,
		Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}
	userID := e.User(t, "cleo@acme.example")

	ctx := testutil.Browser(t)
	fail := func(step string, err error) {
		t.Helper()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		at, _ := chromedp.Run(sctx, chromedp.Location())
		body, _ := chromedp.Run(sctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		t.Fatalf("%s: %v\nat %s:\n%s", step, err, at, body)
	}
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			fail(step, err)
		}
	}
	js := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			fail("evaluate "+expr, err)
		}
		return v
	}
	// land waits until the browser has reached the app's redirect URI (possibly through the
	// continue page that moves on by itself) and returns the query the app received.
	land := func(step, state string) url.Values {
		t.Helper()
		var q url.Values
		select {
		case q = <-hits:
		case <-time.After(20 * time.Second):
			fail(step, fmt.Errorf("the app's redirect URI received nothing"))
		}
		do(step, chromedp.WaitVisible(chromedp.ID("app-callback")))
		at, err := url.Parse(js(`location.href`))
		if err != nil || !strings.HasPrefix(at.String(), redirect+"?") || at.Query().Encode() != q.Encode() {
			fail(step, fmt.Errorf("browser at %s, the app received %v", at, q))
		}
		if q.Get("state") != state || q.Get("iss") != e.issuer {
			fail(step, fmt.Errorf("authorization response %v: want state %q and iss %s", q, state, e.issuer))
		}
		return q
	}
	consentPage := func(step string) {
		t.Helper()
		do(step, chromedp.WaitVisible(chromedp.ID("allow")))
		if at := js(`location.origin + location.pathname`); at != e.issuer+"/oauth2/login" {
			t.Errorf("%s: consent page at %s, want the tenant's %s/oauth2/login", step, at, e.issuer)
		}
		if h := js(`document.querySelector("h1").innerText.trim()`); h != "Allow Notes by Example?" {
			t.Errorf("%s: heading %q", step, h)
		}
		if body := js(`document.querySelector("main") ? document.querySelector("main").innerText : document.body.innerText`); !strings.Contains(body, "cleo@acme.example") {
			t.Errorf("%s: the consent page does not say who signs in:\n%s", step, body)
		}
		lines := js(`[...document.querySelectorAll("ul.scopes li")].map(li => li.dataset.scope + "=" + li.innerText.trim()).join("\n")`)
		want := []string{"openid=Know who you are (your account id)", "profile=See your name", "email=See your email address"}
		got := strings.Split(lines, "\n")
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: scope lines %q, want %q", step, got, want)
		}
	}

	// First authorization: login page on the tenant host, then consent, then Allow.
	verifier := oauth2.GenerateVerifier()
	do("open the authorization URL",
		chromedp.Navigate(conf.AuthCodeURL("st-1", oauth2.S256ChallengeOption(verifier), oidc.Nonce("n-1"))),
		chromedp.WaitVisible(chromedp.ID("password")))
	if at := js(`location.origin + location.pathname`); at != e.issuer+"/login" {
		t.Fatalf("the authorization URL led to %s, want the tenant's login page %s/login", at, e.issuer)
	}
	do("sign in",
		chromedp.SendKeys(chromedp.ID("email"), "cleo@acme.example"),
		chromedp.SendKeys(chromedp.ID("password"), testutil.Password),
		chromedp.Submit(chromedp.ID("password")))
	consentPage("first authorization")
	do("press Allow", chromedp.Click(chromedp.ID("allow")))
	q := land("after Allow", "st-1")
	if q.Get("code") == "" || q.Get("error") != "" {
		t.Fatalf("after Allow the app received %v", q)
	}
	tok, err := conf.Exchange(octx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: clientID}).Verify(octx, raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var claims struct {
		Email string `json:"email"`
	}
	if err := idt.Claims(&claims); err != nil || idt.Subject != userID.String() || idt.Nonce != "n-1" ||
		claims.Email != "cleo@acme.example" || idt.Issuer != e.issuer {
		t.Fatalf("ID token: iss %s sub %s nonce %s %+v %v", idt.Issuer, idt.Subject, idt.Nonce, claims, err)
	}

	// Second authorization in the same browser: the grant is remembered, no consent page.
	v2 := oauth2.GenerateVerifier()
	do("second authorization", chromedp.Navigate(conf.AuthCodeURL("st-2", oauth2.S256ChallengeOption(v2))))
	q = land("second authorization", "st-2")
	if q.Get("code") == "" || q.Get("error") != "" {
		t.Fatalf("second authorization: the app received %v", q)
	}
	if _, err := conf.Exchange(octx, q.Get("code"), oauth2.VerifierOption(v2)); err != nil {
		t.Fatalf("exchange of the second code: %v", err)
	}

	// prompt=consent asks again; Cancel answers access_denied to the app.
	v3 := oauth2.GenerateVerifier()
	do("prompt=consent", chromedp.Navigate(conf.AuthCodeURL("st-3", oauth2.S256ChallengeOption(v3),
		oauth2.SetAuthURLParam("prompt", "consent"))))
	consentPage("prompt=consent")
	do("press Cancel", chromedp.Click(chromedp.ID("deny")))
	q = land("after Cancel", "st-3")
	if q.Get("error") != "access_denied" || q.Get("code") != "" {
		t.Fatalf("after Cancel the app received %v, want error=access_denied and no code", q)
	}
	select {
	case extra := <-hits:
		t.Fatalf("the app received another request: %v", extra)
	default:
	}
}
