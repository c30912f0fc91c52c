// Package devapp is the demo app of `gatehouse dev`: a tiny relying party that signs its
// users in through a Gatehouse tenant by OpenID Connect, the way any customer's app would.
// It uses only github.com/coreos/go-oidc/v3 and golang.org/x/oauth2 (and the standard
// library) — nothing of Gatehouse — so its code is also an example to copy:
//
//   - "Sign in with Acme": authorization code flow with PKCE S256 (a public client, no
//     secret), state and nonce checked, iss checked (RFC 9207), the ID token verified against
//     the issuer's JWKS, userinfo read;
//   - "Sensitive action": a new authorization with max_age=0; on return the app accepts the
//     action only when auth_time is newer than the moment it asked;
//   - "Sign out": local sign-out, then RP-initiated logout when the provider has an
//     end_session_endpoint;
//   - POST /backchannel-logout: OpenID Back-Channel Logout 1.0; a verified logout_token ends
//     the matching local sessions, and the next page load says so.
//
// Sessions are kept in memory, keyed by a random cookie.
package devapp

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Paths of the demo app; the redirect, post-logout and back-channel URIs registered for it
// are its base URL followed by these.
const (
	CallbackPath    = "/callback"
	SignedOutPath   = "/signed-out"
	BackchannelPath = "/backchannel-logout"
)

// URIs returns the redirect URI, post-logout redirect URI and back-channel logout URI of a
// demo app served at base (such as http://127.0.0.1:8082).
func URIs(base string) (redirect, postLogout, backchannel string) {
	base = strings.TrimSuffix(base, "/")
	return base + CallbackPath, base + SignedOutPath, base + BackchannelPath
}

// Deps are what the demo app needs.
type Deps struct {
	Issuer   string // the tenant's issuer, e.g. http://acme.localhost:8080
	ClientID string // a public client: PKCE, no secret
	BaseURL  string // where browsers reach the app, e.g. http://127.0.0.1:8082
	Provider string // the name on the button: "Sign in with Acme"
	// HTTP reaches the issuer (discovery, JWKS, token, userinfo); nil: http.DefaultClient.
	HTTP   *http.Client
	Logger *slog.Logger
	Now    func() time.Time // nil: time.Now
}

// App is the demo app; Handler serves it.
type App struct {
	d       Deps
	now     func() time.Time
	pages   *template.Template
	formAct string // the issuer's origin, where the sign-out form may be redirected

	mu       sync.Mutex
	rp       *relyingParty // discovered on first use (the provider may start after the app)
	sessions map[string]*session
}

//go:embed templates/*.html static/*.css
var files embed.FS

// New checks d and builds the app. It does not contact the issuer: discovery happens on
// the first request that needs it, so the app may start before the provider.
func New(d Deps) (*App, error) {
	iss, err := url.Parse(d.Issuer)
	if err != nil || iss.Host == "" || (iss.Scheme != "http" && iss.Scheme != "https") {
		return nil, fmt.Errorf("devapp: issuer %q is not an absolute http(s) URL", d.Issuer)
	}
	if b, err := url.Parse(d.BaseURL); err != nil || b.Host == "" || (b.Scheme != "http" && b.Scheme != "https") {
		return nil, fmt.Errorf("devapp: base URL %q is not an absolute http(s) URL", d.BaseURL)
	}
	if d.ClientID == "" {
		return nil, errors.New("devapp: no client id")
	}
	d.BaseURL = strings.TrimSuffix(d.BaseURL, "/")
	if d.Provider == "" {
		d.Provider = iss.Hostname()
	}
	if d.HTTP == nil {
		d.HTTP = http.DefaultClient
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	a := &App{d: d, now: d.Now, sessions: map[string]*session{}, formAct: iss.Scheme + "://" + iss.Host}
	if a.now == nil {
		a.now = time.Now
	}
	if a.pages, err = template.ParseFS(files, "templates/*.html"); err != nil {
		return nil, fmt.Errorf("devapp: templates: %w", err)
	}
	return a, nil
}

// Handler serves the demo app's pages and endpoints.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("GET /login", a.login)
	mux.HandleFunc("GET /sensitive", a.sensitive)
	mux.HandleFunc("GET "+CallbackPath, a.callback)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("GET "+SignedOutPath, a.signedOut)
	mux.HandleFunc("POST "+BackchannelPath, a.backchannel)
	mux.HandleFunc("GET /style.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		http.ServeFileFS(w, r, files, "static/style.css")
	})
	return a.headers(mux)
}

// headers sets a strict CSP (no script at all; forms post here, and the sign-out form's
// redirect goes to the issuer) and the usual hardening headers.
func (a *App) headers(next http.Handler) http.Handler {
	csp := "default-src 'none'; style-src 'self'; form-action 'self' " + a.formAct +
		"; frame-ancestors 'none'; base-uri 'none'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// relyingParty is the provider as discovered, and the OAuth 2 configuration.
type relyingParty struct {
	provider   *oidc.Provider
	verifier   *oidc.IDTokenVerifier
	oauth      oauth2.Config
	endSession string // end_session_endpoint ("" when the provider has none)
	issParam   bool   // authorization_response_iss_parameter_supported
}

// ctx carries the app's HTTP client to go-oidc and x/oauth2.
func (a *App) ctx(ctx context.Context) context.Context { return oidc.ClientContext(ctx, a.d.HTTP) }

// relyingParty discovers the provider once; a failure is tried again on the next request.
func (a *App) relyingParty(ctx context.Context) (*relyingParty, error) {
	a.mu.Lock()
	rp := a.rp
	a.mu.Unlock()
	if rp != nil {
		return rp, nil
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	provider, err := oidc.NewProvider(a.ctx(dctx), a.d.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discovery of %s: %w", a.d.Issuer, err)
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
		ISS        bool   `json:"authorization_response_iss_parameter_supported"`
	}
	if err := provider.Claims(&meta); err != nil {
		return nil, fmt.Errorf("discovery of %s: %w", a.d.Issuer, err)
	}
	redirect, _, _ := URIs(a.d.BaseURL)
	endpoint := provider.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInParams // a public client: client_id in the form, no secret
	rp = &relyingParty{provider: provider, verifier: provider.Verifier(&oidc.Config{ClientID: a.d.ClientID, Now: a.now}),
		endSession: meta.EndSession, issParam: meta.ISS,
		oauth: oauth2.Config{ClientID: a.d.ClientID, Endpoint: endpoint, RedirectURL: redirect,
			Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}}
	a.mu.Lock()
	if a.rp == nil {
		a.rp = rp
	}
	rp = a.rp
	a.mu.Unlock()
	return rp, nil
}

func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// BindAddress listens on addr and returns the listener and the base URL browsers use for
// it: an unspecified host (":8082", "0.0.0.0:8082") becomes 127.0.0.1, so redirect URIs
// stay on loopback, which providers accept over http (RFC 8252).
func BindAddress(addr string) (net.Listener, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	tcp := ln.Addr().(*net.TCPAddr)
	host := tcp.IP.String()
	switch {
	case tcp.IP == nil || tcp.IP.IsUnspecified():
		host = "127.0.0.1"
	case tcp.IP.To4() == nil:
		host = "[" + host + "]"
	}
	return ln, fmt.Sprintf("http://%s:%d", host, tcp.Port), nil
}

// LoopbackClient is an HTTP client that dials 127.0.0.1 for localhost and every
// *.localhost host (RFC 6761: they are loopback names; browsers resolve them so, Go's
// resolver does not), keeping the port. Other hosts resolve as usual.
func LoopbackClient() *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err == nil && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return dialer.DialContext(ctx, network, addr)
	}
	tr.Proxy = nil
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}
}
