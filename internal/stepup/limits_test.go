package stepup_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// newLimitEnv is an env whose server takes the client address from X-Forwarded-For.
func newLimitEnv(t *testing.T) *env {
	t.Helper()
	return newEnv(t, nil, testutil.TrustProxyHeaders)
}

// enrol turns TOTP on for the session's user and returns the secret.
func (e *env) enrol(t *testing.T, tok string) string {
	t.Helper()
	r := e.Do(t, "POST", "/api/v1/mfa/totp", tok, nil)
	if r.StatusCode != 201 {
		t.Fatalf("enrol: %d %s", r.StatusCode, r.Body)
	}
	var en struct{ Secret string }
	r.JSON(t, &en)
	if r := e.Do(t, "POST", "/api/v1/mfa/totp/confirm", tok, map[string]string{"code": code(t, en.Secret, e.clk.Now())}); r.StatusCode != 200 {
		t.Fatalf("confirm: %d %s", r.StatusCode, r.Body)
	}
	e.clk.Advance(31 * time.Second)
	return en.Secret
}

// wrongCode is a code that no accepted time step (now ±1) produces.
func wrongCode(t *testing.T, secret string, now time.Time) string {
	t.Helper()
	valid := map[string]bool{}
	for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
		valid[code(t, secret, now.Add(d))] = true
	}
	for i := 0; ; i++ {
		if c := fmt.Sprintf("%06d", 654321+i); !valid[c] {
			return c
		}
	}
}

func expect429(t *testing.T, r *testutil.Response, what string) {
	t.Helper()
	if r.StatusCode != http.StatusTooManyRequests || r.ErrorCode() != "rate_limited" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("%s: %d %s (Retry-After %q); want 429 rate_limited", what, r.StatusCode, r.Body, r.Header.Get("Retry-After"))
	}
}

// TestReauthAndPasswordChangeShareCounter (issue 14, finding 5): a wrong password at
// re-authentication and a wrong current_password at password change are wrong guesses of
// one secret: they count together, per account, whatever the client address, and are
// audited.
func TestReauthAndPasswordChangeShareCounter(t *testing.T) {
	t.Parallel()
	e := newLimitEnv(t)
	tok := e.login(t)
	for i := 1; i <= 3; i++ {
		r := e.Do(t, "POST", "/api/v1/reauth", tok, map[string]string{"password": "wrong password here"}, "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i))
		if r.StatusCode != 401 || r.ErrorCode() != "invalid_credentials" {
			t.Fatalf("wrong reauth password: %d %s", r.StatusCode, r.Body)
		}
	}
	for i := 4; i <= 5; i++ {
		r := e.Do(t, "POST", "/api/v1/account/password", tok, map[string]string{"current_password": "wrong password here", "password": "new tangerine bicycle route"}, "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i))

		if r.StatusCode != 401 || r.ErrorCode() != "invalid_credentials" {
			t.Fatalf("wrong current password: %d %s", r.StatusCode, r.Body)
		}
	}
	expect429(t, e.Do(t, "POST", "/api/v1/reauth", tok, map[string]string{"password": pw}, "X-Forwarded-For", "198.51.100.1"), "reauth after five shared failures")
	expect429(t, e.Do(t, "POST", "/api/v1/account/password", tok, map[string]string{"current_password": pw, "password": "new tangerine bicycle route"}, "X-Forwarded-For", "198.51.100.2"),
		"password change after five shared failures")
	if n := e.d.AuditCount(t, e.Tenant.ID, "session.step_up_failed", "invalid_password"); n != 3 {
		t.Fatalf("%d session.step_up_failed events; want 3", n)
	}
	if n := e.d.AuditCount(t, e.Tenant.ID, "user.password_change_failed", "invalid_current_password"); n != 2 {
		t.Fatalf("%d user.password_change_failed events; want 2", n)
	}
	// The wait passes; a right password clears the count for both.
	e.clk.Advance(2 * time.Second)
	fresh, r := e.reauth(t, tok, map[string]string{"password": pw})
	if fresh == "" {
		t.Fatalf("reauth after the wait: %d %s", r.StatusCode, r.Body)
	}
	for i := 1; i <= 4; i++ {
		r := e.Do(t, "POST", "/api/v1/account/password", fresh, map[string]string{"current_password": "wrong password here", "password": "new tangerine bicycle route"}, "X-Forwarded-For", fmt.Sprintf("192.0.2.%d", i))

		if r.StatusCode != 401 {
			t.Fatalf("after a success the count starts again: %d %s", r.StatusCode, r.Body)
		}
	}
}

// TestReauthCodeLock (issue 14, finding 4): wrong codes at re-authentication count on the
// account's second-factor counter, the same one as the second sign-in step: ten lock both
// for 15 minutes, even for the right code, audited; then the right code works again.
func TestReauthCodeLock(t *testing.T) {
	t.Parallel()
	e := newLimitEnv(t)
	tok := e.login(t)
	secret := e.enrol(t, tok)
	for i := 1; i <= 10; i++ {
		e.clk.Advance(20 * time.Second) // past the growing delay
		r := e.Do(t, "POST", "/api/v1/reauth", tok, map[string]string{"code": wrongCode(t, secret, e.clk.Now())}, "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i))
		if r.StatusCode != 401 || r.ErrorCode() != "invalid_code" {
			t.Fatalf("wrong code %d: %d %s", i, r.StatusCode, r.Body)
		}
	}
	expect429(t, e.Do(t, "POST", "/api/v1/reauth", tok, map[string]string{"code": code(t, secret, e.clk.Now())}, "X-Forwarded-For", "198.51.100.1"), "right code while locked")
	if n := e.d.AuditCount(t, e.Tenant.ID, "session.step_up_failed", "invalid_code"); n != 10 {
		t.Fatalf("%d session.step_up_failed/invalid_code events; want 10", n)
	}
	if n := e.d.AuditCount(t, e.Tenant.ID, "mfa.locked", ""); n != 1 {
		t.Fatalf("%d mfa.locked events; want 1", n)
	}
	// The sign-in's second step is locked too.
	r := e.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": e.email, "password": pw}, "X-Forwarded-For", "198.51.100.2")
	var ch struct {
		MFAToken string `json:"mfa_token"`
	}
	r.JSON(t, &ch)
	expect429(t, e.Do(t, "POST", "/api/v1/login/mfa", "", map[string]string{"mfa_token": ch.MFAToken, "code": code(t, secret, e.clk.Now())}, "X-Forwarded-For", "198.51.100.2"),
		"sign-in with the right code while locked")

	e.clk.Advance(15*time.Minute + time.Second)
	fresh, r := e.reauth(t, tok, map[string]string{"code": code(t, secret, e.clk.Now())})
	if fresh == "" {
		t.Fatalf("right code after the lock: %d %s", r.StatusCode, r.Body)
	}
}

// TestReauthLockIsMailed: a lock that starts at re-authentication is mailed to the user,
// like one that starts at sign-in. The step-up service needs the account service's notice
// (stepup.Deps.LockNotice, which NewService requires).
func TestReauthLockIsMailed(t *testing.T) {
	t.Parallel()
	e := newLimitEnv(t)
	tok := e.login(t)
	for i := 1; i <= 10; i++ {
		e.clk.Advance(20 * time.Second)
		r := e.Do(t, "POST", "/api/v1/reauth", tok, map[string]string{"password": "wrong password here"}, "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i))
		if r.StatusCode != 401 {
			t.Fatalf("wrong password %d: %d %s", i, r.StatusCode, r.Body)
		}
	}
	if n := e.d.AuditCount(t, e.Tenant.ID, "user.password_locked", ""); n != 1 {
		t.Fatalf("%d user.password_locked events; want 1", n)
	}
	e.Srv.WaitMail(t, e.email, "Too many wrong passwords")
}

// TestNewServiceRefusesMissingDependencies: a step-up service without its lock notice (or
// any other dependency) is refused at start instead of silently not mailing locks.
func TestNewServiceRefusesMissingDependencies(t *testing.T) {
	if _, err := stepup.NewService(stepup.Deps{}); err == nil {
		t.Fatal("a step-up service without dependencies was built")
	}
}
