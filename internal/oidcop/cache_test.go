package oidcop_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// userinfo asks issuer's userinfo endpoint with an access token: status and claims.
func (e *env) userinfo(t *testing.T, issuer, accessToken string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, issuer+"/oauth2/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

// within polls cond until it holds, failing the test when bound passes first.
func within(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > bound {
			t.Fatalf("%s: still not so %v after the change", what, bound)
		}
	}
}

// TestTokenCacheAcrossNodes: userinfo and introspection answer from each node's cache of
// verified access tokens, and every change that ends or alters what they answer reaches
// the cache of another node within the bound of the session cache (100 ms): a user's
// name changed, an access token revoked (RFC 7009), and the Gatehouse session ended.
func TestTokenCacheAcrossNodes(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	one := testutil.NewServer(t, d)
	// One deployment: one public origin (as behind a load balancer, the same issuer on each
	// node) and one secret key (the signing keys open on each node).
	two := testutil.NewServer(t, d, testutil.WithConfig(func(c *config.Config) {
		c.PublicPort, c.SecretKey = one.Port, one.Config.SecretKey
	}))
	e := newEnv(t, one, "opcache")
	onNodeTwo := fmt.Sprintf("http://%s:%d", e.Host, two.Port)
	ctx := oidc.ClientContext(context.Background(), e.hc)
	provider, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	app := e.rp(t, provider, map[string]any{"name": "Cached", "type": "confidential", "first_party": true})
	app.conf.Scopes = append(app.conf.Scopes, "profile")
	userID, session := e.Person(t, "erin@example.com")
	if _, err := d.Admin.Exec(context.Background(), `UPDATE users SET name = 'Erin' WHERE id = $1`, userID); err != nil {
		t.Fatal(err)
	}
	tok, _, _ := app.signIn(t, ctx, e, session)
	active := func(issuer, access string) bool {
		at := *e
		at.issuer = issuer
		a := at.introspect(t, app.conf.ClientID, app.conf.ClientSecret, access)
		return a["active"] == true
	}

	if !active(onNodeTwo, tok.AccessToken) {
		t.Fatal("node two does not know node one's access token")
	}

	// Served, then served again from the cache (one entry, no second read needed).
	for range 3 {
		status, info := e.userinfo(t, e.issuer, tok.AccessToken)
		if status != http.StatusOK || info["sub"] != userID.String() || info["email"] != "erin@example.com" || info["name"] != "Erin" {
			t.Fatalf("userinfo on node one: %d %v", status, info)
		}
		if a := e.introspect(t, app.conf.ClientID, app.conf.ClientSecret, tok.AccessToken); a["active"] != true || a["sub"] != userID.String() ||
			a["client_id"] != app.conf.ClientID || a["email"] != "erin@example.com" {
			t.Fatalf("introspection on node one: %v", a)
		}
	}
	if tokens, apps := one.App.OIDC.CachedTokens(); tokens != 1 || apps != 1 {
		t.Fatalf("node one caches %d tokens and %d apps, want 1 and 1", tokens, apps)
	}

	// The user changes (outside any node): node one's userinfo says so at once.
	if _, err := d.Admin.Exec(context.Background(), `UPDATE users SET name = 'Erin Changed' WHERE id = $1`, userID); err != nil {
		t.Fatal(err)
	}
	within(t, 100*time.Millisecond, "userinfo after the user's name changed", func() bool {
		_, info := e.userinfo(t, e.issuer, tok.AccessToken)
		return info["name"] == "Erin Changed"
	})

	// The app revokes the access token on node two: node one stops answering for it.
	two2 := *e
	two2.issuer = onNodeTwo
	if resp, b := two2.post(t, "/oauth2/revoke", app.conf.ClientID, app.conf.ClientSecret,
		url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke on node two: %d %s", resp.StatusCode, b)
	}
	within(t, 100*time.Millisecond, "introspection on node one after a revocation on node two", func() bool {
		return !active(e.issuer, tok.AccessToken)
	})
	if status, _ := e.userinfo(t, e.issuer, tok.AccessToken); status == http.StatusOK {
		t.Fatal("node one's userinfo answers for an access token revoked on node two")
	}

	// A fresh access token, cached on node one; the session ends on node two.
	next, err := app.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if !active(e.issuer, next.AccessToken) {
		t.Fatal("the refreshed access token is not active on node one")
	}
	if status, _ := e.userinfo(t, e.issuer, next.AccessToken); status != http.StatusOK {
		t.Fatalf("userinfo of the refreshed token on node one: %d", status)
	}
	r := two.Do(t, testutil.Request{Method: http.MethodPost, Host: e.Host, Path: "/api/v1/logout",
		Header: http.Header{"Authorization": {"Bearer " + session}}})
	if r.StatusCode/100 != 2 {
		t.Fatalf("logout on node two: %d %s", r.StatusCode, r.Body)
	}
	within(t, 100*time.Millisecond, "introspection on node one after the session ended on node two", func() bool {
		return !active(e.issuer, next.AccessToken)
	})
	if status, _ := e.userinfo(t, e.issuer, next.AccessToken); status == http.StatusOK {
		t.Fatal("node one's userinfo answers for a token of a session ended on node two")
	}
	if tokens, _ := one.App.OIDC.CachedTokens(); tokens != 0 {
		t.Fatalf("node one still caches %d tokens of an ended session", tokens)
	}
}

// TestTokenCacheNeverOutlivesToken: a cached access token stops at its own expiry.
func TestTokenCacheNeverOutlivesToken(t *testing.T) {
	t.Parallel()
	clk := testutil.NewClock()
	srv := testutil.NewServer(t, testutil.PackageDB(t), testutil.WithClock(clk))
	e := newEnv(t, srv, "opcachexp")
	id, secret := e.app(t, map[string]any{"name": "Batch", "type": "confidential", "grant_types": []string{"client_credentials"},
		"access_token_ttl_seconds": 120})
	access, _ := e.machineToken(t, id, secret)
	for range 2 {
		if a := e.introspect(t, id, secret, access); a["active"] != true {
			t.Fatalf("a fresh machine token: %v", a)
		}
	}
	clk.Advance(119 * time.Second)
	if a := e.introspect(t, id, secret, access); a["active"] != true {
		t.Fatalf("a machine token a second before its expiry: %v", a)
	}
	clk.Advance(2 * time.Second)
	if a := e.introspect(t, id, secret, access); a["active"] != false {
		t.Fatalf("a cached machine token after its expiry: %v", a)
	}
}

// TestCodeRaceOneWinner: a code presented twice at once (the exchange marks it used in the
// transaction that records the tokens) gives tokens at most once, and the loser's
// presentation revokes what the winner got.
func TestCodeRaceOneWinner(t *testing.T) {
	t.Parallel()
	srv := testutil.NewServer(t, testutil.PackageDB(t))
	e := newEnv(t, srv, "opcoderace")
	ctx := oidc.ClientContext(context.Background(), e.hc)
	provider, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	app := e.rp(t, provider, map[string]any{"name": "Race", "type": "confidential", "first_party": true})
	_, session := e.Person(t, "race@example.com")
	for range 3 {
		v := oauth2.GenerateVerifier()
		q := e.authorize(t, app.conf.AuthCodeURL("st", oauth2.S256ChallengeOption(v)), session, app.redirect)
		type result struct {
			tok *oauth2.Token
			err error
		}
		results := make(chan result, 2)
		for range 2 {
			go func() {
				tok, err := app.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v))
				results <- result{tok, err}
			}()
		}
		var won []*oauth2.Token
		for range 2 {
			r := <-results
			switch {
			case r.err == nil:
				won = append(won, r.tok)
			case !isOAuthError(r.err, "invalid_grant"):
				t.Fatalf("the second presentation of a code: %v", r.err)
			}
		}
		if len(won) != 1 {
			t.Fatalf("%d exchanges of one code succeeded, want exactly 1", len(won))
		}
		if a := e.introspect(t, app.conf.ClientID, app.conf.ClientSecret, won[0].AccessToken); a["active"] != false {
			t.Fatalf("the winner's access token after the code was presented again: %v", a)
		}
		if _, err := app.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: won[0].RefreshToken}).Token(); !isOAuthError(err, "invalid_grant") {
			t.Fatalf("the winner's refresh token after the code was presented again: %v", err)
		}
	}
}
