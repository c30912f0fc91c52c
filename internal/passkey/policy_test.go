package passkey_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

func requireAdmins(p *tenant.Policy) { p.Passkeys.RequireForRoles = []string{"owner", "admin"} }

// TestPolicyRequiresPasskeyForAdmins: with passkeys.require_for_roles [owner, admin], an
// admin's password session is refused by the admin API (403 phishing_resistant_required,
// details.url), a password step-up no longer counts for them, and after adding a passkey
// and confirming with it the same session works. Members are not affected.
func TestPolicyRequiresPasskeyForAdmins(t *testing.T) {
	e := newEnv(t, requireAdmins)
	_, tok := e.Person(t, "admin@example.com", "admin")
	r := e.Do(t, "GET", "/api/v1/admin/users", tok, nil)
	var b struct {
		Error struct {
			Code    string
			Details struct{ URL string }
		}
	}
	r.JSON(t, &b)
	if r.StatusCode != http.StatusForbidden || b.Error.Code != "phishing_resistant_required" || !strings.HasPrefix(b.Error.Details.URL, "/account/passkeys/required?") {
		t.Fatalf("admin API with a password session: %d %s", r.StatusCode, r.Body)
	}
	// Step-up for them takes only a passkey: a fresh password does not delete the account.
	pr := e.Do(t, "POST", "/api/v1/reauth", tok, map[string]string{"password": testutil.Password})
	var re struct{ Session struct{ Token string } }
	pr.JSON(t, &re)
	tok = re.Session.Token
	if r := e.Do(t, "DELETE", "/api/v1/account", tok, nil); r.ErrorCode() != "phishing_resistant_required" {
		t.Fatalf("delete after a password step-up: %d %s", r.StatusCode, r.Body)
	}
	// Enrolment stays open to them (the first passkey), then a passkey step-up opens the portal.
	a := newAuthenticator(t, e.origin())
	e.register(t, tok, a)
	r = e.Do(t, "POST", "/api/v1/reauth/passkey/begin", tok, nil)
	r = e.Do(t, "POST", "/api/v1/reauth/passkey/finish", tok, a.get(t, r.Body))
	r.JSON(t, &re)
	if r := e.Do(t, "GET", "/api/v1/admin/users", re.Session.Token, nil); r.StatusCode != http.StatusOK {
		t.Fatalf("admin API after a passkey step-up: %d %s", r.StatusCode, r.Body)
	}
	// A member is not required to.
	_, member := e.Person(t, "member@example.com")
	if r := e.Do(t, "POST", "/api/v1/reauth", member, map[string]string{"password": testutil.Password}); r.StatusCode != http.StatusOK {
		t.Fatalf("member password step-up: %d %s", r.StatusCode, r.Body)
	}
	// The policy refuses a role that does not exist.
	p, err := tenant.ParsePolicy([]byte(`{"passkeys":{"require_for_roles":["root"]}}`), true)
	if err == nil {
		err = p.Validate()
	}
	if err == nil {
		t.Error("a policy naming an unknown role was accepted")
	}
}

// TestBrowserAdminEnrolsPasskeyFirst: in a tenant that requires phishing-resistant sign-in
// for admins, an admin with only a password signs in and is led to add a passkey, confirm
// with it, and only then reaches the portal.
func TestBrowserAdminEnrolsPasskeyFirst(t *testing.T) {
	e := newBrowserEnv(t, requireAdmins)
	const email = "boss@example.com"
	e.User(t, email, "admin")
	e.run(t, "password sign-in to the portal",
		chromedp.Navigate(e.base+"/login?return_to=%2Fadmin"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), testutil.Password),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("required-add-passkey")))
	e.shoot("passkey-required")
	// The portal stays closed meanwhile.
	e.run(t, "portal before the passkey", chromedp.Navigate(e.base+"/admin"), chromedp.WaitVisible(chromedp.ID("required-add-passkey")))
	e.run(t, "add the passkey, confirm with it",
		chromedp.Click(chromedp.ID("required-add-passkey")),
		chromedp.WaitVisible(chromedp.ID("required-use-passkey")),
		chromedp.Click(chromedp.ID("required-use-passkey")),
		chromedp.WaitVisible(chromedp.CSS(`nav`)))
	loc, _ := chromedp.Run(e.ctx, chromedp.Location())
	if !strings.HasPrefix(loc, fmt.Sprintf("%s/admin", e.base)) {
		t.Fatalf("after the passkey the browser is at %q, want the portal", loc)
	}
	if s := e.session(t); s.Session.Assurance != "phr" {
		t.Fatalf("portal session: %+v", s.Session)
	}
}

// TestJSONLoginRestrictedUntilPasskey: in a tenant that requires a passkey of admins, the
// JSON sign-in of an admin by password, and by password and TOTP, says passkey_required and
// gives a session that only the enrolment path takes: other routes answer 403
// phishing_resistant_required (API) or send the page to the passkey page. A passkey
// confirmation lifts the restriction; a member is not restricted.
func TestJSONLoginRestrictedUntilPasskey(t *testing.T) {
	e := newEnv(t, func(p *tenant.Policy) { p.Passkeys.RequireForRoles = []string{"admin"} })
	e.User(t, "owner@example.com", "owner")
	owner := e.Login(t, "owner@example.com", testutil.Password)
	login := func(email string) (*testutil.Response, string) {
		t.Helper()
		r := e.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": email, "password": testutil.Password})
		var b struct {
			PasskeyRequired bool   `json:"passkey_required"`
			PasskeyURL      string `json:"passkey_url"`
			MFAToken        string `json:"mfa_token"`
		}
		r.JSON(t, &b)
		if b.MFAToken != "" {
			return r, b.MFAToken
		}
		if r.StatusCode != http.StatusOK || !b.PasskeyRequired || !strings.HasPrefix(b.PasskeyURL, "/account/passkeys/required?") {
			t.Fatalf("password login of an admin: %d %s", r.StatusCode, r.Body)
		}
		return r, loginToken(t, r)
	}
	restricted := func(step, tok string) {
		t.Helper()
		for _, path := range []string{"/api/v1/sessions", "/api/v1/mfa", "/api/v1/account/export"} {
			r := e.Do(t, "GET", path, tok, nil)
			var b struct {
				Error struct {
					Code    string
					Details struct{ URL string }
				}
			}
			r.JSON(t, &b)
			if r.StatusCode != http.StatusForbidden || b.Error.Code != "phishing_resistant_required" || !strings.HasPrefix(b.Error.Details.URL, "/account/passkeys/required?") {
				t.Errorf("%s: GET %s: %d %s", step, path, r.StatusCode, r.Body)
			}
		}
		if r := e.Page(t, "/sessions", "Cookie", "__Host-gatehouse="+tok); r.StatusCode != http.StatusSeeOther ||
			!strings.HasPrefix(r.Header.Get("Location"), "/account/passkeys/required?return_to=%2Fsessions") {
			t.Errorf("%s: the sessions page: %d %s", step, r.StatusCode, r.Header.Get("Location"))
		}
		if s := e.whoami(t, tok); s.Session.Assurance == "phr" {
			t.Errorf("%s: session %+v", step, s.Session)
		}
	}

	// Password and TOTP: TOTP is turned on while a member, then the owner makes them admin.
	id, tok := e.Person(t, "totp@example.com")
	code := enableTOTPRecovery(t, e, tok)
	if r := e.Do(t, "PUT", "/api/v1/admin/users/"+id.String()+"/roles", owner, map[string]any{"roles": []string{"admin"}}); r.StatusCode != http.StatusOK {
		t.Fatalf("set roles: %d %s", r.StatusCode, r.Body)
	}
	_, mfaToken := login("totp@example.com")
	r := e.Do(t, "GET", "/api/v1/mfa", tok, nil) // the member session before the role change is restricted too
	if r.ErrorCode() != "phishing_resistant_required" {
		t.Errorf("older session of the new admin: %d %s", r.StatusCode, r.Body)
	}
	r = e.Do(t, "POST", "/api/v1/login/mfa", "", map[string]string{"mfa_token": mfaToken, "code": code})
	var mb struct {
		PasskeyRequired bool `json:"passkey_required"`
	}
	r.JSON(t, &mb)
	if !mb.PasskeyRequired {
		t.Errorf("password+TOTP login: %d %s", r.StatusCode, r.Body)
	}
	restricted("password+TOTP", loginToken(t, r))

	// Password alone; then the enrolment path: add a passkey, confirm with it.
	e.User(t, "admin@example.com", "admin")
	_, atok := login("admin@example.com")
	restricted("password", atok)
	a := newAuthenticator(t, e.origin())
	e.register(t, atok, a)
	r = e.Do(t, "POST", "/api/v1/reauth/passkey/begin", atok, nil)
	r = e.Do(t, "POST", "/api/v1/reauth/passkey/finish", atok, a.get(t, r.Body))
	ptok := loginToken(t, r)
	if r := e.Do(t, "GET", "/api/v1/sessions", ptok, nil); r.StatusCode != http.StatusOK {
		t.Errorf("after a passkey confirmation: %d %s", r.StatusCode, r.Body)
	}

	// A member is not restricted.
	r = e.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": "owner@example.com", "password": testutil.Password})
	if strings.Contains(string(r.Body), "passkey_required") {
		t.Errorf("owner login says passkey_required: %s", r.Body)
	}
	if r := e.Do(t, "GET", "/api/v1/sessions", loginToken(t, r), nil); r.StatusCode != http.StatusOK {
		t.Errorf("owner sessions: %d %s", r.StatusCode, r.Body)
	}
}

// enableTOTPRecovery turns TOTP on for the session's user and returns one of the recovery
// codes (a second factor for a later sign-in that does not wait for the next TOTP step).
func enableTOTPRecovery(t *testing.T, e *env, tok string) string {
	t.Helper()
	r := e.Do(t, "POST", "/api/v1/mfa/totp", tok, nil)
	var en struct{ Secret string }
	r.JSON(t, &en)
	code, err := totp.GenerateCode(en.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r = e.Do(t, "POST", "/api/v1/mfa/totp/confirm", tok, map[string]string{"code": code})
	var out struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	r.JSON(t, &out)
	if r.StatusCode != http.StatusOK || len(out.RecoveryCodes) == 0 {
		t.Fatalf("confirm totp: %d %s", r.StatusCode, r.Body)
	}
	return out.RecoveryCodes[0]
}
