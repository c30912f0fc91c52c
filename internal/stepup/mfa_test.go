package stepup_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

type mfaStatus struct {
	Enabled, Pending       bool
	RecoveryCodesRemaining int `json:"recovery_codes_remaining"`
}

func (e *env) mfaStatus(t *testing.T, tok string) mfaStatus {
	t.Helper()
	r := e.Do(t, "GET", "/api/v1/mfa", tok, nil)
	if r.StatusCode != 200 {
		t.Fatalf("GET /api/v1/mfa: %d %s", r.StatusCode, r.Body)
	}
	var st mfaStatus
	r.JSON(t, &st)
	return st
}

func (e *env) loginChallenge(t *testing.T) string {
	t.Helper()
	r := e.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": e.email, "password": pw})
	var b struct {
		MFAToken string `json:"mfa_token"`
	}
	r.JSON(t, &b)
	if b.MFAToken == "" {
		t.Fatalf("login did not ask for a code: %d %s", r.StatusCode, r.Body)
	}
	return b.MFAToken
}

// expectRefusal checks a 401 with code and a message that says what to do.
func expectRefusal(t *testing.T, r *testutil.Response, code, says, what string) {
	t.Helper()
	var b struct {
		Error struct{ Code, Message string }
	}
	r.JSON(t, &b)
	if r.StatusCode != 401 || b.Error.Code != code || !strings.Contains(b.Error.Message, says) {
		t.Fatalf("%s: %d %s; want 401 %s saying %q", what, r.StatusCode, r.Body, code, says)
	}
}

// TestTOTPConfirmRetryAndRefusalWording (issue 16, items 5 and 11): a wrong code while
// confirming keeps the set-up pending with the same secret (audited, counted); the recovery
// codes come with the confirmation; the status shows how many remain; a TOTP code whose step
// was used (the confirming one) says to wait for the next code, a used recovery code says it
// was used — each with its own stable code — and both count and are audited as failures.
func TestTOTPConfirmRetryAndRefusalWording(t *testing.T) {
	t.Parallel()
	e := newLimitEnv(t)
	tok := e.login(t)
	if st := e.mfaStatus(t, tok); st.Enabled || st.Pending || st.RecoveryCodesRemaining != 0 {
		t.Fatalf("status before set-up: %+v", st)
	}
	r := e.Do(t, "POST", "/api/v1/mfa/totp", tok, nil)
	var en struct{ Secret string }
	r.JSON(t, &en)
	if r.StatusCode != 201 || en.Secret == "" || strings.Contains(string(r.Body), "recovery_codes") {
		t.Fatalf("enrol: %d %s", r.StatusCode, r.Body)
	}
	expectRefusal(t, e.Do(t, "POST", "/api/v1/mfa/totp/confirm", tok, map[string]string{"code": wrongCode(t, en.Secret, e.clk.Now())}),
		"invalid_code", "stay the same", "confirm with a typo")
	if n := e.d.AuditCount(t, e.Tenant.ID, "mfa.confirm_failed", "invalid_code"); n != 1 {
		t.Fatalf("%d mfa.confirm_failed events; want 1", n)
	}
	if st := e.mfaStatus(t, tok); st.Enabled || !st.Pending {
		t.Fatalf("after a wrong code the set-up must stay pending: %+v", st)
	}
	// The same secret still confirms (no new enrolment), with spaces as apps show it.
	c := code(t, en.Secret, e.clk.Now())
	r = e.Do(t, "POST", "/api/v1/mfa/totp/confirm", tok, map[string]string{"code": c[:3] + " " + c[3:]})
	var on struct {
		Status        string
		RecoveryCodes []string `json:"recovery_codes"`
	}
	r.JSON(t, &on)
	if r.StatusCode != 200 || on.Status != "mfa_enabled" || len(on.RecoveryCodes) != 10 {
		t.Fatalf("confirm with the same secret after a typo: %d %s", r.StatusCode, r.Body)
	}
	if st := e.mfaStatus(t, tok); !st.Enabled || st.Pending || st.RecoveryCodesRemaining != 10 {
		t.Fatalf("status after confirmation: %+v", st)
	}

	// Signing in at once with the code that confirmed: wait for the next one.
	expectRefusal(t, e.Do(t, "POST", "/api/v1/login/mfa", "", map[string]string{"mfa_token": e.loginChallenge(t), "code": c}),
		"totp_code_used", "Wait for the next code", "sign-in with the confirming code")
	if n := e.d.AuditCount(t, e.Tenant.ID, "session.login_failed", "totp_code_used"); n != 1 {
		t.Fatalf("%d session.login_failed/totp_code_used events; want 1", n)
	}
	// A recovery code works once; typed in capitals without the dash it is the same code.
	rc := on.RecoveryCodes[0]
	m := e.loginChallenge(t)
	if r := e.Do(t, "POST", "/api/v1/login/mfa", "", map[string]string{"mfa_token": m, "code": strings.ToUpper(strings.ReplaceAll(rc, "-", ""))}); r.StatusCode != 200 {
		t.Fatalf("recovery code: %d %s", r.StatusCode, r.Body)
	}
	if st := e.mfaStatus(t, tok); st.RecoveryCodesRemaining != 9 {
		t.Fatalf("after one recovery code: %+v", st)
	}
	expectRefusal(t, e.Do(t, "POST", "/api/v1/login/mfa", "", map[string]string{"mfa_token": e.loginChallenge(t), "code": rc}),
		"recovery_code_used", "already used", "sign-in with a used recovery code")
	if n := e.d.AuditCount(t, e.Tenant.ID, "session.login_failed", "recovery_code_used"); n != 1 {
		t.Fatalf("%d session.login_failed/recovery_code_used events; want 1", n)
	}
	expectRefusal(t, e.Do(t, "POST", "/api/v1/reauth", tok, map[string]string{"code": rc}),
		"recovery_code_used", "already used", "re-authentication with a used recovery code")
	// A code that is none of the account's is plain invalid_code.
	expectRefusal(t, e.Do(t, "POST", "/api/v1/login/mfa", "", map[string]string{"mfa_token": e.loginChallenge(t), "code": "zzzzz-zzzzz"}),
		"invalid_code", "not correct", "sign-in with an unknown recovery code")

	// Regenerating needs a two-factor re-authentication; then ten new codes, the old dead.
	e.clk.Advance(6 * time.Minute)
	expectStepUp(t, e.Do(t, "POST", "/api/v1/mfa/recovery-codes", tok, nil), "recovery_codes.regenerate", 300)
	fresh, r := e.reauth(t, tok, map[string]string{"code": code(t, en.Secret, e.clk.Now())})
	if fresh == "" {
		t.Fatalf("reauth with a code: %d %s", r.StatusCode, r.Body)
	}
	r = e.Do(t, "POST", "/api/v1/mfa/recovery-codes", fresh, nil)
	var re struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	r.JSON(t, &re)
	if r.StatusCode != 200 || len(re.RecoveryCodes) != 10 {
		t.Fatalf("regenerate: %d %s", r.StatusCode, r.Body)
	}
	if st := e.mfaStatus(t, fresh); st.RecoveryCodesRemaining != 10 {
		t.Fatalf("after regenerating: %+v", st)
	}
	e.clk.Advance(2 * time.Minute) // past the growing delay of the failures above
	expectRefusal(t, e.Do(t, "POST", "/api/v1/login/mfa", "", map[string]string{"mfa_token": e.loginChallenge(t), "code": on.RecoveryCodes[1]}),
		"invalid_code", "not correct", "an old recovery code after regenerating")
}

// TestConfirmPageShowsSecretOnlyWithinEnrolStepUp: after a wrong code the set-up page comes
// back with the same secret only while the session meets the mfa.enroll step-up (whoever
// could start a new set-up); later the secret is not shown again and the user starts over.
func TestConfirmPageShowsSecretOnlyWithinEnrolStepUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	cookie := "__Host-gatehouse=" + e.login(t)
	r := e.Form(t, "/account/mfa/totp", nil, "Cookie", cookie)
	_, rest, _ := strings.Cut(string(r.Body), `id="totp-secret">`)
	secret, _, _ := strings.Cut(rest, "<")
	if r.StatusCode != 200 || len(secret) != 32 {
		t.Fatalf("set-up page: %d secret %q", r.StatusCode, secret)
	}
	r = e.Form(t, "/account/mfa/totp/confirm", url.Values{"code": {wrongCode(t, secret, e.clk.Now())}}, "Cookie", cookie)
	if body := string(r.Body); r.StatusCode != 401 || !strings.Contains(body, secret) || !strings.Contains(body, "stay the same") {
		t.Fatalf("wrong code within the step-up: %d %s", r.StatusCode, body)
	}
	if r := e.Page(t, "/account/mfa", "Cookie", cookie); !strings.Contains(string(r.Body), "a set-up was started but not finished") {
		t.Fatalf("two-factor page with a pending set-up: %s", r.Body)
	}
	e.clk.Advance(11 * time.Minute) // past mfa.enroll's 10 minutes
	r = e.Form(t, "/account/mfa/totp/confirm", url.Values{"code": {wrongCode(t, secret, e.clk.Now())}}, "Cookie", cookie)
	if body := string(r.Body); r.StatusCode != 401 || strings.Contains(body, secret) || !strings.Contains(body, "Start the set-up again") {
		t.Fatalf("wrong code after the step-up expired: %d %s", r.StatusCode, body)
	}
	// The right code still confirms (the set-up stayed pending) and shows the codes.
	r = e.Form(t, "/account/mfa/totp/confirm", url.Values{"code": {code(t, secret, e.clk.Now())}}, "Cookie", cookie)
	if body := string(r.Body); r.StatusCode != 200 || strings.Count(body, "<li><code>") != 10 || !strings.Contains(body, `id="download-codes"`) {
		t.Fatalf("confirm: %d %s", r.StatusCode, body)
	}
}
