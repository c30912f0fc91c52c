// Package oidctest is an OpenID Provider for tests of Gatehouse's OIDC SSO connections
// (and the dev OIDC IdP of `gatehouse dev`):
// zitadel/oidc's op package over its example in-memory storage, with a login form, people
// with chosen claims (hd, tid, groups, email_verified), and a hook that tampers with the
// ID token the token endpoint returns (claims, another key, alg none) for the negative
// tests. It shares no code with the client side in internal/sso.
package oidctest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// Person is someone who can sign in at the IdP.
type Person struct {
	Sub           string
	Username      string
	Password      string
	Email         string
	EmailVerified bool
	FirstName     string
	LastName      string
	// Claims are added to the ID token and userinfo (hd, tid, groups, …).
	Claims map[string]any
}

// Signing is how a tampered ID token is signed.
type Signing int

const (
	SignOwnKey   Signing = iota // the IdP's published key
	SignOtherKey                // a key the IdP never published
	SignNone                    // alg none, no signature
)

// Tamper rewrites the ID token the token endpoint returns: the claims are changed in
// place and the token signed as Signing says.
type Tamper struct {
	Claims  func(map[string]any)
	Signing Signing
}

// IdP is a running OpenID Provider.
type IdP struct {
	Issuer   string
	Server   *httptest.Server
	ClientID string
	Secret   string

	st      *store
	clients map[string]*storage.Client
	mu      sync.Mutex
	tamper  *Tamper
	tokens  int // token responses served
}

// New starts an IdP over TLS with one confidential client (redirectURIs registered; see
// Register) and the people given.
func New(redirectURIs []string, people ...Person) (*IdP, error) {
	return start(true, redirectURIs, people)
}

// NewPlain is New over plain HTTP on loopback (for Chromium, which does not trust the test
// certificate; the relying party must allow private http addresses).
func NewPlain(redirectURIs []string, people ...Person) (*IdP, error) {
	return start(false, redirectURIs, people)
}

func start(useTLS bool, redirectURIs []string, people []Person) (*IdP, error) {
	var handler http.Handler
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	idp, h, err := Build(srv.URL, redirectURIs, people)
	if err != nil {
		srv.Close()
		return nil, err
	}
	idp.Server, handler = srv, h
	return idp, nil
}

// Build makes the provider at issuer without serving it: the IdP (its client ID and
// secret, Register, SetTamper) and its handler (for `gatehouse dev`'s OIDC IdP, which
// listens on an address of its own).
func Build(issuer string, redirectURIs []string, people []Person) (*IdP, http.Handler, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	secret := make([]byte, 24)
	_, _ = rand.Read(secret)
	idp := &IdP{Issuer: issuer, ClientID: "gatehouse-" + base64.RawURLEncoding.EncodeToString(secret[:6]), Secret: base64.RawURLEncoding.EncodeToString(secret)}
	us := users{byID: map[string]*storage.User{}, extra: map[string]map[string]any{}}
	for _, p := range people {
		u := &storage.User{ID: p.Sub, Username: p.Username, Password: p.Password, FirstName: p.FirstName, LastName: p.LastName,
			Email: p.Email, EmailVerified: p.EmailVerified, PreferredLanguage: language.English}
		us.byID[p.Sub] = u
		us.extra[p.Sub] = p.Claims
	}
	idp.clients = map[string]*storage.Client{idp.ClientID: storage.WebClient(idp.ClientID, idp.Secret, redirectURIs...)}
	idp.st = &store{Storage: storage.NewStorageWithClients(us, idp.clients), key: key,
		kid: "k-" + base64.RawURLEncoding.EncodeToString(secret[6:12]), users: us}
	h, err := idp.handler()
	if err != nil {
		return nil, nil, err
	}
	return idp, h, nil
}

// Register sets the client's redirect URIs (before the first sign-in: the relying party's
// redirect URI is known once its connection exists).
func (i *IdP) Register(redirectURIs ...string) {
	i.mu.Lock()
	i.clients[i.ClientID] = storage.WebClient(i.ClientID, i.Secret, redirectURIs...)
	i.mu.Unlock()
}

// Close stops the test server (New, NewPlain).
func (i *IdP) Close() {
	if i.Server != nil {
		i.Server.Close()
	}
}

// SetTamper makes the following token responses carry a tampered ID token (nil: none).
func (i *IdP) SetTamper(t *Tamper) {
	i.mu.Lock()
	i.tamper = t
	i.mu.Unlock()
}

// TokenResponses counts the token endpoint's successful answers.
func (i *IdP) TokenResponses() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.tokens
}

func (i *IdP) handler() (http.Handler, error) {
	h, err := Handler(i.Issuer, i.st)
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/oauth/token" {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if rec.Code == http.StatusOK {
			i.mu.Lock()
			i.tokens++
			t := i.tamper
			i.mu.Unlock()
			if t != nil {
				if b, err := i.rewrite(body, t); err == nil {
					body = b
				}
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	}), nil
}

func (i *IdP) rewrite(body []byte, t *Tamper) ([]byte, error) {
	var resp map[string]any
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, err
	}
	raw, _ := resp["id_token"].(string)
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("no id_token")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	claims := map[string]any{}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, err
	}
	if t.Claims != nil {
		t.Claims(claims)
	}
	payload, err = json.Marshal(claims)
	if err != nil {
		return nil, err
	}
	switch t.Signing {
	case SignNone:
		hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"` + i.st.kid + `"}`))
		resp["id_token"] = hdr + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
	default:
		key, kid := i.st.key, i.st.kid
		if t.Signing == SignOtherKey {
			if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				return nil, err
			}
		}
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
			(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
		if err != nil {
			return nil, err
		}
		jws, err := signer.Sign(payload)
		if err != nil {
			return nil, err
		}
		if resp["id_token"], err = jws.CompactSerialize(); err != nil {
			return nil, err
		}
	}
	return json.Marshal(resp)
}

// Handler is the provider over st with its login form at /login/username: a page with
// username and password (the test client posts it directly).
func Handler(issuer string, st op.Storage) (http.Handler, error) {
	key := sha256.Sum256([]byte(issuer))
	p, err := op.NewProvider(&op.Config{CryptoKey: key, CodeMethodS256: true, AuthMethodPost: true,
		SupportedUILocales: []language.Tag{language.English}}, st, op.StaticIssuer(issuer), op.WithAllowInsecure())
	if err != nil {
		return nil, err
	}
	auth, ok := st.(interface {
		CheckUsernamePassword(username, password, id string) error
	})
	if !ok {
		return nil, fmt.Errorf("oidctest: storage has no CheckUsernamePassword")
	}
	callback := op.AuthCallbackURL(p)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/username", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = loginPage.Execute(w, map[string]string{"ID": r.URL.Query().Get("authRequestID")})
	})
	mux.Handle("POST /login/username", op.NewIssuerInterceptor(p.IssuerFromRequest).HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		id := r.FormValue("id")
		if err := auth.CheckUsernamePassword(r.FormValue("username"), r.FormValue("password"), id); err != nil {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusUnauthorized)
			_ = loginPage.Execute(w, map[string]string{"ID": id, "Error": "Wrong username or password."})
			return
		}
		http.Redirect(w, r, callback(r.Context(), id), http.StatusFound)
	}))
	mux.Handle("/", p)
	return mux, nil
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>OpenID Provider — sign in</title></head><body>
<h1>OpenID Provider (test and dev)</h1>{{if .Error}}<p id="error">{{.Error}}</p>{{end}}
<form method="post" action="/login/username"><input type="hidden" name="id" value="{{.ID}}">
<label>Username <input id="username" name="username" autocomplete="username"></label>
<label>Password <input id="password" name="password" type="password"></label>
<button id="submit" type="submit">Sign in</button></form></body></html>`))

// users is the example storage's UserStore over the people given.
type users struct {
	byID  map[string]*storage.User
	extra map[string]map[string]any
}

func (u users) GetUserByID(id string) *storage.User { return u.byID[id] }
func (u users) GetUserByUsername(name string) *storage.User {
	for _, x := range u.byID {
		if x.Username == name {
			return x
		}
	}
	return nil
}
func (u users) ExampleClientID() string { return "service" }

// store is the example storage with this IdP's own signing key (so tampered tokens can
// be signed with it) and the people's extra claims.
type store struct {
	*storage.Storage
	key   *rsa.PrivateKey
	kid   string
	users users
}

type signingKey struct {
	key *rsa.PrivateKey
	kid string
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.kid }

type publicKey struct{ signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }

func (s *store) SigningKey(context.Context) (op.SigningKey, error) {
	return signingKey{s.key, s.kid}, nil
}

func (s *store) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *store) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{signingKey{s.key, s.kid}}}, nil
}

// SetUserinfoFromScopes adds the person's extra claims (to the ID token and userinfo).
func (s *store) SetUserinfoFromScopes(ctx context.Context, ui *oidc.UserInfo, userID, clientID string, scopes []string) error {
	if err := s.Storage.SetUserinfoFromScopes(ctx, ui, userID, clientID, scopes); err != nil {
		return err
	}
	s.addExtra(ui, userID)
	return nil
}

// SetUserinfoFromToken is the userinfo endpoint: the example's claims plus the extra ones.
func (s *store) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, ui, tokenID, subject, origin); err != nil {
		return err
	}
	s.addExtra(ui, ui.Subject)
	return nil
}

func (s *store) addExtra(ui *oidc.UserInfo, userID string) {
	for k, v := range s.users.extra[userID] {
		ui.AppendClaims(k, v)
	}
}

// Compile-time check: the example storage plus overrides is an op.Storage.
var _ op.Storage = (*store)(nil)
