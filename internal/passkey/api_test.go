package passkey_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/gatehouse-id/gatehouse/internal/passkey"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// env is a tenant on a server of its own, with the database to read and tamper with.
type env struct {
	*testutil.Site
	d *testutil.DB
}

func newEnv(t *testing.T, edit func(*tenant.Policy)) *env {
	t.Helper()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	return &env{Site: testutil.NewSite(t, srv, "pk", testutil.SiteName("Passkey Co"), testutil.SitePolicy(edit)), d: d}
}

func (e *env) origin() string { return "http://" + e.Host + ":" + strconv.Itoa(e.Srv.Port) }

// register adds a passkey for the session tok with a, and fails the test unless it works.
func (e *env) register(t *testing.T, tok string, a *authenticator) {
	t.Helper()
	if r := e.tryRegister(t, tok, a); r.StatusCode != http.StatusCreated {
		t.Fatalf("register: %d %s", r.StatusCode, r.Body)
	}
}

func (e *env) tryRegister(t *testing.T, tok string, a *authenticator) *testutil.Response {
	t.Helper()
	r := e.Do(t, "POST", "/api/v1/passkeys/register/begin", tok, nil)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("register begin: %d %s", r.StatusCode, r.Body)
	}
	return e.Do(t, "POST", "/api/v1/passkeys/register/finish?name=Laptop", tok, a.create(t, r.Body))
}

// loginBegin starts a passwordless sign-in: the options and the binding cookie.
func (e *env) loginBegin(t *testing.T) ([]byte, string) {
	t.Helper()
	r := e.Do(t, "POST", "/api/v1/login/passkey/begin", "", nil)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("login begin: %d %s", r.StatusCode, r.Body)
	}
	for _, c := range r.Cookies() {
		if c.Name == passkey.BindingCookie {
			if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
				t.Errorf("binding cookie attributes: %+v", c)
			}
			return r.Body, passkey.BindingCookie + "=" + c.Value
		}
	}
	t.Fatalf("login begin set no binding cookie: %v", r.Header)
	return nil, ""
}

func (e *env) loginFinish(t *testing.T, cookie string, cred any) *testutil.Response {
	t.Helper()
	return e.Do(t, "POST", "/api/v1/login/passkey/finish", "", cred, "Cookie", cookie)
}

type sessionInfo struct {
	Session struct {
		Methods   []string
		AAL       string
		Assurance string
	}
}

func (e *env) whoami(t *testing.T, tok string) sessionInfo {
	t.Helper()
	r := e.Do(t, "GET", "/api/v1/session", tok, nil)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("session: %d %s", r.StatusCode, r.Body)
	}
	var s sessionInfo
	r.JSON(t, &s)
	return s
}

func loginToken(t *testing.T, r *testutil.Response) string {
	t.Helper()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("login finish: %d %s", r.StatusCode, r.Body)
	}
	var b struct{ Session struct{ Token string } }
	r.JSON(t, &b)
	if b.Session.Token == "" {
		t.Fatalf("no session: %s", r.Body)
	}
	return b.Session.Token
}

// TestPasskeyLifecycle: add a passkey (mail, audit), list it, sign in with it alone
// (method passkey, assurance phr), step up with it, rename it, remove it (step-up
// passkey.remove, mail), and the removed passkey signs in no more.
func TestPasskeyLifecycle(t *testing.T) {
	e := newEnv(t, nil)
	const email = "ada@example.com"
	_, tok := e.Person(t, email)
	a := newAuthenticator(t, e.origin())
	a.be, a.bs = true, true // a synced passkey
	e.register(t, tok, a)
	e.Srv.WaitMail(t, email, "A passkey was added")
	if n := e.d.AuditCount(t, e.Tenant.ID, passkey.AuditAdded, ""); n != 1 {
		t.Errorf("passkey.added events = %d", n)
	}

	var list struct{ Passkeys []passkey.Passkey }
	e.Do(t, "GET", "/api/v1/passkeys", tok, nil).JSON(t, &list)
	if len(list.Passkeys) != 1 || list.Passkeys[0].Name != "Laptop" || !list.Passkeys[0].Synced || list.Passkeys[0].LastUsedAt != nil {
		t.Fatalf("passkeys = %+v", list.Passkeys)
	}
	id := list.Passkeys[0].ID.String()

	// Passwordless sign-in.
	opts, cookie := e.loginBegin(t)
	if o := parseOptions(t, opts); o.PublicKey.RPID != e.Host || len(o.PublicKey.AllowCredentials) != 0 || o.PublicKey.UserVerification != "required" {
		t.Errorf("login options: %s", opts)
	}
	ptok := loginToken(t, e.loginFinish(t, cookie, a.get(t, opts)))
	s := e.whoami(t, ptok)
	if !slices.Equal(s.Session.Methods, []string{"passkey"}) || s.Session.Assurance != "phr" || s.Session.AAL != "aal2" {
		t.Errorf("passkey session = %+v", s.Session)
	}

	// Step-up with the passkey on the password session.
	r := e.Do(t, "POST", "/api/v1/reauth/passkey/begin", tok, nil)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("reauth begin: %d %s", r.StatusCode, r.Body)
	}
	if o := parseOptions(t, r.Body); len(o.PublicKey.AllowCredentials) != 1 {
		t.Errorf("reauth options allow %d credentials", len(o.PublicKey.AllowCredentials))
	}
	r = e.Do(t, "POST", "/api/v1/reauth/passkey/finish", tok, a.get(t, r.Body))
	if r.StatusCode != http.StatusOK {
		t.Fatalf("reauth finish: %d %s", r.StatusCode, r.Body)
	}
	var re struct{ Session struct{ Token string } }
	r.JSON(t, &re)
	if e.Do(t, "GET", "/api/v1/session", tok, nil).StatusCode != http.StatusUnauthorized {
		t.Error("the token before the step-up still works")
	}
	tok = re.Session.Token
	if s := e.whoami(t, tok); s.Session.Assurance != "phr" {
		t.Errorf("after step-up: %+v", s.Session)
	}

	// Rename, then remove.
	r = e.Do(t, "PATCH", "/api/v1/passkeys/"+id, tok, map[string]string{"name": "Work laptop"})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("rename: %d %s", r.StatusCode, r.Body)
	}
	if r := e.Do(t, "PATCH", "/api/v1/passkeys/"+id, tok, map[string]string{"name": ""}); r.ErrorCode() != "invalid_passkey_name" {
		t.Errorf("empty name: %d %s", r.StatusCode, r.Body)
	}
	e.Do(t, "GET", "/api/v1/passkeys", tok, nil).JSON(t, &list)
	if list.Passkeys[0].Name != "Work laptop" || list.Passkeys[0].LastUsedAt == nil {
		t.Errorf("after rename and use: %+v", list.Passkeys[0])
	}
	// Another user cannot rename or remove it: 404, like an id that does not exist.
	_, other := e.Person(t, "bob@example.com")
	if r := e.Do(t, "DELETE", "/api/v1/passkeys/"+id, other, nil); r.StatusCode != http.StatusNotFound {
		t.Errorf("another user's delete: %d %s", r.StatusCode, r.Body)
	}
	if r := e.Do(t, "DELETE", "/api/v1/passkeys/"+id, tok, nil); r.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.StatusCode, r.Body)
	}
	e.Srv.WaitMail(t, email, "A passkey was removed")
	opts, cookie = e.loginBegin(t)
	if r := e.loginFinish(t, cookie, a.get(t, opts)); r.ErrorCode() != "passkey_unknown" {
		t.Errorf("removed passkey signs in: %d %s", r.StatusCode, r.Body)
	}
}

// TestPasskeyRemoveNeedsStepUp: removing a passkey is a high-risk action (five minutes).
func TestPasskeyRemoveNeedsStepUp(t *testing.T) {
	e := newEnv(t, func(p *tenant.Policy) {
		p.StepUp.Rules = []tenant.StepUpRule{{Action: tenant.ActionPasskeyRemove, MaxAgeSeconds: 1, Methods: []string{"passkey"}}}
	})
	_, tok := e.Person(t, "ada@example.com")
	a := newAuthenticator(t, e.origin())
	e.register(t, tok, a)
	var list struct{ Passkeys []passkey.Passkey }
	e.Do(t, "GET", "/api/v1/passkeys", tok, nil).JSON(t, &list)
	r := e.Do(t, "DELETE", "/api/v1/passkeys/"+list.Passkeys[0].ID.String(), tok, nil)
	if r.StatusCode != http.StatusForbidden || r.ErrorCode() != "step_up_required" {
		t.Fatalf("delete with a password session: %d %s", r.StatusCode, r.Body)
	}
	// A fresh password never satisfies a rule that names passkey.
	r = e.Do(t, "POST", "/api/v1/reauth", tok, map[string]string{"password": testutil.Password})
	var b struct{ Session struct{ Token string } }
	r.JSON(t, &b)
	if r := e.Do(t, "DELETE", "/api/v1/passkeys/"+list.Passkeys[0].ID.String(), b.Session.Token, nil); r.ErrorCode() != "step_up_required" {
		t.Fatalf("delete after a password step-up: %d %s", r.StatusCode, r.Body)
	}
}

// TestPasskeyCeremonyRefusals: every malformed, replayed, expired, misdirected or forged
// ceremony is a 4xx with its own code, and nothing signs in.
func TestPasskeyCeremonyRefusals(t *testing.T) {
	e := newEnv(t, nil)
	_, tok := e.Person(t, "ada@example.com")
	a := newAuthenticator(t, e.origin())
	e.register(t, tok, a)

	check := func(t *testing.T, r *testutil.Response, status int, code string) {
		t.Helper()
		if r.StatusCode != status || r.ErrorCode() != code {
			t.Errorf("got %d %s, want %d %s", r.StatusCode, r.Body, status, code)
		}
	}
	t.Run("malformed", func(t *testing.T) {
		_, cookie := e.loginBegin(t)
		check(t, e.loginFinish(t, cookie, `{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"!!"}}`), 400, "passkey_malformed")
		check(t, e.loginFinish(t, cookie, `{"id":`), 400, "invalid_json")
		check(t, e.loginFinish(t, cookie, `[]`), 400, "invalid_json")
		r := e.Do(t, "POST", "/api/v1/passkeys/register/finish", tok, `{"id":"x","type":"public-key","response":{}}`)
		check(t, r, 400, "passkey_malformed")
	})
	t.Run("replayed", func(t *testing.T) {
		opts, cookie := e.loginBegin(t)
		cred := a.get(t, opts)
		loginToken(t, e.loginFinish(t, cookie, cred))
		check(t, e.loginFinish(t, cookie, cred), 409, "passkey_challenge_used")
	})
	t.Run("expired", func(t *testing.T) {
		opts, cookie := e.loginBegin(t)
		if _, err := e.d.Admin.Exec(context.Background(), `UPDATE passkey_challenges SET expires_at = now() - interval '1 second'
			WHERE tenant_id = $1 AND used_at IS NULL`, e.Tenant.ID); err != nil {
			t.Fatal(err)
		}
		check(t, e.loginFinish(t, cookie, a.get(t, opts)), 400, "passkey_challenge_expired")
	})
	t.Run("unknown challenge", func(t *testing.T) {
		opts, cookie := e.loginBegin(t)
		o := parseOptions(t, opts)
		check(t, e.loginFinish(t, cookie, a.sign(t, o.PublicKey.RPID, b64.EncodeToString([]byte("not-a-challenge-we-issued-000000")), "webauthn.get")), 400, "passkey_challenge_unknown")
	})
	t.Run("other tenant", func(t *testing.T) {
		other := testutil.NewSite(t, e.Srv, "pko")
		r := other.Do(t, "POST", "/api/v1/login/passkey/begin", "", nil)
		opts := r.Body
		var cookie string
		for _, c := range r.Cookies() {
			cookie = c.Name + "=" + c.Value
		}
		// Tenant B's challenge answered on tenant A: unknown here.
		check(t, e.loginFinish(t, cookie, a.get(t, opts)), 400, "passkey_challenge_unknown")
	})
	t.Run("other browser", func(t *testing.T) {
		opts, _ := e.loginBegin(t)
		_, otherCookie := e.loginBegin(t)
		cred := a.get(t, opts)
		check(t, e.loginFinish(t, otherCookie, cred), 403, "passkey_challenge_mismatch")
		opts, _ = e.loginBegin(t)
		check(t, e.loginFinish(t, "", a.get(t, opts)), 403, "passkey_challenge_mismatch")
	})
	t.Run("other user", func(t *testing.T) {
		_, bob := e.Person(t, "bob@example.com")
		r := e.Do(t, "POST", "/api/v1/passkeys/register/begin", tok, nil)
		b := newAuthenticator(t, e.origin())
		check(t, e.Do(t, "POST", "/api/v1/passkeys/register/finish", bob, b.create(t, r.Body)), 403, "passkey_challenge_mismatch")
		r = e.Do(t, "POST", "/api/v1/reauth/passkey/begin", tok, nil)
		check(t, e.Do(t, "POST", "/api/v1/reauth/passkey/finish", bob, a.get(t, r.Body)), 403, "passkey_challenge_mismatch")
		// Bob's own step-up answered with Ada's passkey: not one of Bob's.
		e.register(t, bob, b)
		r = e.Do(t, "POST", "/api/v1/reauth/passkey/begin", bob, nil)
		check(t, e.Do(t, "POST", "/api/v1/reauth/passkey/finish", bob, a.get(t, r.Body)), 401, "passkey_unknown")
	})
	t.Run("another session of the same user", func(t *testing.T) {
		tok2 := e.Login(t, "ada@example.com", testutil.Password)
		r := e.Do(t, "POST", "/api/v1/reauth/passkey/begin", tok, nil)
		check(t, e.Do(t, "POST", "/api/v1/reauth/passkey/finish", tok2, a.get(t, r.Body)), 403, "passkey_challenge_mismatch")
	})
	t.Run("wrong origin", func(t *testing.T) {
		evil := *a
		evil.origin = "http://evil.localhost:" + strconv.Itoa(e.Srv.Port)
		opts, cookie := e.loginBegin(t)
		check(t, e.loginFinish(t, cookie, evil.get(t, opts)), 401, "passkey_rejected")
		a.count = evil.count
	})
	t.Run("wrong rp id", func(t *testing.T) {
		opts, cookie := e.loginBegin(t)
		o := parseOptions(t, opts)
		a.count++
		check(t, e.loginFinish(t, cookie, a.sign(t, "other.localhost", o.PublicKey.Challenge, "webauthn.get")), 401, "passkey_rejected")
	})
	t.Run("create type on get", func(t *testing.T) {
		opts, cookie := e.loginBegin(t)
		o := parseOptions(t, opts)
		a.count++
		check(t, e.loginFinish(t, cookie, a.sign(t, o.PublicKey.RPID, o.PublicKey.Challenge, "webauthn.create")), 401, "passkey_rejected")
	})
	t.Run("no user verification", func(t *testing.T) {
		a.uv = false
		defer func() { a.uv = true }()
		opts, cookie := e.loginBegin(t)
		check(t, e.loginFinish(t, cookie, a.get(t, opts)), 401, "passkey_rejected")
		c := newAuthenticator(t, e.origin())
		c.uv = false
		check(t, e.tryRegister(t, tok, c), 401, "passkey_rejected")
	})
	t.Run("forged signature", func(t *testing.T) {
		forger := newAuthenticator(t, e.origin())
		forger.credID, forger.user, forger.count = a.credID, a.user, a.count+10
		opts, cookie := e.loginBegin(t)
		check(t, e.loginFinish(t, cookie, forger.get(t, opts)), 401, "passkey_rejected")
	})
	t.Run("backup eligibility changed", func(t *testing.T) {
		a.be = true
		defer func() { a.be = false }()
		opts, cookie := e.loginBegin(t)
		check(t, e.loginFinish(t, cookie, a.get(t, opts)), 401, "passkey_rejected")
	})
	t.Run("unknown passkey", func(t *testing.T) {
		stranger := newAuthenticator(t, e.origin())
		stranger.user = a.user
		opts, cookie := e.loginBegin(t)
		check(t, e.loginFinish(t, cookie, stranger.get(t, opts)), 401, "passkey_unknown")
	})
	t.Run("already registered", func(t *testing.T) {
		check(t, e.tryRegister(t, tok, a), 409, "passkey_already_registered")
	})
	t.Run("counter going backwards", func(t *testing.T) {
		before := e.d.AuditCount(t, e.Tenant.ID, passkey.AuditCounterRegress, "")
		opts, cookie := e.loginBegin(t)
		loginToken(t, e.loginFinish(t, cookie, a.get(t, opts)))
		a.count -= 2 // a clone that lags behind
		opts, cookie = e.loginBegin(t)
		check(t, e.loginFinish(t, cookie, a.get(t, opts)), 401, "passkey_counter_regressed")
		if after := e.d.AuditCount(t, e.Tenant.ID, passkey.AuditCounterRegress, ""); after != before+1 {
			t.Errorf("passkey.counter_regressed events: %d, want %d", after, before+1)
		}
		a.count += 10
		opts, cookie = e.loginBegin(t)
		loginToken(t, e.loginFinish(t, cookie, a.get(t, opts)))
	})
	if n := e.d.AuditCount(t, e.Tenant.ID, passkey.AuditRejected, ""); n == 0 {
		t.Error("no passkey.rejected events")
	}
}

// TestPasskeySecondFactor: after the password of an account with TOTP on, the second step
// takes a passkey of the same user; the session has both methods.
func TestPasskeySecondFactor(t *testing.T) {
	e := newEnv(t, nil)
	const email = "ada@example.com"
	_, tok := e.Person(t, email)
	a := newAuthenticator(t, e.origin())
	e.register(t, tok, a)
	enableTOTP(t, e, tok)

	r := e.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": email, "password": testutil.Password})
	var l struct {
		MFARequired bool   `json:"mfa_required"`
		MFAToken    string `json:"mfa_token"`
	}
	r.JSON(t, &l)
	if !l.MFARequired {
		t.Fatalf("login: %s", r.Body)
	}
	if r := e.Do(t, "POST", "/api/v1/login/mfa/passkey/begin", "", map[string]string{"mfa_token": "nope"}); r.ErrorCode() != "invalid_mfa_token" {
		t.Errorf("bad mfa token: %d %s", r.StatusCode, r.Body)
	}
	r = e.Do(t, "POST", "/api/v1/login/mfa/passkey/begin", "", map[string]string{"mfa_token": l.MFAToken})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("mfa passkey begin: %d %s", r.StatusCode, r.Body)
	}
	cred := a.get(t, r.Body)
	r = e.Do(t, "POST", "/api/v1/login/mfa/passkey/finish", "", map[string]any{"mfa_token": l.MFAToken, "credential": jsonRaw(cred)})
	s := e.whoami(t, loginToken(t, r))
	if !slices.Equal(s.Session.Methods, []string{"password", "passkey"}) || s.Session.AAL != "aal2" || s.Session.Assurance != "phr" {
		t.Errorf("second-factor session = %+v", s.Session)
	}
	// The sign-in attempt is used up.
	r = e.Do(t, "POST", "/api/v1/login/mfa/passkey/finish", "", map[string]any{"mfa_token": l.MFAToken, "credential": jsonRaw(cred)})
	if r.ErrorCode() != "invalid_mfa_token" {
		t.Errorf("reused sign-in attempt: %d %s", r.StatusCode, r.Body)
	}
}

// enableTOTP turns TOTP on for the session's user.
func enableTOTP(t *testing.T, e *env, tok string) {
	t.Helper()
	r := e.Do(t, "POST", "/api/v1/mfa/totp", tok, nil)
	var en struct{ Secret string }
	r.JSON(t, &en)
	code, err := totp.GenerateCode(en.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r := e.Do(t, "POST", "/api/v1/mfa/totp/confirm", tok, map[string]string{"code": code}); r.StatusCode != http.StatusOK {
		t.Fatalf("confirm totp: %d %s", r.StatusCode, r.Body)
	}
}

func jsonRaw(b []byte) json.RawMessage { return json.RawMessage(b) }

// TestPasskeyBeginTakesNoBody: a begin call accepts no body, {} and null alike, and
// refuses a body with content (invalid_json).
func TestPasskeyBeginTakesNoBody(t *testing.T) {
	e := newEnv(t, nil)
	_, tok := e.Person(t, "ada@example.com")
	e.register(t, tok, newAuthenticator(t, e.origin()))
	for _, path := range []string{"/api/v1/passkeys/register/begin", "/api/v1/login/passkey/begin", "/api/v1/reauth/passkey/begin"} {
		for _, body := range []string{"", "{}", "null"} {
			if r := e.Do(t, "POST", path, tok, body, "Content-Type", "application/json"); r.StatusCode != http.StatusOK {
				t.Errorf("POST %s with %q: %d %s", path, body, r.StatusCode, r.Body)
			}
		}
		if r := e.Do(t, "POST", path, tok, `{"surprise":1}`, "Content-Type", "application/json"); r.ErrorCode() != "invalid_json" {
			t.Errorf("POST %s with a field: %d %s", path, r.StatusCode, r.Body)
		}
	}
}
