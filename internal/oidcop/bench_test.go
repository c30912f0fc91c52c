package oidcop_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// The hot paths of the OpenID Provider through the real HTTP server, one request at a
// time (ns/op is the cost of one request on an idle server), and the bounds they are
// compared with in docs/performance.md: two RS256 signatures with a 2048-bit key (what a
// token response signs: the ID token and the JWT access token) and a bare net/http handler
// answering JSON of the same size from memory over the same loopback client. No timing is
// asserted; the figures are reported as ratios to the bounds of the same run.
//
//	go test ./internal/oidcop -run '^$' -bench . -benchtime 3s

// bench is one tenant with a confidential first-party app and a signed-in user.
type bench struct {
	site                    *testutil.Site
	hc                      *http.Client
	issuer                  string
	clientID, secret        string
	session, redirect       string
	accessToken, refreshTok string
}

func newBench(b *testing.B) *bench {
	b.Helper()
	srv := testutil.NewServer(b, testutil.PackageDB(b))
	site := testutil.NewSite(b, srv, "bench")
	dialer := &net.Dialer{}
	hc := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				_, port, _ := net.SplitHostPort(addr)
				return dialer.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
			}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	b.Cleanup(hc.CloseIdleConnections)
	e := &bench{site: site, hc: hc, issuer: fmt.Sprintf("http://%s:%d", site.Host, srv.Port), redirect: "http://127.0.0.1:9/callback"}
	_, owner := site.Person(b, "owner@example.com", "owner")
	r := site.Do(b, http.MethodPost, "/api/v1/admin/apps", owner, map[string]any{"name": "Bench", "type": "confidential",
		"first_party": true, "redirect_uris": []string{e.redirect}, "grant_types": []string{"authorization_code", "refresh_token"}})
	if r.StatusCode != http.StatusCreated {
		b.Fatalf("create app: %d %s", r.StatusCode, r.Body)
	}
	var out struct {
		App struct {
			ClientID string `json:"client_id"`
		}
		ClientSecret string `json:"client_secret"`
	}
	r.JSON(b, &out)
	e.clientID, e.secret = out.App.ClientID, out.ClientSecret
	_, e.session = site.Person(b, "ada@example.com")
	tok := e.exchange(b, e.code(b))
	e.accessToken, e.refreshTok = tok.AccessToken, tok.RefreshToken
	return e
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
}

// code runs the browser's part of the flow with the session cookie and returns the code
// and its verifier.
func (e *bench) code(b *testing.B) [2]string {
	b.Helper()
	v := make([]byte, 32)
	_, _ = rand.Read(v)
	verifier := base64.RawURLEncoding.EncodeToString(v)
	sum := sha256.Sum256([]byte(verifier))
	next := e.issuer + "/oauth2/authorize?" + url.Values{"client_id": {e.clientID}, "redirect_uri": {e.redirect},
		"response_type": {"code"}, "scope": {"openid email profile"}, "state": {"s"}, "nonce": {"n"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}.Encode()
	for range 10 {
		req, _ := http.NewRequest(http.MethodGet, next, nil)
		req.Header.Set("Cookie", "__Host-gatehouse="+e.session)
		resp, err := e.hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		u, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err != nil || resp.Header.Get("Location") == "" {
			b.Fatalf("GET %s: %d without a redirect", next, resp.StatusCode)
		}
		if strings.HasPrefix(u.String(), e.redirect) {
			if u.Query().Get("code") == "" {
				b.Fatalf("authorization response without a code: %s", u)
			}
			return [2]string{u.Query().Get("code"), verifier}
		}
		next = u.String()
	}
	b.Fatal("no redirect to the app after 10 hops")
	return [2]string{}
}

func (e *bench) post(b *testing.B, path string, form url.Values) []byte {
	b.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(e.clientID), url.QueryEscape(e.secret))
	resp, err := e.hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("POST %s: %d %s", path, resp.StatusCode, body)
	}
	return body
}

func (e *bench) exchange(b *testing.B, cv [2]string) tokenResponse {
	b.Helper()
	var t tokenResponse
	body := e.post(b, "/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {cv[0]},
		"redirect_uri": {e.redirect}, "code_verifier": {cv[1]}})
	if err := json.Unmarshal(body, &t); err != nil || t.AccessToken == "" || t.IDToken == "" || t.RefreshToken == "" {
		b.Fatalf("token response: %v %s", err, body)
	}
	return t
}

// BenchmarkTokenExchange times the token endpoint's code exchange alone (client secret,
// code, PKCE, tokens stored, ID token and access token signed); the browser's part of the
// flow runs with the timer stopped.
func BenchmarkTokenExchange(b *testing.B) {
	e := newBench(b)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		cv := e.code(b)
		b.StartTimer()
		e.exchange(b, cv)
	}
}

// BenchmarkCodeFlowRound is the whole round an app's sign-in costs Gatehouse: authorize
// with the session cookie, the redirects to the code, and the exchange.
func BenchmarkCodeFlowRound(b *testing.B) {
	e := newBench(b)
	b.ReportAllocs()
	for b.Loop() {
		e.exchange(b, e.code(b))
	}
}

// BenchmarkRefresh rotates one refresh token chain: each iteration uses the token the
// previous one received.
func BenchmarkRefresh(b *testing.B) {
	e := newBench(b)
	rt := e.refreshTok
	b.ReportAllocs()
	for b.Loop() {
		var t tokenResponse
		body := e.post(b, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		if err := json.Unmarshal(body, &t); err != nil || t.RefreshToken == "" || t.RefreshToken == rt {
			b.Fatalf("refresh: %v %s", err, body)
		}
		rt = t.RefreshToken
	}
}

func BenchmarkUserinfo(b *testing.B) {
	e := newBench(b)
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodGet, e.issuer+"/oauth2/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+e.accessToken)
		resp, err := e.hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("userinfo: %d", resp.StatusCode)
		}
	}
}

func BenchmarkIntrospect(b *testing.B) {
	e := newBench(b)
	b.ReportAllocs()
	for b.Loop() {
		if body := e.post(b, "/oauth2/introspect", url.Values{"token": {e.accessToken}}); !strings.Contains(string(body), `"active":true`) {
			b.Fatalf("introspection: %s", body)
		}
	}
}

// BenchmarkBareTwoSignatures is the bound of the token endpoint: the two RS256 signatures
// (2048-bit key, go-jose as the library uses) of claims the size of an ID token and a JWT
// access token, with their JSON encoding. Nothing else.
func BenchmarkBareTwoSignatures(b *testing.B) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().Unix()
	id := map[string]any{"iss": "http://bench.localhost:8080", "sub": "5a6b7c8d-1e2f-4a5b-8c9d-0e1f2a3b4c5d", "aud": []string{"client"},
		"exp": now + 3600, "iat": now, "auth_time": now, "nonce": "n", "acr": "urn:gatehouse:aal1", "amr": []string{"pwd"},
		"azp": "client", "at_hash": "x0Zb2yZxnYbq7Q3tJqZ8Bw", "sid": "0b0f6c1e-6a8e-4f53-9d7e-1d2b7c3a4e5f",
		"email": "ada@example.com", "email_verified": true, "tenant": "bench", "roles": []string{}}
	at := map[string]any{"iss": "http://bench.localhost:8080", "sub": "5a6b7c8d-1e2f-4a5b-8c9d-0e1f2a3b4c5d", "aud": []string{"client"},
		"exp": now + 300, "iat": now, "nbf": now, "jti": "1d2b7c3a-4e5f-4a5b-8c9d-0e1f2a3b4c5d", "client_id": "client",
		"scope": "openid email profile offline_access", "tenant": "bench", "sid": "0b0f6c1e-6a8e-4f53-9d7e-1d2b7c3a4e5f"}
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range []map[string]any{id, at} {
			payload, err := json.Marshal(c)
			if err != nil {
				b.Fatal(err)
			}
			jws, err := signer.Sign(payload)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := jws.CompactSerialize(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkBareHandler is the bound of userinfo and introspection, as for the session
// check: a net/http handler on loopback answering the userinfo JSON from a map in memory,
// through the same client.
func BenchmarkBareHandler(b *testing.B) {
	const tok = "bare-token"
	body, _ := json.Marshal(map[string]any{"sub": "5a6b7c8d-1e2f-4a5b-8c9d-0e1f2a3b4c5d", "email": "ada@example.com",
		"email_verified": true, "name": "Ada", "tenant": "bench", "roles": []string{}})
	answers := map[string][]byte{tok: body}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		a, ok := answers[t]
		if !ok {
			http.Error(w, `{"error":"invalid_token"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(a)
	})}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}}
	b.Cleanup(hc.CloseIdleConnections)
	target := "http://" + ln.Addr().String() + "/oauth2/userinfo"
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodGet, target, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("bare: %d", resp.StatusCode)
		}
	}
}
