package passkey_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// browserEnv is a tenant on a server with a clock the test moves, and a Chromium with a
// CDP virtual authenticator (CTAP2, internal transport, resident keys, user verification).
type browserEnv struct {
	*testutil.Site
	d    *testutil.DB
	clk  *testutil.Clock
	ctx  context.Context
	auth webauthn.AuthenticatorID
	base string
}

func newBrowserEnv(t *testing.T, edit func(*tenant.Policy)) *browserEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	d := testutil.FreshDB(t)
	clk := testutil.NewClock()
	srv := testutil.NewServer(t, d, testutil.WithClock(clk))
	e := &browserEnv{Site: testutil.NewSite(t, srv, "pkb", testutil.SiteName("Passkey Co"), testutil.SitePolicy(edit)), d: d, clk: clk,
		ctx: testutil.Browser(t)}
	e.base = fmt.Sprintf("http://%s:%d", e.Host, e.Srv.Port)
	err := chromedp.Do(e.ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, webauthn.Enable, webauthn.EnableParams{}); err != nil {
			return err
		}
		res, err := cdp.Call(ctx, tg, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportInternal,
			HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
			DefaultBackupEligibility: true, DefaultBackupState: true,
		}})
		e.auth = res.AuthenticatorID
		return err
	}))
	if err != nil {
		t.Fatalf("virtual authenticator: %v", err)
	}
	return e
}

func (e *browserEnv) run(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		loc, _ := chromedp.Run(e.ctx, chromedp.Location())
		body, _ := chromedp.Run(e.ctx, chromedp.Text(chromedp.CSS("main")))
		t.Fatalf("%s: %v (at %s: %q)", what, err, loc, body)
	}
}

// shoot saves a screenshot of the page to $GATEHOUSE_SCREENSHOTS (docs/screenshots when
// refreshing the pictures), when it is set.
func (e *browserEnv) shoot(name string) {
	dir := os.Getenv("GATEHOUSE_SCREENSHOTS")
	if dir == "" {
		return
	}
	if img, err := chromedp.Run(e.ctx, chromedp.FullScreenshot(100)); err == nil {
		_ = os.WriteFile(filepath.Join(dir, name+".png"), img, 0o644)
	}
}

// presence turns the virtual authenticator's automatic user presence on or off.
func (e *browserEnv) presence(t *testing.T, on bool) {
	t.Helper()
	e.run(t, "set presence", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, webauthn.SetAutomaticPresenceSimulation,
			webauthn.SetAutomaticPresenceSimulationParams{AuthenticatorID: e.auth, Enabled: on})
		return err
	}))
}

// passwordLogin signs in on the login page with the password.
func (e *browserEnv) passwordLogin(t *testing.T, email string, until chromedp.Action[chromedp.Void]) {
	t.Helper()
	e.run(t, "password sign-in",
		chromedp.Navigate(e.base+"/login"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), testutil.Password),
		chromedp.Submit(chromedp.ID("password")),
		until)
}

// addPasskey adds a passkey named name from the account page.
func (e *browserEnv) addPasskey(t *testing.T, name string) {
	t.Helper()
	e.run(t, "add a passkey",
		chromedp.Navigate(e.base+"/account"),
		chromedp.WaitVisible(chromedp.ID("add-passkey")),
		chromedp.SendKeys(chromedp.ID("passkey-name"), name),
		chromedp.Click(chromedp.ID("add-passkey")),
		chromedp.WaitVisible(chromedp.ID("passkey-list")))
	text, _ := chromedp.Run(e.ctx, chromedp.Text(chromedp.ID("passkey-list")))
	if !strings.Contains(text, "synced") {
		t.Errorf("passkey list: %q", text)
	}
	if v, _ := chromedp.Run(e.ctx, chromedp.Evaluate[string](`document.querySelector('#passkey-list input[name=name]').value`)); v != name {
		t.Errorf("passkey name in the list: %q, want %q", v, name)
	}
}

func (e *browserEnv) signOut(t *testing.T) {
	t.Helper()
	e.run(t, "sign out",
		chromedp.Navigate(e.base+"/account"),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.WaitNotPresent(chromedp.CSS(`form[action="/logout"] button`)))
}

// session reads the browser's session through the API.
func (e *browserEnv) session(t *testing.T) sessionInfo {
	t.Helper()
	v, err := chromedp.Run(e.ctx, chromedp.Evaluate[sessionInfo](`fetch("/api/v1/session").then(r => r.json())`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("session: %v", err)
	}
	return v
}

// TestBrowserPasskeySignInAndDelete: a user adds a passkey on the account page (after a
// password sign-in, which also offers one), signs out, signs in with the passkey alone,
// and deletes the account after a step-up by passkey.
func TestBrowserPasskeySignInAndDelete(t *testing.T) {
	e := newBrowserEnv(t, nil)
	const email = "ada@example.com"
	e.User(t, email)
	e.passwordLogin(t, email, chromedp.WaitVisible(chromedp.ID("passkey-offer")))
	e.addPasskey(t, "Test laptop")
	e.shoot("account-passkeys")
	e.Srv.WaitMail(t, email, "A passkey was added")
	if n := e.d.AuditCount(t, e.Tenant.ID, "passkey.added", ""); n != 1 {
		t.Errorf("passkey.added events: %d", n)
	}
	e.signOut(t)

	// The button: presence is withheld while the page loads, so the autofill request
	// stays pending and the button's own request (which aborts it) signs in.
	e.presence(t, false)
	e.run(t, "open the login page", chromedp.Navigate(e.base+"/login"), chromedp.WaitVisible(chromedp.ID("passkey-login")))
	e.shoot("login-passkey")
	e.presence(t, true)
	e.run(t, "passkey sign-in",
		chromedp.Click(chromedp.ID("passkey-login")),
		chromedp.WaitVisible(chromedp.ID("current-email")))
	if s := e.session(t); !slices.Equal(s.Session.Methods, []string{"passkey"}) || s.Session.Assurance != "phr" {
		t.Fatalf("passkey session: %+v", s.Session)
	}
	if n := e.d.AuditCount(t, e.Tenant.ID, "session.login", ""); n != 2 {
		t.Errorf("session.login events: %d, want 2 (password, passkey)", n)
	}
	// The browser's autofill (conditional mediation on the username field) signs in too:
	// the virtual authenticator answers the conditional request at once.
	e.signOut(t)
	e.run(t, "passkey autofill sign-in",
		chromedp.Navigate(e.base+"/login"),
		chromedp.WaitVisible(chromedp.ID("current-email")))
	if s := e.session(t); s.Session.Assurance != "phr" {
		t.Fatalf("autofill session: %+v", s.Session)
	}

	e.clk.Advance(6 * time.Minute) // account.delete wants an authentication of the last 5 minutes
	e.run(t, "delete, sent to confirm",
		chromedp.Navigate(e.base+"/account/delete"),
		chromedp.WaitVisible(chromedp.ID("confirm_email")),
		chromedp.SendKeys(chromedp.ID("confirm_email"), email),
		chromedp.Click(chromedp.ID("delete-account")),
		chromedp.WaitVisible(chromedp.ID("passkey-reauth")))
	e.shoot("reauth-passkey")
	e.run(t, "step-up by passkey",
		chromedp.Click(chromedp.ID("passkey-reauth")),
		chromedp.WaitVisible(chromedp.ID("delete-kept")),
		chromedp.Click(chromedp.ID("delete-account")),
		chromedp.WaitNotPresent(chromedp.ID("delete-account")))
	text, _ := chromedp.Run(e.ctx, chromedp.Text(chromedp.CSS("main")))
	if !strings.Contains(text, "Account deletion scheduled") {
		t.Fatalf("after deletion: %q", text)
	}
	if n := e.d.AuditCount(t, e.Tenant.ID, "user.deletion_requested", ""); n != 1 {
		t.Errorf("user.deletion_requested events: %d", n)
	}
}

// TestBrowserPasskeyRemove: removing a passkey on the account page asks for a fresh
// step-up (passkey.remove), done with the passkey itself; then it is gone and mailed.
func TestBrowserPasskeyRemove(t *testing.T) {
	e := newBrowserEnv(t, nil)
	const email = "rem@example.com"
	e.User(t, email)
	e.passwordLogin(t, email, chromedp.WaitVisible(chromedp.ID("current-email")))
	e.addPasskey(t, "Old phone")
	e.clk.Advance(6 * time.Minute)
	e.run(t, "remove, sent to confirm",
		chromedp.Click(chromedp.CSS(`form[action$="/remove"] button`)),
		chromedp.WaitVisible(chromedp.ID("passkey-reauth")))
	e.run(t, "confirm with the passkey, remove",
		chromedp.Click(chromedp.ID("passkey-reauth")),
		chromedp.WaitVisible(chromedp.ID("passkey-list")),
		chromedp.Click(chromedp.CSS(`form[action$="/remove"] button`)),
		chromedp.WaitNotPresent(chromedp.ID("passkey-list")))
	e.Srv.WaitMail(t, email, "A passkey was removed")
	e.run(t, "account page without passkeys", chromedp.Navigate(e.base+"/account"), chromedp.WaitVisible(chromedp.ID("no-passkeys")))
}

// TestBrowserPasskeySecondFactor: for an account with TOTP on, the code step offers the
// passkey instead of a code; the session has both methods.
func TestBrowserPasskeySecondFactor(t *testing.T) {
	e := newBrowserEnv(t, nil)
	const email = "two@example.com"
	e.User(t, email)
	e.passwordLogin(t, email, chromedp.WaitVisible(chromedp.ID("current-email")))
	e.addPasskey(t, "Laptop")
	tok := e.Login(t, email, testutil.Password)
	enableTOTP(t, &env{Site: e.Site, d: e.d}, tok)
	e.signOut(t)
	e.presence(t, false) // no autofill sign-in: this test signs in with the password first
	e.passwordLogin(t, email, chromedp.WaitVisible(chromedp.ID("passkey-mfa")))
	e.presence(t, true)
	e.run(t, "second factor by passkey",
		chromedp.Click(chromedp.ID("passkey-mfa")),
		chromedp.WaitVisible(chromedp.ID("current-email")))
	if s := e.session(t); !slices.Equal(s.Session.Methods, []string{"password", "passkey"}) || s.Session.AAL != "aal2" {
		t.Fatalf("second-factor session: %+v", s.Session)
	}
}
