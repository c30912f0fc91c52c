package devapp_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/devapp"
)

// issuer is a test OpenID Provider for the demo app's unit tests: discovery, a JWKS with
// one RSA key, a token endpoint that checks PKCE and answers with the ID token the test
// put behind a code, and userinfo. The real provider is tested against the demo app in
// internal/cli (TestBrowserDemoApp).
type issuer struct {
	srv *httptest.Server
	key *rsa.PrivateKey
	mu  sync.Mutex
	// codes: code → the PKCE challenge it was issued for and the ID token claims.
	codes map[string]issued
	// endSession: the path discovery names as end_session_endpoint ("" none); /logout is
	// served, any other path answers 404.
	endSession string
}

type issued struct {
	challenge string
	claims    map[string]any
}

const clientID = "app_demo"

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{key: key, codes: map[string]issued{}}
	mux := http.NewServeMux()
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	u := is.srv.URL
	mux.HandleFunc("GET /logout", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		meta := map[string]any{"issuer": u, "authorization_endpoint": u + "/authorize", "token_endpoint": u + "/token",
			"jwks_uri": u + "/jwks", "userinfo_endpoint": u + "/userinfo", "id_token_signing_alg_values_supported": []string{"RS256"},
			"authorization_response_iss_parameter_supported": true, "response_types_supported": []string{"code"},
			"subject_types_supported": []string{"public"}}
		if is.endSession != "" {
			meta["end_session_endpoint"] = u + is.endSession
		}
		writeJSON(w, 200, meta)
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"keys": []map[string]any{{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
			"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes())}}})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		// A public client: client_id in the form, no client authentication.
		if r.PostFormValue("client_id") != clientID || r.Header.Get("Authorization") != "" {
			writeJSON(w, 401, map[string]string{"error": "invalid_client"})
			return
		}
		is.mu.Lock()
		c, ok := is.codes[r.PostFormValue("code")]
		delete(is.codes, r.PostFormValue("code"))
		is.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		if !ok || b64(sum[:]) != c.challenge {
			writeJSON(w, 400, map[string]string{"error": "invalid_grant"})
			return
		}
		writeJSON(w, 200, map[string]any{"access_token": "at-" + c.claims["sub"].(string), "token_type": "Bearer",
			"expires_in": 300, "id_token": is.sign(t, map[string]any{"alg": "RS256", "kid": "k1", "typ": "JWT"}, c.claims)})
	})
	mux.HandleFunc("GET /userinfo", func(w http.ResponseWriter, r *http.Request) {
		sub, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer at-")
		if !ok {
			w.WriteHeader(401)
			return
		}
		writeJSON(w, 200, map[string]any{"sub": sub, "email": sub + "@example.com"})
	})
	return is
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// signWith makes a compact RS256 JWT signed with key.
func (is *issuer) signWith(t *testing.T, key *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	in := b64(h) + "." + b64(c)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + b64(sig)
}

func (is *issuer) sign(t *testing.T, header, claims map[string]any) string {
	return is.signWith(t, is.key, header, claims)
}

// browser is the demo app under test and a cookie-keeping client that does not follow
// redirects.
type browser struct {
	app *httptest.Server
	is  *issuer
	hc  *http.Client
}

func newBrowser(t *testing.T, is *issuer) *browser {
	t.Helper()
	b := &browser{is: is}
	var handler http.Handler
	b.app = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(b.app.Close)
	a, err := devapp.New(devapp.Deps{Issuer: is.srv.URL, ClientID: clientID, BaseURL: b.app.URL, Provider: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	handler = a.Handler()
	jar, _ := cookiejar.New(nil)
	b.hc = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return b
}

func (b *browser) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	resp, err := b.hc.Get(b.app.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// start follows the app's /login (or /sensitive) to the issuer and returns the
// authorization request's parameters.
func (b *browser) start(t *testing.T, path string) url.Values {
	t.Helper()
	resp, _ := b.get(t, path)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), b.is.srv.URL+"/authorize?") {
		t.Fatalf("GET %s: %d to %q, want the issuer's authorization endpoint", path, resp.StatusCode, resp.Header.Get("Location"))
	}
	q := loc.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("nonce") == "" ||
		q.Get("client_id") != clientID || q.Get("response_type") != "code" {
		t.Fatalf("authorization request %v", q)
	}
	return q
}

// answer puts claims behind a code for the request q and sends the browser back to the
// app's callback with that code and the given state; it returns the callback's answer.
func (b *browser) answer(t *testing.T, q url.Values, state string, claims map[string]any) (*http.Response, string) {
	t.Helper()
	code := "code-" + b64([]byte(q.Get("state")))[:12] + time.Now().Format("150405.000000")
	b.is.mu.Lock()
	b.is.codes[code] = issued{challenge: q.Get("code_challenge"), claims: claims}
	b.is.mu.Unlock()
	return b.get(t, devapp.CallbackPath+"?"+url.Values{"code": {code}, "state": {state}, "iss": {b.is.srv.URL}}.Encode())
}

func (b *browser) idClaims(q url.Values, sub, sid string, authTime time.Time) map[string]any {
	now := time.Now()
	return map[string]any{"iss": b.is.srv.URL, "aud": clientID, "sub": sub, "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(),
		"nonce": q.Get("nonce"), "auth_time": authTime.Unix(), "sid": sid, "email": sub + "@example.com", "name": "Ada " + sub,
		"acr": "urn:gatehouse:aal1", "amr": []string{"pwd"}}
}

// signIn runs a whole sign-in for sub with session id sid.
func (b *browser) signIn(t *testing.T, sub, sid string, authTime time.Time) {
	t.Helper()
	q := b.start(t, "/login")
	resp, body := b.answer(t, q, q.Get("state"), b.idClaims(q, sub, sid, authTime))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("callback: %d %s", resp.StatusCode, body)
	}
	if _, home := b.get(t, "/"); !strings.Contains(home, `id="claim-sub">`+sub+`<`) || !strings.Contains(home, `id="claim-sid">`+sid+`<`) {
		t.Fatalf("home after sign-in:\n%s", home)
	}
}

// TestCallbackRefusesWrongState: an answer whose state this browser did not start is
// refused (400, nothing signed in), as is one without the session cookie and a state used
// twice; the nonce must be the one sent; the right state and nonce sign in.
func TestCallbackRefusesWrongState(t *testing.T) {
	t.Parallel()
	is := newIssuer(t)
	b := newBrowser(t, is)
	q := b.start(t, "/login")
	claims := b.idClaims(q, "u1", "s1", time.Now())

	resp, body := b.answer(t, q, "not-the-state", claims)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "the state in the answer does not match") {
		t.Fatalf("wrong state: %d %s", resp.StatusCode, body)
	}
	if _, home := b.get(t, "/"); strings.Contains(home, "claim-sub") {
		t.Fatal("signed in after a wrong state")
	}
	// Another browser (no cookie) presenting the right state is refused too.
	other := newBrowser(t, is)
	other.app = b.app
	if resp, body := other.answer(t, q, q.Get("state"), claims); resp.StatusCode != http.StatusBadRequest ||
		!strings.Contains(body, "no sign-in in progress") {
		t.Fatalf("right state without the cookie: %d %s", resp.StatusCode, body)
	}
	// A wrong nonce is refused (and uses up the state).
	bad := b.idClaims(q, "u1", "s1", time.Now())
	bad["nonce"] = "another"
	if resp, body := b.answer(t, q, q.Get("state"), bad); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "nonce") {
		t.Fatalf("wrong nonce: %d %s", resp.StatusCode, body)
	}
	if resp, body := b.answer(t, q, q.Get("state"), claims); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "does not match") {
		t.Fatalf("state used twice: %d %s", resp.StatusCode, body)
	}
	// An answer naming another issuer (RFC 9207) is refused.
	q2 := b.start(t, "/login")
	is.mu.Lock()
	is.codes["c-mixup"] = issued{challenge: q2.Get("code_challenge"), claims: b.idClaims(q2, "u1", "s1", time.Now())}
	is.mu.Unlock()
	if resp, body := b.get(t, devapp.CallbackPath+"?"+url.Values{"code": {"c-mixup"}, "state": {q2.Get("state")},
		"iss": {"https://evil.example"}}.Encode()); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "iss") {
		t.Fatalf("another iss: %d %s", resp.StatusCode, body)
	}
	// The flow itself works: a fresh request with its own state and nonce signs in.
	b.signIn(t, "u1", "s1", time.Now())
}

// TestSensitiveActionNeedsFreshAuthTime: the sensitive action asks max_age=0; an answer
// whose auth_time is not newer than the request is refused; a renewed one is accepted
// and shown.
func TestSensitiveActionNeedsFreshAuthTime(t *testing.T) {
	t.Parallel()
	b := newBrowser(t, newIssuer(t))
	first := time.Now().Add(-10 * time.Minute)
	b.signIn(t, "u2", "s2", first)

	q := b.start(t, "/sensitive")
	if q.Get("max_age") != "0" || q.Get("login_hint") != "u2@example.com" {
		t.Fatalf("sensitive action's authorization request: %v", q)
	}
	resp, _ := b.answer(t, q, q.Get("state"), b.idClaims(q, "u2", "s2", first)) // a provider that ignored max_age
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback: %d", resp.StatusCode)
	}
	if _, home := b.get(t, "/"); !strings.Contains(home, `id="sensitive-refused"`) || !strings.Contains(home, "is not fresh") ||
		!strings.Contains(home, `data-unix="`+itoa(first.Unix())+`"`) {
		t.Fatalf("stale auth_time not refused:\n%s", home)
	}
	// Another user's re-authentication does not count either.
	q = b.start(t, "/sensitive")
	b.answer(t, q, q.Get("state"), b.idClaims(q, "mallory", "s9", time.Now()))
	if _, home := b.get(t, "/"); !strings.Contains(home, "another user") {
		t.Fatalf("another user's re-authentication not refused:\n%s", home)
	}

	q = b.start(t, "/sensitive")
	renewed := time.Now()
	b.answer(t, q, q.Get("state"), b.idClaims(q, "u2", "s2b", renewed))
	if _, home := b.get(t, "/"); !strings.Contains(home, `id="sensitive-done"`) || !strings.Contains(home, "auth_time renewed") ||
		!strings.Contains(home, `data-unix="`+itoa(renewed.Unix())+`"`) {
		t.Fatalf("fresh auth_time not accepted:\n%s", home)
	}
	// Signed out, /sensitive starts nothing.
	resp, err := b.hc.PostForm(b.app.URL+"/logout", nil)
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %v %v", resp, err)
	}
	resp.Body.Close()
	if resp, _ := b.get(t, "/sensitive"); resp.Header.Get("Location") != "/" {
		t.Fatalf("sensitive action while signed out: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestBackchannelLogout: a logout token signed with the issuer's key, for this client,
// with the event, a jti and the sid ends that sign-in (the next page says so) and no
// other; tokens that break a rule of Back-Channel Logout 1.0 are refused with 400.
func TestBackchannelLogout(t *testing.T) {
	t.Parallel()
	is := newIssuer(t)
	b := newBrowser(t, is)
	b.signIn(t, "u3", "sid-3", time.Now())
	bystander := newBrowser(t, is)
	bystander.app = b.app
	bystander.signIn(t, "u4", "sid-4", time.Now())

	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	valid := func() map[string]any {
		now := time.Now()
		return map[string]any{"iss": is.srv.URL, "aud": clientID, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
			"jti": "j-" + now.Format("150405.000000000"), "sid": "sid-3", "sub": "u3",
			"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}}
	}
	header := map[string]any{"alg": "RS256", "kid": "k1", "typ": "logout+jwt"}
	post := func(token string) (int, string) {
		t.Helper()
		resp, err := http.PostForm(b.app.URL+devapp.BackchannelPath, url.Values{"logout_token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(body)
	}
	with := func(change func(map[string]any)) string {
		c := valid()
		change(c)
		return is.sign(t, header, c)
	}
	bad := map[string]string{
		"missing":             "",
		"another key":         is.signWith(t, otherKey, header, valid()),
		"typ JWT":             is.sign(t, map[string]any{"alg": "RS256", "kid": "k1", "typ": "JWT"}, valid()),
		"nonce":               with(func(c map[string]any) { c["nonce"] = "n" }),
		"no event":            with(func(c map[string]any) { delete(c, "events") }),
		"another audience":    with(func(c map[string]any) { c["aud"] = "app_other" }),
		"another issuer":      with(func(c map[string]any) { c["iss"] = "https://evil.example" }),
		"expired":             with(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }),
		"no jti":              with(func(c map[string]any) { delete(c, "jti") }),
		"neither sub nor sid": with(func(c map[string]any) { delete(c, "sub"); delete(c, "sid") }),
		"not a JWT":           "not.a.jwt",
	}
	for name, token := range bad {
		if status, body := post(token); status != http.StatusBadRequest || !strings.Contains(body, `"error":"invalid_request"`) {
			t.Errorf("%s: %d %s, want 400 invalid_request", name, status, body)
		}
	}
	if _, home := b.get(t, "/"); !strings.Contains(home, `id="claim-sid">sid-3<`) {
		t.Fatalf("a refused logout token ended the sign-in:\n%s", home)
	}

	if status, body := post(is.sign(t, header, valid())); status != http.StatusOK {
		t.Fatalf("valid logout token: %d %s", status, body)
	}
	_, home := b.get(t, "/")
	if !strings.Contains(home, `id="ended-elsewhere"`) || !strings.Contains(home, "Your session was ended elsewhere") ||
		strings.Contains(home, "claim-sub") || !strings.Contains(home, `id="sign-in"`) {
		t.Fatalf("after back-channel logout:\n%s", home)
	}
	if _, home := bystander.get(t, "/"); !strings.Contains(home, `id="claim-sid">sid-4<`) || strings.Contains(home, "ended-elsewhere") {
		t.Fatalf("another session was ended too:\n%s", home)
	}
	// Without typ, and by sub alone, the token works too (every sign-in of that user).
	noTyp := map[string]any{"alg": "RS256", "kid": "k1"}
	c := valid()
	delete(c, "sid")
	c["sub"] = "u4"
	if status, body := post(is.sign(t, noTyp, c)); status != http.StatusOK {
		t.Fatalf("logout token by sub without typ: %d %s", status, body)
	}
	if _, home := bystander.get(t, "/"); !strings.Contains(home, "Your session was ended elsewhere") {
		t.Fatalf("logout by sub did not end u4's sign-in:\n%s", home)
	}
	// Signing in again clears the message.
	b.signIn(t, "u3", "sid-5", time.Now())
	if _, home := b.get(t, "/"); strings.Contains(home, "ended-elsewhere") {
		t.Fatalf("the message stays after a new sign-in:\n%s", home)
	}
}

// TestSignOut: sign-out is local, and then RP-initiated logout (id_token_hint, client_id,
// the registered post-logout URI) when the provider serves its end_session_endpoint; a
// provider without one, or whose discovery names one that answers 404, gets a local
// sign-out that says the provider's session goes on.
func TestSignOut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ endSession, want string }{{"", "local"}, {"/gone", "local"}, {"/logout", "rp"}} {
		is := newIssuer(t)
		is.endSession = tc.endSession
		b := newBrowser(t, is)
		b.signIn(t, "u5", "sid-5", time.Now())
		resp, err := b.hc.PostForm(b.app.URL+"/logout", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		switch tc.want {
		case "local":
			if resp.StatusCode != http.StatusSeeOther || loc.String() != "/" {
				t.Fatalf("end session %q: sign-out went to %d %s, want the home page", tc.endSession, resp.StatusCode, loc)
			}
			if _, home := b.get(t, "/"); !strings.Contains(home, "session goes on") || strings.Contains(home, "claim-sub") {
				t.Fatalf("end session %q: after sign-out:\n%s", tc.endSession, home)
			}
		case "rp":
			q := loc.Query()
			_, postLogout, _ := devapp.URIs(b.app.URL)
			if !strings.HasPrefix(loc.String(), is.srv.URL+"/logout?") || q.Get("id_token_hint") == "" || q.Get("client_id") != clientID ||
				q.Get("post_logout_redirect_uri") != postLogout {
				t.Fatalf("RP-initiated logout: %d %s", resp.StatusCode, loc)
			}
			if _, page := b.get(t, devapp.SignedOutPath); !strings.Contains(page, "Signed out of the demo app and of Acme") ||
				strings.Contains(page, "claim-sub") {
				t.Fatalf("post-logout page:\n%s", page)
			}
		}
	}
}
