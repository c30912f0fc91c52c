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

// TestRPInitiatedLogout: /oauth2/logout with a valid id_token_hint of the browser's
// session ends it, clears the cookie, tells the other apps by back channel and goes back
// to the registered post_logout_redirect_uri with state; an unregistered URI is never
// redirected to; without a hint, or with the hint of another session, nothing ends until
// the user confirms; a forged, foreign or non-ID-token hint is refused.
func TestRPInitiatedLogout(t *testing.T) {
	t.Parallel()
	srv := testutil.NewServer(t, testutil.FreshDB(t), allowPrivate)
	e := newEnv(t, srv, "oplogout")
	ctx := oidc.ClientContext(context.Background(), e.hc)
	provider, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	var disc struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := provider.Claims(&disc); err != nil || disc.EndSession != e.issuer+"/oauth2/logout" {
		t.Fatalf("end_session_endpoint %q %v", disc.EndSession, err)
	}
	back := "http://127.0.0.1:9/signed-out"
	notes := e.rp(t, provider, map[string]any{"name": "Notes", "type": "confidential", "first_party": true,
		"post_logout_redirect_uris": []string{back}})
	recv := e.receiver(t)
	wiki := e.rp(t, provider, map[string]any{"name": "Wiki", "type": "confidential", "first_party": true,
		"backchannel_logout_uri": recv.srv.URL + "/bcl"})
	recv.clientID = wiki.conf.ClientID
	e.User(t, "finn@example.com")
	login := func() string { return e.Login(t, "finn@example.com", testutil.Password) }
	logout := func(session string, q url.Values) *testutil.Response {
		t.Helper()
		if session == "" {
			return e.Page(t, "/oauth2/logout?"+q.Encode())
		}
		return e.Page(t, "/oauth2/logout?"+q.Encode(), "Cookie", "__Host-gatehouse="+session)
	}
	alive := func(session string) bool {
		return e.Do(t, http.MethodGet, "/api/v1/session", session, nil).StatusCode == http.StatusOK
	}
	cleared := func(r *testutil.Response) bool {
		for _, c := range r.Header.Values("Set-Cookie") {
			if strings.HasPrefix(c, "__Host-gatehouse=;") && strings.Contains(c, "Max-Age=0") {
				return true
			}
		}
		return false
	}

	// The hint names the browser's session, the URI is registered: redirect with state.
	s1 := login()
	_, hint1, sid1 := notes.signIn(t, ctx, e, s1)
	wiki.signIn(t, ctx, e, s1)
	r := logout(s1, url.Values{"id_token_hint": {hint1}, "post_logout_redirect_uri": {back}, "state": {"bye 1"}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != back+"?state=bye+1" {
		t.Fatalf("logout with a registered URI: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	if !cleared(r) || alive(s1) {
		t.Fatalf("the session survived RP-initiated logout (cookie cleared %v)", cleared(r))
	}
	if got := recv.waitFor(t, 1); !slices.Equal(got, []string{sid1}) {
		t.Fatalf("the other app heard of %v, want [%s]", got, sid1)
	}

	// An unregistered URI: signed out, but never redirected.
	s2 := login()
	_, hint2, _ := notes.signIn(t, ctx, e, s2)
	r = logout(s2, url.Values{"id_token_hint": {hint2}, "post_logout_redirect_uri": {"https://evil.example/x"}, "state": {"s"}})
	if r.StatusCode != http.StatusOK || r.Header.Get("Location") != "" || !strings.Contains(string(r.Body), "You are signed out") ||
		!strings.Contains(string(r.Body), `id="unknown-redirect"`) {
		t.Fatalf("logout with an unregistered URI: %d %q %s", r.StatusCode, r.Header.Get("Location"), r.Body)
	}
	if alive(s2) {
		t.Fatal("a valid hint of the browser's session did not end it")
	}

	// No hint: a confirmation page, nothing ended; then "Sign out" ends it, never redirects.
	s3 := login()
	r = logout(s3, url.Values{"post_logout_redirect_uri": {back}, "state": {"s"}})
	if r.StatusCode != http.StatusOK || !strings.Contains(string(r.Body), `action="/oauth2/logout/confirm"`) || !alive(s3) || cleared(r) {
		t.Fatalf("logout without a hint: %d alive %v %s", r.StatusCode, alive(s3), r.Body)
	}
	confirm := func(session, decision string, q url.Values) *testutil.Response {
		t.Helper()
		q.Set("decision", decision)
		return e.Form(t, "/oauth2/logout/confirm", q, "Cookie", "__Host-gatehouse="+session)
	}
	r = confirm(s3, "stay", url.Values{})
	if r.StatusCode != http.StatusOK || !strings.Contains(string(r.Body), "You are still signed in") || !alive(s3) {
		t.Fatalf("stay signed in: %d alive %v %s", r.StatusCode, alive(s3), r.Body)
	}
	r = confirm(s3, "logout", url.Values{"post_logout_redirect_uri": {back}})
	if r.StatusCode != http.StatusOK || r.Header.Get("Location") != "" || !cleared(r) || alive(s3) {
		t.Fatalf("confirmed logout without a hint: %d %q alive %v", r.StatusCode, r.Header.Get("Location"), alive(s3))
	}

	// The hint of another session: ask, end nothing; confirming ends the browser's own and
	// then goes back to the registered URI.
	s4, s5 := login(), login()
	_, hint4, _ := notes.signIn(t, ctx, e, s4)
	q := url.Values{"id_token_hint": {hint4}, "post_logout_redirect_uri": {back}, "state": {"x"}}
	r = logout(s5, q)
	if r.StatusCode != http.StatusOK || !strings.Contains(string(r.Body), "Notes</strong> signed you out") || !alive(s4) || !alive(s5) {
		t.Fatalf("hint of another session: %d %s", r.StatusCode, r.Body)
	}
	r = confirm(s5, "logout", q)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != back+"?state=x" || alive(s5) || !alive(s4) {
		t.Fatalf("confirmed: %d %q, s5 alive %v, s4 alive %v", r.StatusCode, r.Header.Get("Location"), alive(s5), alive(s4))
	}

	// Not signed in at all: nothing to end, back to the app.
	if r = logout("", q); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != back+"?state=x" {
		t.Fatalf("signed-out browser: %d %q", r.StatusCode, r.Header.Get("Location"))
	}

	// Hints that are not this issuer's ID tokens are refused, and never redirected.
	other := newEnv(t, srv, "oplogout-b")
	otherProvider, err := oidc.NewProvider(ctx, other.issuer)
	if err != nil {
		t.Fatal(err)
	}
	foreign := other.rp(t, otherProvider, map[string]any{"name": "B app", "first_party": true, "post_logout_redirect_uris": []string{back}})
	_, bs := other.Person(t, "finn@example.com")
	_, foreignHint, _ := foreign.signIn(t, ctx, other, bs)
	s6 := login()
	tok6, hint6, _ := notes.signIn(t, ctx, e, s6)
	parts := strings.Split(hint6, ".")
	forged := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
	for name, h := range map[string]string{"forged": forged, "other tenant's": foreignHint, "access token as": tok6.AccessToken,
		"garbage": "not-a-jwt"} {
		r := logout(s6, url.Values{"id_token_hint": {h}, "post_logout_redirect_uri": {back}})
		if r.StatusCode != http.StatusBadRequest || r.Header.Get("Location") != "" || !strings.Contains(string(r.Body), "invalid_logout_request") {
			t.Errorf("%s hint: %d %q %s", name, r.StatusCode, r.Header.Get("Location"), r.Body)
		}
	}
	r = logout(s6, url.Values{"id_token_hint": {hint6}, "client_id": {wiki.conf.ClientID}})
	if r.StatusCode != http.StatusBadRequest {
		t.Errorf("client_id of another app than the hint's: %d", r.StatusCode)
	}
	if !alive(s6) {
		t.Fatal("a refused logout request ended the session")
	}
}

// TestBrowserRPInitiatedLogout: in Chromium, a user signed in to an app on another host
// signs out there; the app sends the browser to /oauth2/logout with its ID token and comes
// back to its registered page with state; the tenant's pages ask to sign in again. Without
// a hint the user sees the confirmation page and chooses.
func TestBrowserRPInitiatedLogout(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	t.Parallel()
	srv := testutil.NewServer(t, testutil.PackageDB(t), allowPrivate)
	e := newEnv(t, srv, "opbrowserout")
	ctx := oidc.ClientContext(context.Background(), e.hc)
	provider, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	codes := make(chan string, 1)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		switch r.URL.Path {
		case "/cb":
			codes <- r.URL.Query().Get("code")
			fmt.Fprint(w, `<!doctype html><p id="app-signed-in">Signed in to the app</p>`)
		case "/bye":
			fmt.Fprintf(w, `<!doctype html><p id="app-signed-out">Signed out of the app, state %s</p>`, url.QueryEscape(r.URL.Query().Get("state")))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(app.Close)
	clientID, secret := e.app(t, map[string]any{"name": "Demo", "type": "confidential", "first_party": true,
		"redirect_uris": []string{app.URL + "/cb"}, "post_logout_redirect_uris": []string{app.URL + "/bye"}})
	conf := oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: provider.Endpoint(), RedirectURL: app.URL + "/cb",
		Scopes: []string{"openid", "email"}}
	e.User(t, "gus@example.com")
	base := e.issuer
	b := testutil.Browser(t)
	signIn := func() {
		t.Helper()
		if err := chromedp.Do(b, chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.ID("email")),
			chromedp.SendKeys(chromedp.ID("email"), "gus@example.com"), chromedp.SendKeys(chromedp.ID("password"), testutil.Password),
			chromedp.Submit(chromedp.ID("password")), chromedp.WaitVisible(chromedp.ID("current-email"))); err != nil {
			t.Fatalf("sign in: %v", err)
		}
	}
	signedOut := func(what string) {
		t.Helper()
		if err := chromedp.Do(b, chromedp.Navigate(base+"/account"), chromedp.WaitVisible(chromedp.ID("password"))); err != nil {
			t.Fatalf("%s: the account page did not ask to sign in: %v", what, err)
		}
	}

	// Sign in to the app through the tenant, then sign out from the app.
	signIn()
	v := oauth2.GenerateVerifier()
	if err := chromedp.Do(b, chromedp.Navigate(conf.AuthCodeURL("in", oauth2.S256ChallengeOption(v))),
		chromedp.WaitVisible(chromedp.ID("app-signed-in"))); err != nil {
		t.Fatalf("sign in to the app: %v", err)
	}
	var code string
	select {
	case code = <-codes:
	case <-time.After(10 * time.Second):
		t.Fatal("the app got no code")
	}
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	hint, _ := tok.Extra("id_token").(string)
	logoutURL := base + "/oauth2/logout?" + url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {app.URL + "/bye"},
		"state": {"s-42"}}.Encode()
	if err := chromedp.Do(b, chromedp.Navigate(logoutURL), chromedp.WaitVisible(chromedp.ID("app-signed-out"))); err != nil {
		t.Fatalf("RP-initiated logout: %v", err)
	}
	text, err := chromedp.Run(b, chromedp.Text(chromedp.ID("app-signed-out")))
	if err != nil || !strings.Contains(text, "state s-42") {
		t.Fatalf("back at the app: %q %v", text, err)
	}
	signedOut("after RP-initiated logout")

	// Without a hint: the confirmation page; "Stay signed in" keeps the session.
	signIn()
	if err := chromedp.Do(b, chromedp.Navigate(base+"/oauth2/logout"), chromedp.WaitVisible(chromedp.ID("stay")),
		chromedp.Click(chromedp.ID("stay")), chromedp.WaitVisible(chromedp.CSS(`a[href="/login"]`))); err != nil {
		t.Fatalf("stay signed in: %v", err)
	}
	if text, err := chromedp.Run(b, chromedp.Text(chromedp.CSS("main"))); err != nil || !strings.Contains(text, "You are still signed in") {
		t.Fatalf("after staying: %q %v", text, err)
	}
	if err := chromedp.Do(b, chromedp.Navigate(base+"/account"), chromedp.WaitVisible(chromedp.ID("current-email"))); err != nil {
		t.Fatalf("staying signed in lost the session: %v", err)
	}
	// "Sign out" ends it.
	if err := chromedp.Do(b, chromedp.Navigate(base+"/oauth2/logout"), chromedp.WaitVisible(chromedp.ID("logout")),
		chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.CSS(`a[href="/login"]`))); err != nil {
		t.Fatalf("confirm sign-out: %v", err)
	}
	if text, err := chromedp.Run(b, chromedp.Text(chromedp.CSS("main"))); err != nil || !strings.Contains(text, "You are signed out") {
		t.Fatalf("after confirming: %q %v", text, err)
	}
	signedOut("after confirming")
}
