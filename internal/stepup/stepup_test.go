package stepup_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

const pw = testutil.Password

// env is a tenant on a server of its own whose clock the test moves, with one verified
// user (email, password pw), and the database to read the audit log.
type env struct {
	*testutil.Site
	d     *testutil.DB
	clk   *testutil.Clock
	email string
}

func newEnv(t *testing.T, edit func(*tenant.Policy), opts ...testutil.ServerOption) *env {
	t.Helper()
	d := testutil.FreshDB(t)
	clk := testutil.NewClock()
	srv := testutil.NewServer(t, d, append([]testutil.ServerOption{testutil.WithClock(clk)}, opts...)...)
	e := &env{Site: testutil.NewSite(t, srv, "step", testutil.SiteName("Step Co"), testutil.SitePolicy(edit)), d: d, clk: clk, email: "s@example.com"}
	e.User(t, e.email)
	return e
}

// login signs the env's user in and returns the session token.
func (e *env) login(t *testing.T) string {
	t.Helper()
	return e.Login(t, e.email, pw)
}

func (e *env) reauth(t *testing.T, tok string, body map[string]string) (string, *testutil.Response) {
	t.Helper()
	r := e.Do(t, "POST", "/api/v1/reauth", tok, body)
	if r.StatusCode != 200 {
		return "", r
	}
	var b struct{ Session struct{ Token string } }
	r.JSON(t, &b)
	return b.Session.Token, r
}

type stepErr struct {
	Error struct {
		Code    string
		Details struct {
			Action        string
			MaxAgeSeconds int `json:"max_age_seconds"`
			Methods       []string
			ReauthURL     string `json:"reauth_url"`
			EnrollURL     string `json:"enroll_url"`
		}
	}
}

func expectStepUp(t *testing.T, r *testutil.Response, action string, maxAge int) stepErr {
	t.Helper()
	var b stepErr
	_ = json.Unmarshal(r.Body, &b)
	if r.StatusCode != 403 || b.Error.Code != "step_up_required" || b.Error.Details.Action != action ||
		b.Error.Details.MaxAgeSeconds != maxAge || !strings.HasPrefix(b.Error.Details.ReauthURL, "/reauth?action="+action) {
		t.Fatalf("%s: %d %s; want 403 step_up_required for %s with max age %d", r.Request.URL.Path, r.StatusCode, r.Body, action, maxAge)
	}
	if h := r.Header.Get("WWW-Authenticate"); !strings.Contains(h, `error="insufficient_user_authentication"`) || !strings.Contains(h, "max_age=") {
		t.Fatalf("no RFC 9470 challenge: %q", h)
	}
	return b
}

// TestProtectedActions: for each wired action, a fresh session passes, an older one gets
// 403 with the rule's details, re-authentication rotates the token (the old one dies) and
// the action passes, and after the max age elapses again it fails again.
func TestProtectedActions(t *testing.T) {
	t.Parallel()
	actions := []struct {
		action string
		method string
		path   string
		body   any
		ok     int
	}{
		{"email.change", "POST", "/api/v1/account/email", map[string]string{"email": "new@example.com"}, 202},
		{"sessions.revoke_others", "POST", "/api/v1/sessions/revoke-others", nil, 200},
		{"password.change", "POST", "/api/v1/account/password", map[string]string{"password": "new tangerine bicycle route"}, 200},
		{"mfa.enroll", "POST", "/api/v1/mfa/totp", nil, 201},
	}
	for _, a := range actions {
		t.Run(a.action, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			tok := e.login(t)
			if r := e.Do(t, a.method, a.path, tok, a.body); r.StatusCode != a.ok {
				t.Fatalf("fresh session: %d %s", r.StatusCode, r.Body)
			}
			if a.action == "password.change" { // the new password from here on
				a.body = map[string]string{"password": "another tangerine bicycle"}
			}
			e.clk.Advance(11 * time.Minute) // default rule: 10 minutes
			expectStepUp(t, e.Do(t, a.method, a.path, tok, a.body), a.action, 600)

			pass := pw
			if a.action == "password.change" {
				pass = "new tangerine bicycle route"
			}
			if _, r := e.reauth(t, tok, map[string]string{"password": "wrong password here"}); r.StatusCode != 401 {
				t.Fatalf("reauth with a wrong password: %d %s", r.StatusCode, r.Body)
			}
			fresh, r := e.reauth(t, tok, map[string]string{"password": pass})
			if fresh == "" || fresh == tok {
				t.Fatalf("reauth: %d %s", r.StatusCode, r.Body)
			}
			if r := e.Do(t, "GET", "/api/v1/session", tok, nil); r.StatusCode != 401 {
				t.Fatalf("the pre-step-up token still works: %d", r.StatusCode)
			}
			if r := e.Do(t, a.method, a.path, fresh, a.body); r.StatusCode != a.ok && !(a.action == "mfa.enroll" && r.StatusCode == 201) {
				t.Fatalf("after reauth: %d %s", r.StatusCode, r.Body)
			}
			e.clk.Advance(11 * time.Minute)
			expectStepUp(t, e.Do(t, a.method, a.path, fresh, a.body), a.action, 600)
		})
	}
}

func TestTenantRuleOverrides(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(p *tenant.Policy) {
		p.StepUp.Rules = []tenant.StepUpRule{{Action: tenant.ActionEmailChange, MaxAgeSeconds: 60, Methods: []string{"password"}}}
	})
	tok := e.login(t)
	e.clk.Advance(2 * time.Minute)
	expectStepUp(t, e.Do(t, "POST", "/api/v1/account/email", tok, map[string]string{"email": "x@example.com"}), "email.change", 60)
}

func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTOTP: enrol, confirm, login asks for the code, a code works once, recovery codes work
// once, wrong codes exhaust the challenge, a TOTP rule is not met by a password, disabling
// needs two factors.
func TestTOTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(p *tenant.Policy) {
		p.StepUp.Rules = []tenant.StepUpRule{{Action: tenant.ActionEmailChange, MaxAgeSeconds: 300, Methods: []string{"totp"}}}
	})
	tok := e.login(t)
	// Without a second factor the user is told how to satisfy a TOTP rule.
	b := expectStepUp(t, e.Do(t, "POST", "/api/v1/account/email", tok, map[string]string{"email": "n@example.com"}), "email.change", 300)
	if b.Error.Details.EnrollURL == "" {
		t.Fatal("no enroll_url for a user without a second factor")
	}

	r := e.Do(t, "POST", "/api/v1/mfa/totp", tok, nil)
	if r.StatusCode != 201 {
		t.Fatalf("enrol: %d %s", r.StatusCode, r.Body)
	}
	var en struct {
		Secret        string
		OTPAuthURI    string   `json:"otpauth_uri"`
		QR            string   `json:"qr_png_base64"`
		RecoveryCodes []string `json:"recovery_codes"`
	}
	r.JSON(t, &en)
	if len(en.RecoveryCodes) != 0 || !strings.HasPrefix(en.OTPAuthURI, "otpauth://totp/") || len(en.QR) < 100 {
		t.Fatalf("enrolment (recovery codes come only with the confirmation): %s", r.Body)
	}
	if r := e.Do(t, "POST", "/api/v1/mfa/totp/confirm", tok, map[string]string{"code": wrongCode(t, en.Secret, e.clk.Now())}); r.StatusCode != 401 {
		t.Fatalf("confirm with a wrong code: %d", r.StatusCode)
	}
	r = e.Do(t, "POST", "/api/v1/mfa/totp/confirm", tok, map[string]string{"code": code(t, en.Secret, e.clk.Now())})
	if r.StatusCode != 200 {
		t.Fatalf("confirm: %d %s", r.StatusCode, r.Body)
	}
	r.JSON(t, &en)
	if len(en.RecoveryCodes) != 10 {
		t.Fatalf("confirmation without ten recovery codes: %s", r.Body)
	}
	e.Srv.WaitMail(t, e.email, "Two-factor authentication turned on")

	// A password re-auth does not satisfy a TOTP rule; a code does.
	e.clk.Advance(31 * time.Second)
	fresh, _ := e.reauth(t, tok, map[string]string{"password": pw})
	expectStepUp(t, e.Do(t, "POST", "/api/v1/account/email", fresh, map[string]string{"email": "n@example.com"}), "email.change", 300)
	e.clk.Advance(31 * time.Second)
	fresh2, r := e.reauth(t, fresh, map[string]string{"code": code(t, en.Secret, e.clk.Now())})
	if fresh2 == "" {
		t.Fatalf("reauth with a code: %d %s", r.StatusCode, r.Body)
	}
	if r := e.Do(t, "POST", "/api/v1/account/email", fresh2, map[string]string{"email": "n@example.com"}); r.StatusCode != 202 {
		t.Fatalf("email change after TOTP reauth: %d %s", r.StatusCode, r.Body)
	}

	// Login now asks for the code.
	login := func() string {
		r := e.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": e.email, "password": pw})
		var b struct {
			MFARequired bool   `json:"mfa_required"`
			MFAToken    string `json:"mfa_token"`
			Session     *struct{ Token string }
		}
		r.JSON(t, &b)
		if r.StatusCode != 200 || !b.MFARequired || b.MFAToken == "" || b.Session != nil {
			t.Fatalf("login with TOTP on: %d %s", r.StatusCode, r.Body)
		}
		return b.MFAToken
	}
	e.clk.Advance(31 * time.Second)
	c := code(t, en.Secret, e.clk.Now())
	m1 := login()
	r = e.Do(t, "POST", "/api/v1/login/mfa", "", map[string]string{"mfa_token": m1, "code": c})
	if r.StatusCode != 200 || !strings.Contains(string(r.Body), `"token"`) {
		t.Fatalf("login/mfa: %d %s", r.StatusCode, r.Body)
	}
	var ls struct{ Session struct{ Token string } }
	r.JSON(t, &ls)
	if who := e.Do(t, "GET", "/api/v1/session", ls.Session.Token, nil); !strings.Contains(string(who.Body), `"aal":"aal2"`) {
		t.Fatalf("a TOTP login must be aal2: %s", who.Body)
	}
	if r := e.Do(t, "POST", "/api/v1/login/mfa", "", map[string]string{"mfa_token": m1, "code": c}); r.StatusCode != 401 {
		t.Fatalf("challenge reused: %d", r.StatusCode)
	}
	// The same code again (same time step) fails: no replay.
	m2 := login()
	if r := e.Do(t, "POST", "/api/v1/login/mfa", "", map[string]string{"mfa_token": m2, "code": c}); r.StatusCode != 401 || r.ErrorCode() != "totp_code_used" {
		t.Fatalf("replayed code: %d %s", r.StatusCode, r.Body)
	}
	// Recovery codes: once each.
	if r := e.Do(t, "POST", "/api/v1/login/mfa", "", map[string]string{"mfa_token": m2, "code": en.RecoveryCodes[0]}); r.StatusCode != 200 {
		t.Fatalf("recovery code: %d %s", r.StatusCode, r.Body)
	}
	e.Srv.WaitMail(t, e.email, "A recovery code was used")
	m3 := login()
	if r := e.Do(t, "POST", "/api/v1/login/mfa", "", map[string]string{"mfa_token": m3, "code": en.RecoveryCodes[0]}); r.StatusCode != 401 || r.ErrorCode() != "recovery_code_used" {
		t.Fatalf("recovery code reused: %d", r.StatusCode)
	}
	// Wrong codes: five attempts per challenge, then it is dead even for the right code.
	for range 4 {
		if r := e.Do(t, "POST", "/api/v1/login/mfa", "", map[string]string{"mfa_token": m3, "code": "123456"}); r.StatusCode != 401 {
			t.Fatalf("wrong code: %d", r.StatusCode)
		}
	}
	e.clk.Advance(31 * time.Second)
	if r := e.Do(t, "POST", "/api/v1/login/mfa", "", map[string]string{"mfa_token": m3, "code": code(t, en.Secret, e.clk.Now())}); r.StatusCode != 401 || r.ErrorCode() != "invalid_mfa_token" {
		t.Fatalf("exhausted challenge: %d %s", r.StatusCode, r.Body)
	}

	// Disabling needs two factors within 5 minutes.
	e.clk.Advance(6 * time.Minute)
	expectStepUp(t, e.Do(t, "DELETE", "/api/v1/mfa/totp", ls.Session.Token, nil), "mfa.disable", 300)
	pwTok, _ := e.reauth(t, ls.Session.Token, map[string]string{"password": pw})
	expectStepUp(t, e.Do(t, "DELETE", "/api/v1/mfa/totp", pwTok, nil), "mfa.disable", 300)
	codeTok, r := e.reauth(t, pwTok, map[string]string{"code": en.RecoveryCodes[1]})
	if codeTok == "" {
		t.Fatalf("reauth with a recovery code: %d %s", r.StatusCode, r.Body)
	}
	if r := e.Do(t, "DELETE", "/api/v1/mfa/totp", codeTok, nil); r.StatusCode != 204 {
		t.Fatalf("disable: %d %s", r.StatusCode, r.Body)
	}
	e.Srv.WaitMail(t, e.email, "Two-factor authentication turned off")
	if r := e.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": e.email, "password": pw}); strings.Contains(string(r.Body), "mfa_required") {
		t.Fatal("login still asks for a code after disabling")
	}
}

func TestReauthRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tok := e.login(t)
	for range 5 {
		if _, r := e.reauth(t, tok, map[string]string{"password": "wrong password here"}); r.StatusCode != 401 {
			t.Fatalf("wrong password: %d", r.StatusCode)
		}
	}
	if _, r := e.reauth(t, tok, map[string]string{"password": pw}); r.StatusCode != 429 {
		t.Fatalf("after five failures the next attempt must wait: %d %s", r.StatusCode, r.Body)
	}
}

// TestReauthPageRefusesOpenRedirects: return_to only takes same-host paths.
func TestReauthPageRefusesOpenRedirects(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tok := e.login(t)
	cookie := "__Host-gatehouse=" + tok
	for _, bad := range []string{"https://evil.example", "//evil.example", "/\\evil.example", "javascript:alert(1)"} {
		r := e.Page(t, "/reauth?action=email.change&return_to="+url.QueryEscape(bad), "Cookie", cookie)
		if r.StatusCode != 200 || strings.Contains(string(r.Body), "evil.example") || strings.Contains(string(r.Body), "javascript:") {
			t.Fatalf("reauth page with return_to=%s: %d", bad, r.StatusCode)
		}
		r = e.Form(t, "/reauth", url.Values{"password": {pw}, "return_to": {bad}}, "Cookie", cookie)
		if r.StatusCode != 303 || r.Header.Get("Location") != "/account" {
			t.Fatalf("POST /reauth with return_to=%s redirected %d to %q", bad, r.StatusCode, r.Header.Get("Location"))
		}
		for _, c := range r.Cookies() { // the rotated token for the next round
			if c.Name == "__Host-gatehouse" {
				cookie = "__Host-gatehouse=" + c.Value
			}
		}
	}
}
