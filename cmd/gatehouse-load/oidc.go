package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// The OpenID Provider under load: each load tenant gets a confidential first-party app,
// registered through the admin API by the tenant's admin (declared in the tenant file by
// setup, given a password through "forgot password" here), and the users signed up
// during preparation sign in to it with their session cookie.

// loadRedirect is the load app's redirect URI: never dialled, the tool reads the code
// from the Location header.
const loadRedirect = "http://127.0.0.1:9/oidc/callback"

type oidcApp struct{ slug, clientID, secret string }

// pendingCode is an authorization code waiting for the token endpoint (valid 60 s).
type pendingCode struct {
	app            *oidcApp
	code, verifier string
	at             time.Time
}

// issued is what a token response gave one user of one app.
type issued struct {
	app                  *oidcApp
	access, refresh, idt string
}

// registerApps gives every load tenant its load app.
func (w *workload) registerApps(ctx context.Context, conc int) error {
	w.apps = map[string]*oidcApp{}
	var mu sync.Mutex
	var firstErr error
	jobs := make(chan string)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for slug := range jobs {
				a, err := w.registerApp(ctx, slug)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("tenant %s: %w", slug, err)
				}
				if err == nil {
					w.apps[slug] = a
				}
				mu.Unlock()
			}
		})
	}
	for _, slug := range w.tenants {
		jobs <- slug
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("registering the load apps (was `gatehouse tenants apply` run on the setup files?): %w", firstErr)
	}
	return nil
}

// registerApp signs the tenant's admin in and creates the app.
func (w *workload) registerApp(ctx context.Context, slug string) (*oidcApp, error) {
	admin, err := w.adminLogin(ctx, slug)
	if err != nil {
		return nil, err
	}
	r, err := w.g.call(call{method: "POST", slug: slug, path: "/api/v1/admin/apps", bearer: *admin.token.Load(), json: map[string]any{
		"name": "Load app", "type": "confidential", "first_party": true, "redirect_uris": []string{loadRedirect},
		"grant_types": []string{"authorization_code", "refresh_token"}, "allowed_scopes": []string{"openid", "email", "profile", "offline_access"},
		// An hour, so that the tokens of the exchange run outlive the userinfo and
		// introspection runs.
		"access_token_ttl_seconds": 3600}}, 201)
	if err != nil {
		return nil, err
	}
	var out struct {
		App struct {
			ClientID string `json:"client_id"`
		} `json:"app"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil || out.App.ClientID == "" || out.ClientSecret == "" {
		return nil, fmt.Errorf("app creation answer without a client id or secret: %v", err)
	}
	return &oidcApp{slug: slug, clientID: out.App.ClientID, secret: out.ClientSecret}, nil
}

// authorizeCode is the browser's part of the code flow for a signed-in user: the
// authorization request with PKCE S256 and the session cookie, then every redirect
// (through the sign-in bridge) until the one to the app, which carries the code.
func (w *workload) authorizeCode(u *user) (pendingCode, error) {
	app := w.apps[u.slug]
	v := make([]byte, 32)
	_, _ = rand.Read(v)
	p := pendingCode{app: app, verifier: base64.RawURLEncoding.EncodeToString(v)}
	sum := sha256.Sum256([]byte(p.verifier))
	next := "/oauth2/authorize?" + url.Values{"client_id": {app.clientID}, "redirect_uri": {loadRedirect}, "response_type": {"code"},
		"scope": {"openid email profile"}, "state": {"load"}, "nonce": {"load"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}.Encode()
	cookie := "__Host-gatehouse=" + *u.token.Load()
	for range 8 {
		c := call{method: "GET", slug: u.slug, path: next, cookie: cookie}
		r, err := w.g.do(c)
		if err != nil {
			return p, fmt.Errorf("GET %s: %w", strings.SplitN(next, "?", 2)[0], err)
		}
		loc := r.header.Get("Location")
		if r.status/100 != 3 || loc == "" {
			_, err := expect(r, nil, call{method: "GET", path: strings.SplitN(next, "?", 2)[0]}, 302)
			return p, err
		}
		if strings.HasPrefix(loc, loadRedirect) {
			lu, err := url.Parse(loc)
			if err != nil || lu.Query().Get("code") == "" || lu.Query().Get("state") != "load" {
				return p, fmt.Errorf("authorization response without a code: %v", lu.Query().Get("error"))
			}
			p.code, p.at = lu.Query().Get("code"), time.Now()
			return p, nil
		}
		lu, err := url.Parse(loc)
		if err != nil || (lu.Host != "" && lu.Host != w.g.host(u.slug)) {
			return p, fmt.Errorf("redirect off the tenant host during authorization: %q", lu.Host)
		}
		next = lu.RequestURI()
	}
	return p, fmt.Errorf("no redirect to the app after 8 hops")
}

// tokenCall posts to the token endpoint with client_secret_basic.
func (w *workload) tokenCall(app *oidcApp, form url.Values) (issued, error) {
	c := call{method: "POST", slug: app.slug, path: "/oauth2/token", form: form,
		header: http.Header{"Authorization": {basicAuth(app)}}}
	r, err := w.g.call(c, 200)
	if err != nil {
		return issued{}, err
	}
	var t struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		IDToken      string `json:"id_token"`
	}
	if err := json.Unmarshal(r.body, &t); err != nil || t.AccessToken == "" || t.RefreshToken == "" || t.IDToken == "" {
		return issued{}, fmt.Errorf("token response without access, refresh or ID token: %v", err)
	}
	return issued{app: app, access: t.AccessToken, refresh: t.RefreshToken, idt: t.IDToken}, nil
}

func basicAuth(app *oidcApp) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(app.clientID)+":"+url.QueryEscape(app.secret)))
}

func (w *workload) exchange(p pendingCode) (issued, error) {
	return w.tokenCall(p.app, url.Values{"grant_type": {"authorization_code"}, "code": {p.code},
		"redirect_uri": {loadRedirect}, "code_verifier": {p.verifier}})
}

func (w *workload) refresh(t issued) (issued, error) {
	return w.tokenCall(t.app, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {t.refresh}})
}

// userinfo and introspect are as lean as checkSession (no forwarded address, the body
// read once), so that the comparison with the bare handler is not flattened by the client.
func (g *gatehouse) userinfo(slug, access string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, g.base.String()+"/oauth2/userinfo", nil)
	if err != nil {
		return nil, err
	}
	req.Host = g.host(slug)
	req.Header.Set("Authorization", "Bearer "+access)
	return g.lean(req, "GET /oauth2/userinfo", nil)
}

var activeTrue = []byte(`"active":true`)

func (g *gatehouse) introspect(app *oidcApp, access string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodPost, g.base.String()+"/oauth2/introspect", strings.NewReader("token="+url.QueryEscape(access)))
	if err != nil {
		return nil, err
	}
	req.Host = g.host(app.slug)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", basicAuth(app))
	return g.lean(req, "POST /oauth2/introspect", activeTrue)
}

// lean sends req and wants a 200 whose body contains must (when set).
func (g *gatehouse) lean(req *http.Request, op string, must []byte) ([]byte, error) {
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &statusErr{op: op, status: resp.StatusCode}
	}
	if must != nil && !bytes.Contains(b, must) {
		return nil, fmt.Errorf("%s: the answer lacks %s", op, must)
	}
	return b, nil
}

// adminLogin sets the tenant admin's password by mail (once per run: a second reset mail
// within minutes may be held back by the reset limits) and signs the admin in (a fresh
// session, which also satisfies the step-up of admin changes).
func (w *workload) adminLogin(ctx context.Context, slug string) (*user, error) {
	admin := &user{slug: slug, email: adminEmail(slug), password: loadPassword}
	if _, done := w.adminPassword.Load(slug); done {
		return admin, w.login(admin)
	}
	wait := w.mail.expect(admin.email)
	if _, err := w.g.call(call{method: "POST", slug: slug, path: "/api/v1/password/forgot", json: map[string]string{"email": admin.email}}, 202); err != nil {
		w.mail.forget(admin.email)
		return nil, err
	}
	link, err := wait(ctx, 60*time.Second)
	if err != nil {
		return nil, err
	}
	lu, err := url.Parse(link)
	if err != nil || lu.Query().Get("token") == "" {
		return nil, fmt.Errorf("reset mail without a token link: %q", link)
	}
	if _, err := w.g.call(call{method: "POST", slug: slug, path: "/api/v1/password/reset",
		json: map[string]string{"token": lu.Query().Get("token"), "password": admin.password}}, 200); err != nil {
		return nil, err
	}
	w.adminPassword.Store(slug, true)
	if err := w.login(admin); err != nil {
		return nil, err
	}
	return admin, nil
}
