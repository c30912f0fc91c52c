package account_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/password"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestSelfServicePath: signup -> mail -> confirm -> login -> whoami -> logout.
func TestSelfServicePath(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	email := "Alice@Example.COM"
	r := e.Do(t, "POST", "/api/v1/signup", "", map[string]string{"email": email, "password": goodPassword, "name": "Alice"})
	e.expect(t, r, 202, "")
	m := e.Srv.WaitMail(t, "Alice@example.com", "Confirm your email address for Acme Test")
	if !strings.Contains(m.HTML, "Confirm my email address") || !strings.Contains(m.Text, "Alice@example.com") || !strings.HasPrefix(m.Text, "Hello Alice,") {
		t.Fatalf("verification mail: %+v", m)
	}
	for _, l := range m.Links {
		if !strings.HasPrefix(l, fmt.Sprintf("http://%s:%d/", e.Host, e.Srv.Port)) {
			t.Fatalf("link %s does not point at the tenant's own host", l)
		}
	}
	tok := testutil.TokenFrom(t, m, "/verify")

	// Not verified yet: login refused with a resend link.
	r = e.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": "alice@example.com", "password": goodPassword})
	e.expect(t, r, 403, "email_not_verified")
	if !strings.Contains(string(r.Body), "/verify/resend") {
		t.Fatalf("no resend link: %s", r.Body)
	}

	// The link's page does not consume the token (mail scanners follow links with GET).
	page := e.Page(t, "/verify?token="+tok)
	if page.StatusCode != 200 || !strings.Contains(string(page.Body), `name="token" value="`+tok+`"`) {
		t.Fatalf("verify page: %d %s", page.StatusCode, page.Body)
	}
	if page.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatal("verify page without Referrer-Policy: no-referrer")
	}
	r = e.Do(t, "POST", "/api/v1/verification/confirm", "", map[string]string{"token": tok})
	e.expect(t, r, 200, "")

	r = e.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": "ALICE@example.com", "password": goodPassword})
	e.expect(t, r, 200, "")
	var login struct {
		Session struct {
			ID, Token string
			ExpiresAt time.Time `json:"expires_at"`
		}
	}
	r.JSON(t, &login)
	if len(login.Session.Token) != 43 {
		t.Fatalf("session token %q is not 256 bits in base64url", login.Session.Token)
	}
	c := r.Header.Get("Set-Cookie")
	for _, want := range []string{session.CookieName + "=" + login.Session.Token, "Path=/", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(c, want) {
			t.Errorf("cookie %q lacks %q", c, want)
		}
	}
	if strings.Contains(strings.ToLower(c), "domain=") {
		t.Errorf("cookie %q must be host-only", c)
	}

	who := e.Do(t, "GET", "/api/v1/session", login.Session.Token, nil)
	e.expect(t, who, 200, "")
	var w struct {
		Session struct {
			ID      string
			AAL     string
			Methods []string
		}
		User struct {
			Email           string
			EmailVerified   bool       `json:"email_verified"`
			EmailVerifiedAt *time.Time `json:"email_verified_at"`
		}
		Tenant struct{ Slug string }
	}
	who.JSON(t, &w)
	if w.User.Email != "Alice@example.com" || !w.User.EmailVerified || w.User.EmailVerifiedAt == nil || w.Session.ID != login.Session.ID ||
		w.Session.AAL != "aal1" || len(w.Session.Methods) != 1 || w.Tenant.Slug != e.Tenant.Slug {
		t.Fatalf("whoami: %s", who.Body)
	}
	// The cookie works like the bearer token.
	byCookie := e.Do(t, "GET", "/api/v1/session", "", nil, "Cookie", session.CookieName+"="+login.Session.Token)
	e.expect(t, byCookie, 200, "")

	e.expect(t, e.Do(t, "POST", "/api/v1/logout", login.Session.Token, nil), 204, "")
	e.expect(t, e.Do(t, "GET", "/api/v1/session", login.Session.Token, nil), 401, "unauthenticated")
	// The session token of one tenant means nothing on another tenant's host.
	other := newEnv(t, nil)
	tok2 := e.Login(t, "alice@example.com", goodPassword)
	other.expect(t, other.Do(t, "GET", "/api/v1/session", tok2, nil), 401, "unauthenticated")
}

func TestVerificationModes(t *testing.T) {
	t.Parallel()
	t.Run("grace", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(p *tenant.Policy) { p.Verification.Mode = "grace"; p.Verification.GraceHours = 2 })
		e.Signup(t, "g@example.com")
		e.Login(t, "g@example.com", goodPassword) // within the grace period
		e.admin(t, "UPDATE users SET created_at = $1 WHERE tenant_id = $2", ago(3*time.Hour), e.Tenant.ID)
		e.expect(t, e.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": "g@example.com", "password": goodPassword}), 403, "email_not_verified")
	})
	t.Run("optional", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(p *tenant.Policy) { p.Verification.Mode = "optional" })
		e.Signup(t, "o@example.com")
		e.Srv.WaitMail(t, "o@example.com", "Confirm") // still offered
		tok := e.Login(t, "o@example.com", goodPassword)
		who := e.Do(t, "GET", "/api/v1/session", tok, nil)
		if !strings.Contains(string(who.Body), `"email_verified":false`) {
			t.Fatalf("optional mode must still report the unverified flag: %s", who.Body)
		}
	})
	t.Run("required", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, nil)
		e.Signup(t, "r@example.com")
		e.expect(t, e.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": "r@example.com", "password": goodPassword}), 403, "email_not_verified")
	})
}

func TestTokenAbuse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	confirm := func(env *env, tok string) *testutil.Response {
		return env.Do(t, "POST", "/api/v1/verification/confirm", "", map[string]string{"token": tok})
	}
	e.Signup(t, "tok@example.com")
	tok := testutil.TokenFrom(t, e.Srv.WaitMail(t, "tok@example.com", "Confirm"), "/verify")

	// Cross-tenant: the token means nothing on another tenant's host, and is not used up there.
	other := newEnv(t, nil)
	other.expect(t, confirm(other, tok), 400, "invalid_token")

	tampered := []byte(tok)
	tampered[5] ^= 1
	if tampered[5] == '-' || tampered[5] == '_' {
		tampered[5] = 'A'
	}
	for name, bad := range map[string]string{"tampered": string(tampered), "truncated": tok[:20], "empty": "", "garbage": strings.Repeat("!", 43)} {
		if r := confirm(e, bad); r.StatusCode != 400 || r.ErrorCode() != "invalid_token" {
			t.Fatalf("%s token: %d %s", name, r.StatusCode, r.Body)
		}
	}
	e.expect(t, confirm(e, tok), 200, "")
	e.expect(t, confirm(e, tok), 409, "email_already_confirmed") // reuse: it did its work; the answer says so

	// Expiry.
	e.Signup(t, "exp@example.com")
	tok = testutil.TokenFrom(t, e.Srv.WaitMail(t, "exp@example.com", "Confirm"), "/verify")
	e.admin(t, "UPDATE email_tokens SET expires_at = now() - interval '1 second' WHERE tenant_id = $1", e.Tenant.ID)
	e.expect(t, confirm(e, tok), 400, "invalid_token")

	// A token for an old address never verifies a new one.
	e.Signup(t, "old@example.com")
	tok = testutil.TokenFrom(t, e.Srv.WaitMail(t, "old@example.com", "Confirm"), "/verify")
	e.admin(t, "UPDATE users SET email = 'new@example.com' WHERE tenant_id = $1 AND email = 'old@example.com'", e.Tenant.ID)
	e.expect(t, confirm(e, tok), 400, "invalid_token")
	var verified bool
	if err := e.d.Admin.QueryRow(context.Background(), "SELECT email_verified_at IS NOT NULL FROM users WHERE tenant_id = $1 AND email = 'new@example.com'", e.Tenant.ID).Scan(&verified); err != nil || verified {
		t.Fatalf("new address verified by the old address's token (%v)", err)
	}

	// Tokens are stored hashed: the raw token appears nowhere in the table.
	var n int
	if err := e.d.Admin.QueryRow(context.Background(), "SELECT count(*) FROM email_tokens WHERE token_hash = convert_to($1, 'UTF8')", tok).Scan(&n); err != nil || n != 0 {
		t.Fatalf("raw token stored (%d, %v)", n, err)
	}
}

// TestNoEnumeration: signup, resend and forgot answer byte-identically for existing and
// unknown addresses.
func TestNoEnumeration(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.SignupVerified(t, "known@example.com")
	e.Signup(t, "pending@example.com")
	cases := []struct {
		path string
		body func(email string) any
	}{
		{"/api/v1/signup", func(m string) any { return map[string]string{"email": m, "password": goodPassword} }},
		{"/api/v1/verification/resend", func(m string) any { return map[string]string{"email": m} }},
		{"/api/v1/password/forgot", func(m string) any { return map[string]string{"email": m} }},
	}
	for _, c := range cases {
		for _, known := range []string{"known@example.com", "pending@example.com"} {
			a := e.Do(t, "POST", c.path, "", c.body(known))
			b := e.Do(t, "POST", c.path, "", c.body("nobody-"+fmt.Sprint(time.Now().UnixNano())+"@example.com"))
			if a.StatusCode != b.StatusCode || string(a.Body) != string(b.Body) || a.Header.Get("Content-Type") != b.Header.Get("Content-Type") {
				t.Fatalf("%s with %s: %d %q vs unknown %d %q", c.path, known, a.StatusCode, a.Body, b.StatusCode, b.Body)
			}
			if a.StatusCode != 202 {
				t.Fatalf("%s: %d %s", c.path, a.StatusCode, a.Body)
			}
		}
	}
	// The existing owner was told someone tried to sign up with their address.
	e.Srv.WaitMail(t, "known@example.com", "Someone tried to sign up")
}

func TestConcurrentSignups(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			r := e.Do(t, "POST", "/api/v1/signup", "", map[string]string{"email": "race@example.com", "password": goodPassword}, "X-Forwarded-For", fmt.Sprintf("10.0.0.%d", i+1))
			if r.StatusCode != 202 {
				t.Errorf("signup %d: %d %s", i, r.StatusCode, r.Body)
			}
		})
	}
	wg.Wait()
	count := func(env *env) int {
		var n int
		if err := env.d.Admin.QueryRow(context.Background(), `SELECT count(*) FROM users WHERE tenant_id = $1 AND lower(email) = 'race@example.com'`,
			env.Tenant.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if here := count(e); here != 1 {
		t.Fatalf("%d users after six concurrent signups with one address; want 1", here)
	}
	// The same address in another tenant of the same database is another person.
	e2 := &env{Site: testutil.NewSite(t, e.Srv, "acct2", testutil.SiteName("Second")), d: e.d}
	e2.Signup(t, "RACE@example.com")
	if here, there := count(e), count(e2); here != 1 || there != 1 {
		t.Fatalf("users: %d in the first tenant, %d in the second; want 1 and 1", here, there)
	}
}

func TestSignupPolicyAndPasswords(t *testing.T) {
	t.Parallel()
	closed := newEnv(t, func(p *tenant.Policy) { p.Signup.Enabled = false })
	closed.expect(t, closed.Do(t, "POST", "/api/v1/signup", "", map[string]string{"email": "a@example.com", "password": goodPassword}), 403, "signup_disabled")

	e := newEnv(t, func(p *tenant.Policy) { p.Signup.AllowedDomains = []string{"corp.example"} })
	e.expect(t, e.Do(t, "POST", "/api/v1/signup", "", map[string]string{"email": "a@gmail.example", "password": goodPassword}), 403, "signup_domain_not_allowed")
	e.expect(t, e.Do(t, "POST", "/api/v1/signup", "", map[string]string{"email": "a@CORP.example", "password": goodPassword}), 202, "")

	for _, pw := range []string{"short", "password", "12345678", "qwertyuiop", "corp.example", strings.Repeat("x", 257)} {
		r := e.Do(t, "POST", "/api/v1/signup", "", map[string]string{"email": "b@corp.example", "password": pw})
		e.expect(t, r, 400, "weak_password")
	}
	// Any characters are allowed: no composition rules, Unicode welcome.
	e.expect(t, e.Do(t, "POST", "/api/v1/signup", "", map[string]string{"email": "c@corp.example", "password": "ünïcödé 密码 ist wunderbar"}), 202, "")
	for _, bad := range []string{"not-an-email", "a@b", strings.Repeat("a", 250) + "@corp.example"} {
		e.expect(t, e.Do(t, "POST", "/api/v1/signup", "", map[string]string{"email": bad, "password": goodPassword}), 400, "invalid_email")
	}
	e.expect(t, e.Do(t, "POST", "/api/v1/signup", "", `{"email":"d@corp.example","password":"x","admin":true}`), 400, "invalid_json")
}

func TestPasswordReset(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.SignupVerified(t, "reset@example.com")
	old := e.Login(t, "reset@example.com", goodPassword)

	e.expect(t, e.Do(t, "POST", "/api/v1/password/forgot", "", map[string]string{"email": "reset@example.com"}), 202, "")
	tok := testutil.TokenFrom(t, e.Srv.WaitMail(t, "reset@example.com", "Reset your"), "/password/reset")
	e.expect(t, e.Do(t, "POST", "/api/v1/password/reset", "", map[string]string{"token": tok, "password": "password"}), 400, "weak_password")
	e.expect(t, e.Do(t, "POST", "/api/v1/password/reset", "", map[string]string{"token": tok, "password": "new tangerine bicycle route"}), 200, "")
	e.expect(t, e.Do(t, "POST", "/api/v1/password/reset", "", map[string]string{"token": tok, "password": "another tangerine bicycle"}), 409, "token_used")

	e.expect(t, e.Do(t, "GET", "/api/v1/session", old, nil), 401, "unauthenticated") // every session ended
	e.expect(t, e.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": "reset@example.com", "password": goodPassword}), 401, "invalid_credentials")
	e.Login(t, "reset@example.com", "new tangerine bicycle route")
	e.Srv.WaitMail(t, "reset@example.com", "password was changed")
}

// TestOwnerSignsInByReset: the owner created with the tenant has no password; a reset sets
// one and also proves (and marks) the address verified.
func TestOwnerSignsInByReset(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	withOwner := func(in *tenant.CreateInput) { in.AdminEmail = "it@owner.example" }
	e := &env{Site: testutil.NewSite(t, srv, "own", testutil.SiteName("Owner Co"), withOwner), d: d}
	e.expect(t, e.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": "it@owner.example", "password": goodPassword}), 401, "invalid_credentials")
	e.expect(t, e.Do(t, "POST", "/api/v1/password/forgot", "", map[string]string{"email": "it@owner.example"}), 202, "")
	tok := testutil.TokenFrom(t, srv.WaitMail(t, "it@owner.example", "Reset your"), "/password/reset")
	e.expect(t, e.Do(t, "POST", "/api/v1/password/reset", "", map[string]string{"token": tok, "password": goodPassword}), 200, "")
	s := e.Login(t, "it@owner.example", goodPassword)
	if r := e.Do(t, "GET", "/api/v1/session", s, nil); !strings.Contains(string(r.Body), `"email_verified":true`) {
		t.Fatalf("reset must mark the address verified: %s", r.Body)
	}
}

func TestEmailChange(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.SignupVerified(t, "before@example.com")
	s := e.Login(t, "before@example.com", goodPassword)

	e.expect(t, e.Do(t, "POST", "/api/v1/account/email", s, map[string]string{"email": "before@example.com"}), 400, "email_unchanged")
	e.expect(t, e.Do(t, "POST", "/api/v1/account/email", "", map[string]string{"email": "after@example.com"}), 401, "unauthenticated")
	e.expect(t, e.Do(t, "POST", "/api/v1/account/email", s, map[string]string{"email": "after@example.com"}), 202, "")
	tok := testutil.TokenFrom(t, e.Srv.WaitMail(t, "after@example.com", "Confirm your new email address"), "/verify")
	// Nothing changes before confirmation.
	if r := e.Do(t, "GET", "/api/v1/session", s, nil); !strings.Contains(string(r.Body), "before@example.com") {
		t.Fatalf("changed before confirmation: %s", r.Body)
	}
	e.expect(t, e.Do(t, "POST", "/api/v1/verification/confirm", "", map[string]string{"token": tok}), 200, "")
	if r := e.Do(t, "GET", "/api/v1/session", s, nil); !strings.Contains(string(r.Body), "after@example.com") {
		t.Fatalf("not changed after confirmation: %s", r.Body)
	}
	e.Login(t, "after@example.com", goodPassword)

	// The old address got a notice with an undo link that restores it and signs everyone out.
	undo := testutil.TokenFrom(t, e.Srv.WaitMail(t, "before@example.com", "email address was changed"), "/email/undo")
	e.expect(t, e.Do(t, "POST", "/api/v1/account/email/undo", "", map[string]string{"token": undo}), 200, "")
	e.expect(t, e.Do(t, "GET", "/api/v1/session", s, nil), 401, "unauthenticated")
	e.Login(t, "before@example.com", goodPassword)
	e.expect(t, e.Do(t, "POST", "/api/v1/account/email/undo", "", map[string]string{"token": undo}), 409, "token_used")

	// Race: the new address is taken by someone else before confirmation.
	s = e.Login(t, "before@example.com", goodPassword)
	e.expect(t, e.Do(t, "POST", "/api/v1/account/email", s, map[string]string{"email": "taken@example.com"}), 202, "")
	tok = testutil.TokenFrom(t, e.Srv.WaitMail(t, "taken@example.com", "Confirm your new email address"), "/verify")
	e.Signup(t, "taken@example.com")
	e.expect(t, e.Do(t, "POST", "/api/v1/verification/confirm", "", map[string]string{"token": tok}), 409, "email_unavailable")
}

func TestLoginProgressiveDelay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.SignupVerified(t, "slow@example.com")
	wrong := map[string]string{"email": "slow@example.com", "password": "not the password at all"}
	for range 5 { // the first five failures are free
		e.expect(t, e.Do(t, "POST", "/api/v1/login", "", wrong, "X-Forwarded-For", "203.0.113.7"), 401, "invalid_credentials")
	}
	// Then even the right password must wait (the delay doubles with each failure).
	r := e.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": "slow@example.com", "password": goodPassword}, "X-Forwarded-For", "203.0.113.7")
	e.expect(t, r, 429, "rate_limited")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	// Not a lockout: the owner on another network signs in.
	e.expect(t, e.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": "slow@example.com", "password": goodPassword}, "X-Forwarded-For", "198.51.100.9"), 200, "")
	// Unknown accounts get the same treatment (no oracle).
	ghost := map[string]string{"email": "ghost@example.com", "password": "not the password at all"}
	for range 5 {
		e.expect(t, e.Do(t, "POST", "/api/v1/login", "", ghost, "X-Forwarded-For", "203.0.113.8"), 401, "invalid_credentials")
	}
	e.expect(t, e.Do(t, "POST", "/api/v1/login", "", ghost, "X-Forwarded-For", "203.0.113.8"), 429, "rate_limited")
}

func TestLoginPerIPLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	// A fixed one-minute window of 30: 61 tries within a minute put more than 30 in one
	// window even when they straddle a window boundary.
	limited := false
	for i := range 61 {
		r := e.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": fmt.Sprintf("u%d@example.com", i), "password": "whatever it is here"}, "X-Forwarded-For", "192.0.2.50")
		if r.StatusCode == 429 {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("61 logins within a minute from one address were never limited")
	}
}

func TestResendThrottle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.Signup(t, "thr@example.com")
	e.Srv.WaitMail(t, "thr@example.com", "Confirm")
	for range 3 {
		e.expect(t, e.Do(t, "POST", "/api/v1/verification/resend", "", map[string]string{"email": "thr@example.com"}), 202, "")
	}
	// Each resend answers after its transaction committed, and a mail is enqueued in the
	// transaction that causes it: the outbox now holds every mail these requests will send.
	verify := testutil.QueuedMail{Template: mail.TplVerifyEmail, To: "thr@example.com", Jobs: 1}
	if diff := cmp.Diff([]testutil.QueuedMail{verify, verify}, e.d.QueuedMails(t, e.Tenant.ID)); diff != "" {
		t.Fatalf("mails queued after signup and three resends within a minute, want signup + one resend (-want +got):\n%s", diff)
	}
}

// TestRehashOnLogin: a hash made with other parameters is replaced at the next login.
func TestRehashOnLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.SignupVerified(t, "rehash@example.com")
	weak := password.NewHasher(password.Params{MemoryKiB: 8 * 1024, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32})
	h, err := weak.Hash(context.Background(), goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	e.admin(t, "UPDATE password_credentials SET hash = $1 WHERE tenant_id = $2", h, e.Tenant.ID)
	e.Login(t, "rehash@example.com", goodPassword)
	var stored string
	if err := e.d.Admin.QueryRow(context.Background(), "SELECT hash FROM password_credentials WHERE tenant_id = $1", e.Tenant.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stored, "m=19456,t=2,p=1") {
		t.Fatalf("hash not upgraded to the configured parameters: %s", stored)
	}
	e.Login(t, "rehash@example.com", goodPassword)
}
