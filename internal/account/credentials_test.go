package account_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// mfaUser is a verified user with TOTP on, in an env with an injected clock.
type mfaUser struct {
	*env
	clk      *testutil.Clock
	email    string
	secret   string
	recovery []string
	session  string // the session that enrolled
}

func newMFAUser(t *testing.T) *mfaUser {
	t.Helper()
	clk := testutil.NewClock()
	e := newEnv(t, nil, testutil.WithClock(clk))
	u := &mfaUser{env: e, clk: clk, email: "guarded@example.com"}
	e.User(t, u.email)
	u.session = e.Login(t, u.email, goodPassword)
	r := e.Do(t, "POST", "/api/v1/mfa/totp", u.session, nil)
	e.expect(t, r, 201, "")
	var en struct{ Secret string }
	r.JSON(t, &en)
	u.secret = en.Secret
	r = e.Do(t, "POST", "/api/v1/mfa/totp/confirm", u.session, map[string]string{"code": u.code(t)})
	e.expect(t, r, 200, "")
	var on struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	r.JSON(t, &on)
	u.recovery = on.RecoveryCodes
	clk.Advance(31 * time.Second) // the confirming code's time step is used up
	return u
}

// code is the right TOTP code now.
func (u *mfaUser) code(t *testing.T) string {
	t.Helper()
	c, err := totp.GenerateCode(u.secret, u.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wrongCode is a six-digit code that none of the accepted time steps (now ±1) produces.
func (u *mfaUser) wrongCode(t *testing.T) string {
	t.Helper()
	valid := map[string]bool{}
	for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
		c, err := totp.GenerateCode(u.secret, u.clk.Now().Add(d))
		if err != nil {
			t.Fatal(err)
		}
		valid[c] = true
	}
	for i := 0; ; i++ {
		if c := fmt.Sprintf("%06d", 123456+i); !valid[c] {
			return c
		}
	}
}

// passwordStep signs in with the right password from ip and returns the MFA challenge.
func (u *mfaUser) passwordStep(t *testing.T, ip string) string {
	t.Helper()
	r := u.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": u.email, "password": goodPassword}, "X-Forwarded-For", ip)
	u.expect(t, r, 200, "")
	var b struct {
		MFARequired bool   `json:"mfa_required"`
		MFAToken    string `json:"mfa_token"`
	}
	r.JSON(t, &b)
	if !b.MFARequired || b.MFAToken == "" {
		t.Fatalf("login with TOTP on: %s", r.Body)
	}
	return b.MFAToken
}

// secondStep sends a code for a fresh challenge from ip: a new sign-in every time, as an
// attacker who knows the password would do to get five more tries per challenge.
func (u *mfaUser) secondStep(t *testing.T, code, ip string) *testutil.Response {
	t.Helper()
	return u.Do(t, "POST", "/api/v1/login/mfa", "", map[string]string{"mfa_token": u.passwordStep(t, ip), "code": code}, "X-Forwarded-For", ip)
}

func expectLimited(t *testing.T, r *testutil.Response, what string) int {
	t.Helper()
	if r.StatusCode != http.StatusTooManyRequests || r.ErrorCode() != "rate_limited" {
		t.Fatalf("%s: %d %s; want 429 rate_limited", what, r.StatusCode, r.Body)
	}
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || secs < 1 {
		t.Fatalf("%s: Retry-After %q", what, r.Header.Get("Retry-After"))
	}
	return secs
}

// TestSecondFactorLockAcrossChallenges (issue 14, finding 4): wrong TOTP codes count per
// account across challenges and client addresses. Ten of them, each after a new sign-in
// with the right password from another address, lock the second factor for 15 minutes:
// even the right code is refused (at sign-in and at re-authentication), the lock is
// audited and mailed, and once it expires the right code works.
func TestSecondFactorLockAcrossChallenges(t *testing.T) {
	t.Parallel()
	u := newMFAUser(t)
	for i := 1; i <= 10; i++ {
		u.clk.Advance(20 * time.Second) // past the growing delay (at most 16 s before the lock)
		r := u.secondStep(t, u.wrongCode(t), fmt.Sprintf("203.0.113.%d", i))
		u.expect(t, r, 401, "invalid_code")
	}
	// Locked: the right code from a new address is refused, and so is re-authentication
	// with it, for the whole lock.
	secs := expectLimited(t, u.secondStep(t, u.code(t), "198.51.100.1"), "right code while locked")
	if secs < 14*60 || secs > 15*60 {
		t.Fatalf("Retry-After %d s; want about 15 minutes", secs)
	}
	expectLimited(t, u.Do(t, "POST", "/api/v1/reauth", u.session, map[string]string{"code": u.code(t)}, "X-Forwarded-For", "198.51.100.2"), "reauth while locked")
	if n := u.d.AuditCount(t, u.Tenant.ID, "session.login_failed", "invalid_code"); n != 10 {
		t.Fatalf("%d session.login_failed/invalid_code events; want 10", n)
	}
	if n := u.d.AuditCount(t, u.Tenant.ID, "mfa.locked", ""); n != 1 {
		t.Fatalf("%d mfa.locked events; want 1", n)
	}
	m := u.Srv.WaitMail(t, u.email, "Too many wrong codes")
	if !strings.Contains(m.Text, "15 minutes") || !strings.Contains(m.Text, "reset your password") {
		t.Fatalf("lock notice: %q", m.Text)
	}
	u.clk.Advance(14 * time.Minute)
	expectLimited(t, u.secondStep(t, u.code(t), "198.51.100.3"), "right code a minute before the lock ends")
	if n := u.d.AuditCount(t, u.Tenant.ID, "session.login", ""); n != 1 {
		t.Fatalf("%d sessions started; want only the enrolling one", n)
	}
	if n := len(u.Srv.Mails(t, u.email)); n != 2 { // "turned on" and one lock notice
		t.Fatalf("%d mails; want the enrolment notice and one lock notice", n)
	}

	// Expired: the right code signs in, and the success clears the count.
	u.clk.Advance(61 * time.Second)
	u.expect(t, u.secondStep(t, u.code(t), "198.51.100.4"), 200, "")
	u.clk.Advance(31 * time.Second)
	u.expect(t, u.secondStep(t, u.wrongCode(t), "198.51.100.5"), 401, "invalid_code")
	u.expect(t, u.secondStep(t, u.code(t), "198.51.100.6"), 200, "")
}

// TestRecoveryCodeLock: wrong recovery codes count on the same per-account counter; while
// locked a valid recovery code is refused and not used up, and it works afterwards.
func TestRecoveryCodeLock(t *testing.T) {
	t.Parallel()
	u := newMFAUser(t)
	for i := 1; i <= 10; i++ {
		u.clk.Advance(20 * time.Second)
		r := u.secondStep(t, fmt.Sprintf("wrong-%05d", i), fmt.Sprintf("203.0.113.%d", i))
		u.expect(t, r, 401, "invalid_code")
	}
	expectLimited(t, u.secondStep(t, u.recovery[0], "198.51.100.1"), "recovery code while locked")
	if n := u.d.AuditCount(t, u.Tenant.ID, "mfa.locked", ""); n != 1 {
		t.Fatalf("%d mfa.locked events; want 1", n)
	}
	u.Srv.WaitMail(t, u.email, "Too many wrong codes")
	u.clk.Advance(15*time.Minute + time.Second)
	u.expect(t, u.secondStep(t, u.recovery[0], "198.51.100.2"), 200, "")
	u.Srv.WaitMail(t, u.email, "A recovery code was used")
}

// TestSecondFactorDelayGrows: after five free wrong codes each further one makes the next
// attempt wait (1 s, then 2 s …), whatever the address.
func TestSecondFactorDelayGrows(t *testing.T) {
	t.Parallel()
	u := newMFAUser(t)
	for i := 1; i <= 5; i++ {
		u.expect(t, u.secondStep(t, u.wrongCode(t), fmt.Sprintf("203.0.113.%d", i)), 401, "invalid_code")
	}
	expectLimited(t, u.secondStep(t, u.code(t), "198.51.100.1"), "sixth attempt at once")
	u.clk.Advance(1100 * time.Millisecond)
	u.expect(t, u.secondStep(t, u.wrongCode(t), "198.51.100.2"), 401, "invalid_code")
	u.clk.Advance(1100 * time.Millisecond) // the wait is 2 s now
	expectLimited(t, u.secondStep(t, u.code(t), "198.51.100.3"), "seventh attempt after 1 s")
	u.clk.Advance(time.Second)
	u.expect(t, u.secondStep(t, u.code(t), "198.51.100.4"), 200, "")
}

// TestSecondFactorGuessesInParallel: guesses sent at once cannot all pass the gate before
// the first failure is written; at most the free five are checked.
func TestSecondFactorGuessesInParallel(t *testing.T) {
	t.Parallel()
	u := newMFAUser(t)
	const n = 12
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = u.passwordStep(t, fmt.Sprintf("203.0.113.%d", i+1))
	}
	wrong := u.wrongCode(t)
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range tokens {
		wg.Go(func() {
			r := u.Do(t, "POST", "/api/v1/login/mfa", "", map[string]string{"mfa_token": tokens[i], "code": wrong}, "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1))
			statuses[i] = r.StatusCode
		})
	}
	wg.Wait()
	checked := 0
	for _, s := range statuses {
		switch s {
		case 401:
			checked++
		case 429:
		default:
			t.Fatalf("statuses %v", statuses)
		}
	}
	if checked != 5 {
		t.Fatalf("%d of %d parallel guesses were checked (statuses %v); want the 5 free ones", checked, n, statuses)
	}
}

// TestPasswordChangeLimited (issue 14, finding 5): current_password on the password change
// is no longer an unlimited oracle. Wrong ones are audited and count per account: after
// five the next try waits, after ten password checks lock for 15 minutes (mailed, audited),
// for re-authentication too, which shares the counter.
func TestPasswordChangeLimited(t *testing.T) {
	t.Parallel()
	clk := testutil.NewClock()
	e := newEnv(t, nil, testutil.WithClock(clk))
	u := &mfaUser{env: e, clk: clk, email: "changer@example.com"}
	e.User(t, u.email)
	s := e.Login(t, u.email, goodPassword)
	change := func(current, ip string) *testutil.Response {
		return e.Do(t, "POST", "/api/v1/account/password", s, map[string]string{"current_password": current, "password": "new tangerine bicycle route"}, "X-Forwarded-For", ip)
	}
	for i := 1; i <= 5; i++ {
		e.expect(t, change("not my password at all", fmt.Sprintf("203.0.113.%d", i)), 401, "invalid_credentials")
	}
	expectLimited(t, change(goodPassword, "198.51.100.1"), "sixth password change at once")
	if n := u.d.AuditCount(t, u.Tenant.ID, "user.password_change_failed", "invalid_current_password"); n != 5 {
		t.Fatalf("%d user.password_change_failed events; want 5", n)
	}
	for i := 6; i <= 10; i++ {
		clk.Advance(20 * time.Second)
		e.expect(t, change("not my password at all", fmt.Sprintf("203.0.113.%d", i)), 401, "invalid_credentials")
	}
	if n := u.d.AuditCount(t, u.Tenant.ID, "user.password_locked", ""); n != 1 {
		t.Fatalf("%d user.password_locked events; want 1", n)
	}
	u.Srv.WaitMail(t, u.email, "Too many wrong passwords")
	clk.Advance(time.Minute)
	expectLimited(t, change(goodPassword, "198.51.100.2"), "right current password while locked")
	expectLimited(t, e.Do(t, "POST", "/api/v1/reauth", s, map[string]string{"password": goodPassword}, "X-Forwarded-For", "198.51.100.3"), "reauth while locked")
	clk.Advance(15 * time.Minute)
	e.expect(t, change(goodPassword, "198.51.100.4"), 200, "")
	e.Login(t, u.email, "new tangerine bicycle route")
}

// TestPasswordChangePageLimited: the account page's form goes through the same gate.
func TestPasswordChangePageLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.SignupVerified(t, "page@example.com")
	s := e.Login(t, "page@example.com", goodPassword)
	post := func(current string) *testutil.Response {
		return e.Form(t, "/account/password", url.Values{"current_password": {current}, "password": {"new tangerine bicycle route"}},
			"Cookie", "__Host-gatehouse="+s)
	}
	for range 5 {
		if r := post("wrong password here"); r.StatusCode != 401 {
			t.Fatalf("wrong current password on the page: %d %s", r.StatusCode, r.Body)
		}
	}
	if r := post(goodPassword); r.StatusCode != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("sixth try on the page: %d (Retry-After %q)", r.StatusCode, r.Header.Get("Retry-After"))
	}
}

// TestTOTPConfirmLimited: the enrolment's confirming code goes through the same gate:
// wrong ones are audited and count per account.
func TestTOTPConfirmLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.SignupVerified(t, "enrol@example.com")
	s := e.Login(t, "enrol@example.com", goodPassword)
	e.expect(t, e.Do(t, "POST", "/api/v1/mfa/totp", s, nil), 201, "")
	for i := 1; i <= 5; i++ {
		e.expect(t, e.Do(t, "POST", "/api/v1/mfa/totp/confirm", s, map[string]string{"code": "000000"}, "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i)), 401, "invalid_code")
	}
	expectLimited(t, e.Do(t, "POST", "/api/v1/mfa/totp/confirm", s, map[string]string{"code": "000000"}, "X-Forwarded-For", "198.51.100.1"), "sixth confirmation at once")
	if n := e.d.AuditCount(t, e.Tenant.ID, "mfa.confirm_failed", ""); n != 5 {
		t.Fatalf("%d mfa.confirm_failed events; want 5", n)
	}
}
