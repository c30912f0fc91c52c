package oidcop_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// allowPrivate lets the outbound client reach the tests' loopback receivers. Tests that
// deliver back-channel logout use a database of their own: any server on a database works
// its jobs, and the package's other servers refuse loopback URIs.
var allowPrivate = testutil.WithConfig(func(c *config.Config) { c.OutboundAllowPrivate = true })

// receiver is an app's back-channel logout endpoint, as an app would write it with a JWT
// library of its own: it verifies each logout_token against the tenant's JWKS (go-oidc's
// remote key set) and checks typ, iss, aud, iat/exp, jti, sub, sid, events and that there
// is no nonce. While status is not 200 it answers that status without looking.
type receiver struct {
	srv      *httptest.Server
	keys     *oidc.RemoteKeySet
	issuer   string
	clientID string

	mu       sync.Mutex
	status   int
	failed   int
	got      []logoutClaims
	problems []string
}

type logoutClaims struct {
	Iss    string                    `json:"iss"`
	Aud    any                       `json:"aud"`
	Iat    int64                     `json:"iat"`
	Exp    int64                     `json:"exp"`
	Jti    string                    `json:"jti"`
	Sub    string                    `json:"sub"`
	Sid    string                    `json:"sid"`
	Events map[string]map[string]any `json:"events"`
	Nonce  *string                   `json:"nonce"`
}

func (e *env) receiver(t *testing.T) *receiver {
	t.Helper()
	ctx := oidc.ClientContext(context.Background(), e.hc)
	r := &receiver{keys: oidc.NewRemoteKeySet(ctx, e.issuer+"/oauth2/jwks"), issuer: e.issuer, status: http.StatusOK}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	status := r.status
	if status != http.StatusOK {
		r.failed++
	}
	r.mu.Unlock()
	if status != http.StatusOK {
		w.WriteHeader(status)
		return
	}
	problem := func(s string) {
		r.mu.Lock()
		r.problems = append(r.problems, s)
		r.mu.Unlock()
		http.Error(w, s, http.StatusBadRequest)
	}
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		problem("method " + req.Method + " content type " + req.Header.Get("Content-Type"))
		return
	}
	raw := req.PostFormValue("logout_token")
	payload, err := r.keys.VerifySignature(oidc.ClientContext(req.Context(), nil), raw)
	if err != nil {
		problem("signature: " + err.Error())
		return
	}
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil || len(jws.Signatures) != 1 {
		problem(fmt.Sprintf("parse: %v", err))
		return
	}
	if typ, _ := jws.Signatures[0].Header.ExtraHeaders[jose.HeaderType].(string); typ != "logout+jwt" {
		problem("typ " + typ)
		return
	}
	var c logoutClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		problem("claims: " + err.Error())
		return
	}
	now := time.Now().Unix()
	_, hasEvent := c.Events["http://schemas.openid.net/event/backchannel-logout"]
	switch {
	case c.Iss != r.issuer:
		problem("iss " + c.Iss)
	case c.Aud != r.clientID && !slices.Equal(toStrings(c.Aud), []string{r.clientID}):
		problem(fmt.Sprintf("aud %v", c.Aud))
	case c.Iat > now+5 || c.Iat < now-30 || c.Exp-c.Iat != 120:
		problem(fmt.Sprintf("iat %d exp %d now %d", c.Iat, c.Exp, now))
	case c.Jti == "" || c.Sub == "" || c.Sid == "":
		problem("jti, sub or sid missing")
	case !hasEvent || len(c.Events) != 1:
		problem(fmt.Sprintf("events %v", c.Events))
	case c.Nonce != nil:
		problem("a logout token must not carry a nonce")
	default:
		r.mu.Lock()
		r.got = append(r.got, c)
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}
}

func toStrings(v any) []string {
	a, _ := v.([]any)
	var out []string
	for _, x := range a {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func (r *receiver) setStatus(s int) {
	r.mu.Lock()
	r.status = s
	r.mu.Unlock()
}

// waitFor waits until the receiver accepted n tokens in all and returns their sids.
func (r *receiver) waitFor(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r.mu.Lock()
		got, problems := len(r.got), slices.Clone(r.problems)
		r.mu.Unlock()
		if len(problems) > 0 {
			t.Fatalf("the receiver refused logout tokens: %v", problems)
		}
		if got >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the receiver has %d logout tokens, want %d", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return r.sids()
}

func (r *receiver) sids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.got {
		out = append(out, c.Sid)
	}
	sort.Strings(out)
	return out
}

// rp is a registered app as its own code sees it.
type rp struct {
	conf     oauth2.Config
	verifier *oidc.IDTokenVerifier
	redirect string
}

func (e *env) rp(t *testing.T, provider *oidc.Provider, body map[string]any) *rp {
	t.Helper()
	redirect := "http://127.0.0.1:9/cb"
	body["redirect_uris"] = []string{redirect}
	clientID, secret := e.app(t, body)
	return &rp{conf: oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: provider.Endpoint(), RedirectURL: redirect,
		Scopes: []string{oidc.ScopeOpenID, "email"}}, verifier: provider.Verifier(&oidc.Config{ClientID: clientID}), redirect: redirect}
}

// signIn runs the code flow for a Gatehouse session and returns the tokens, the raw ID
// token and its sid (the Gatehouse session id).
func (a *rp) signIn(t *testing.T, ctx context.Context, e *env, session string) (*oauth2.Token, string, string) {
	t.Helper()
	v := oauth2.GenerateVerifier()
	q := e.authorize(t, a.conf.AuthCodeURL("st", oauth2.S256ChallengeOption(v)), session, a.redirect)
	tok, err := a.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := a.verifier.Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Sid string `json:"sid"`
	}
	if err := idt.Claims(&c); err != nil || c.Sid == "" {
		t.Fatalf("ID token sid: %q %v", c.Sid, err)
	}
	return tok, raw, c.Sid
}

// TestBackchannelLogout: every way a session ends reaches the apps it signed in to that
// have a back-channel logout URI, with a logout_token the app verifies against the JWKS;
// sign-out names the session, revoke-others only the others, an app without a URI gets
// nothing (no job at all), a receiver that is down gets the token once it is back, and
// exactly the ended sessions are ever announced. The ended sessions' tokens are revoked.
func TestBackchannelLogout(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d, allowPrivate)
	e := newEnv(t, srv, "opbcl")
	ctx := oidc.ClientContext(context.Background(), e.hc)
	provider, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	recv := e.receiver(t)
	withURI := e.rp(t, provider, map[string]any{"name": "Notes", "type": "confidential", "first_party": true,
		"backchannel_logout_uri": recv.srv.URL + "/backchannel"})
	recv.clientID = withURI.conf.ClientID
	noURI := e.rp(t, provider, map[string]any{"name": "Wiki", "type": "confidential", "first_party": true})
	userID, s1 := e.Person(t, "cleo@example.com")

	// Sign-out: the app learns which session ended.
	tok1, _, sid1 := withURI.signIn(t, ctx, e, s1)
	noURI.signIn(t, ctx, e, s1)
	if r := e.Do(t, http.MethodPost, "/api/v1/logout", s1, nil); r.StatusCode/100 != 2 {
		t.Fatalf("logout: %d %s", r.StatusCode, r.Body)
	}
	if got := recv.waitFor(t, 1); !slices.Equal(got, []string{sid1}) {
		t.Fatalf("after sign-out the app heard of %v, want [%s]", got, sid1)
	}
	if recv.got[0].Sub != userID.String() {
		t.Fatalf("logout token sub %s, want %s", recv.got[0].Sub, userID)
	}
	var live, jobsNoURI int
	if err := d.Admin.QueryRow(context.Background(), `SELECT count(*) FROM oidc_tokens WHERE session_id = $1 AND revoked_at IS NULL`, sid1).Scan(&live); err != nil {
		t.Fatal(err)
	}
	if live != 0 {
		t.Fatalf("%d tokens of the ended session are not revoked", live)
	}
	if a := e.introspect(t, withURI.conf.ClientID, withURI.conf.ClientSecret, tok1.AccessToken); a["active"] != false {
		t.Fatalf("introspection after sign-out: %v", a)
	}

	// Revoke-others: only the other sessions are announced.
	s2, s3, s4 := e.Login(t, "cleo@example.com", testutil.Password), e.Login(t, "cleo@example.com", testutil.Password),
		e.Login(t, "cleo@example.com", testutil.Password)
	tok2, _, sid2 := withURI.signIn(t, ctx, e, s2)
	_, _, sid3 := withURI.signIn(t, ctx, e, s3)
	_, _, sid4 := withURI.signIn(t, ctx, e, s4)
	if r := e.Do(t, http.MethodPost, "/api/v1/reauth", s2, map[string]string{"password": testutil.Password}); r.StatusCode != http.StatusOK {
		t.Fatalf("reauth: %d %s", r.StatusCode, r.Body)
	} else {
		var re struct{ Session struct{ Token string } }
		r.JSON(t, &re)
		s2 = re.Session.Token
	}
	if r := e.Do(t, http.MethodPost, "/api/v1/sessions/revoke-others", s2, nil); r.StatusCode != http.StatusOK {
		t.Fatalf("revoke others: %d %s", r.StatusCode, r.Body)
	}
	want := []string{sid1, sid3, sid4}
	sort.Strings(want)
	if got := recv.waitFor(t, 3); !slices.Equal(got, want) {
		t.Fatalf("after revoke-others the app heard of %v, want %v", got, want)
	}
	if a := e.introspect(t, withURI.conf.ClientID, withURI.conf.ClientSecret, tok2.AccessToken); a["active"] != true {
		t.Fatalf("the session kept by revoke-others lost its token: %v", a)
	}

	// The receiver is down: the delivery is retried until it is back.
	recv.setStatus(http.StatusInternalServerError)
	if r := e.Do(t, http.MethodDelete, "/api/v1/sessions/"+sid2, s2, nil); r.StatusCode/100 != 2 {
		t.Fatalf("revoke one: %d %s", r.StatusCode, r.Body)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		recv.mu.Lock()
		failed := recv.failed
		recv.mu.Unlock()
		if failed >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d attempts while the receiver was down, want at least 2", failed)
		}
	}
	recv.setStatus(http.StatusOK)
	want = append(want, sid2)
	sort.Strings(want)
	if got := recv.waitFor(t, 4); !slices.Equal(got, want) {
		t.Fatalf("after the receiver came back it holds %v, want %v", got, want)
	}

	// A session still alive is never announced, and nothing more arrives.
	s5 := e.Login(t, "cleo@example.com", testutil.Password)
	tok5, _, _ := withURI.signIn(t, ctx, e, s5)
	time.Sleep(500 * time.Millisecond)
	if got := recv.sids(); !slices.Equal(got, want) {
		t.Fatalf("the app heard of %v, want exactly the ended sessions %v", got, want)
	}
	if a := e.introspect(t, withURI.conf.ClientID, withURI.conf.ClientSecret, tok5.AccessToken); a["active"] != true {
		t.Fatalf("a live session's token: %v", a)
	}

	// The app without a URI: no job was ever enqueued for it.
	if err := d.Admin.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE kind = 'oidc.backchannel_logout'
		AND args->>'app_id' = (SELECT id::text FROM apps WHERE client_id = $1)`, noURI.conf.ClientID).Scan(&jobsNoURI); err != nil {
		t.Fatal(err)
	}
	if jobsNoURI != 0 {
		t.Fatalf("%d back-channel jobs for an app without a URI", jobsNoURI)
	}
}

// TestSessionEndStopsRefreshOnAnotherNode: two server processes on one database; a
// session ended on one makes its refresh token fail on the other within 100 ms, and the
// app's receiver hears of it.
func TestSessionEndStopsRefreshOnAnotherNode(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	one := testutil.NewServer(t, d, allowPrivate)
	two := testutil.NewServer(t, d, allowPrivate)
	e := newEnv(t, one, "opnodes")
	ctx := oidc.ClientContext(context.Background(), e.hc)
	provider, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	recv := e.receiver(t)
	app := e.rp(t, provider, map[string]any{"name": "Nodes", "type": "confidential", "first_party": true,
		"backchannel_logout_uri": recv.srv.URL + "/bcl"})
	recv.clientID = app.conf.ClientID
	_, session := e.Person(t, "dora@example.com")
	tok, _, sid := app.signIn(t, ctx, e, session)
	refresh := func(rt string) (*oauth2.Token, error) {
		return app.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
	}
	next, err := refresh(tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh while the session lives: %v", err)
	}

	// Sign out on the other node.
	r := two.Do(t, testutil.Request{Method: http.MethodPost, Host: e.Host, Path: "/api/v1/logout",
		Header: http.Header{"Authorization": {"Bearer " + session}}})
	if r.StatusCode/100 != 2 {
		t.Fatalf("logout on node two: %d %s", r.StatusCode, r.Body)
	}
	ended := time.Now()
	for {
		_, err := refresh(next.RefreshToken)
		if isOAuthError(err, "invalid_grant") {
			break
		}
		if err == nil {
			t.Fatal("node one refreshed a token of a session ended on node two")
		}
		if time.Since(ended) > 100*time.Millisecond {
			t.Fatalf("node one still answers %v 100 ms after the session ended", err)
		}
	}
	if a := e.introspect(t, app.conf.ClientID, app.conf.ClientSecret, next.AccessToken); a["active"] != false {
		t.Fatalf("node one introspects a token of an ended session as %v", a)
	}
	if got := recv.waitFor(t, 1); !slices.Equal(got, []string{sid}) {
		t.Fatalf("the app heard of %v, want [%s]", got, sid)
	}
}
