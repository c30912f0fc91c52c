package sso_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/sso/oidctest"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestBrowserOIDCSetupAndSignIn: in Chromium, an admin chooses an OpenID Provider on the
// portal's SSO page, reads the exact redirect URI the guide gives (registered at the IdP),
// fills in issuer, client ID and secret; the connection starts off; Test connection goes
// through the IdP's login and shows the checks; sign-in is turned on, and an employee of
// the routed domain signs in with "Sign in with single sign-on" through the IdP.
func TestBrowserOIDCSetupAndSignIn(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	t.Parallel()
	idp, err := oidctest.NewPlain(nil, people...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	srv, d := newServer(t, testutil.WithConfig(func(c *config.Config) { c.OutboundAllowPrivate = true }))
	s := newSite(t, srv, d)
	base := fmt.Sprintf("http://%s:%d", s.host, srv.Port)
	ctx := testutil.Browser(t)
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector(`+"`"+sel+"`"+`).innerText`))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return v
	}
	fail := func(step string, err error) {
		t.Helper()
		t.Fatalf("%s: %v\n%s", step, err, pageHTML(ctx))
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/login?return_to=%2Fadmin%2Fsso"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), s.adminEmail),
		chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("sso-add")),
		chromedp.Click(chromedp.CSS(`a[href="/admin/sso?provider=oidc-generic#add"]`)),
		chromedp.WaitVisible(chromedp.ID("sso-add-oidc")),
	)
	if err != nil {
		fail("open the OIDC guide", err)
	}
	redirect := text("#oidc-redirect-uri")
	if redirect != base+"/sso/oidc/oidc/callback" {
		t.Fatalf("redirect URI on the guide %q", redirect)
	}
	idp.Register(redirect) // the admin pastes it at the IdP
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("o-name"), "Corp IdP"),
		chromedp.SetValue(chromedp.ID("o-issuer"), idp.Issuer),
		chromedp.SetValue(chromedp.ID("o-client"), idp.ClientID),
		chromedp.SetValue(chromedp.ID("o-secret"), idp.Secret),
		chromedp.Click(chromedp.ID("sso-create-oidc")),
		chromedp.WaitVisible(chromedp.ID("sso-test")),
	)
	if err != nil {
		fail("create the connection", err)
	}
	if got := text("#oidc-redirect-uri"); got != redirect {
		t.Fatalf("connection page redirect URI %q, guide said %q", got, redirect)
	}
	if st := text("#sso-status"); !strings.Contains(st, "Off") {
		t.Fatalf("a new OIDC connection from the portal should start off, status %q", st)
	}
	// Test connection through the IdP's login.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("sso-test")),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "ada"),
		chromedp.SendKeys(chromedp.ID("password"), "idp-pass"),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.CSS("main")),
	)
	if err != nil {
		fail("test connection", err)
	}
	report := text("main")
	if !strings.Contains(report, "sub-ada") || !strings.Contains(report, "id_token") {
		t.Fatalf("test report:\n%s", report)
	}
	// Route the domain and turn sign-in on.
	c := s.getConn(t, connID(t, s, "oidc"))
	if r := s.call(t, "PATCH", "/api/v1/admin/sso/connections/"+c.ID, s.admin, map[string]any{"domains": []string{"corp.example"}, "enabled": true}); r.StatusCode != 200 {
		t.Fatalf("route the domain: %d %s", r.StatusCode, r.Body)
	}
	// An employee signs in with single sign-on (a fresh browser context).
	emp := testutil.Browser(t)
	err = chromedp.Do(emp,
		chromedp.Navigate(base+"/login?return_to=/account"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "ada@corp.example"),
		chromedp.Click(chromedp.ID("sso-login")),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "ada"),
		chromedp.SendKeys(chromedp.ID("password"), "idp-pass"),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("current-email")),
	)
	if err != nil {
		t.Fatalf("employee sign-in: %v\n%s", err, pageHTML(emp))
	}
	if got, _ := chromedp.Run(emp, chromedp.Text(chromedp.ID("current-email"))); !strings.Contains(got, "ada@corp.example") {
		t.Fatalf("signed in as %q", got)
	}
}

// connID is the id of the tenant's connection with that slug.
func connID(t *testing.T, s *site, slug string) string {
	t.Helper()
	var id string
	if err := s.d.Admin.QueryRow(t.Context(), `SELECT id::text FROM sso_connections WHERE tenant_id = $1 AND slug = $2`, s.t.ID, slug).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}
