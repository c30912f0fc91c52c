package passkey_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

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
	if r := e.Do(t, "DELETE", "/api/v1/account", tok, nil); r.ErrorCode() != "step_up_required" || !strings.Contains(string(r.Body), "enroll_url") {
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
