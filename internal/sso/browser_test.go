package sso_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/domainverify"
	"github.com/gatehouse-id/gatehouse/internal/sso/devidp"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestBrowserSSOThroughDevIdP: in a real Chromium, an employee types their address on the
// login page, is routed to the dev IdP (crewjam's samlidp, the one `gatehouse dev` runs),
// signs in there, comes back through the ACS with a session, and sees their account. Then
// an admin opens the portal's SSO page and runs "Test connection".
func TestBrowserSSOThroughDevIdP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	t.Parallel()
	dns, err := domainverify.StartServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dns.Close() })
	srv, d := newServer(t, testutil.WithConfig(func(c *config.Config) { c.DNSServer = dns.Addr }))
	s := newSite(t, srv, d)

	idp := startDevIdP(t)
	md, err := idp.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	c := s.createConn(t, map[string]any{"name": "Dev IdP", "slug": "dev", "provider": "dev", "idp_metadata_xml": string(md),
		"domains": []string{"acme.test"}, "attribute_mapping": map[string]string{"groups": devidp.GroupsAttribute},
		"role_mapping": map[string]string{"Admins": "admin"}})
	spMeta := s.call(t, "GET", "/sso/saml/dev/metadata", "", nil)
	if err := idp.Register("gatehouse", spMeta.Body); err != nil {
		t.Fatal(err)
	}
	dns.SetTXT(c.Domains[0].RecordName, c.Domains[0].RecordValue)
	if r := s.call(t, "POST", "/api/v1/admin/sso/domains/acme.test/verify", s.admin, nil); r.StatusCode != 200 {
		t.Fatalf("verify: %d %s", r.StatusCode, r.Body)
	}

	ctx := testutil.Browser(t)
	base := fmt.Sprintf("http://%s:%d", s.host, srv.Port)
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/login?return_to=/account"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "alice@acme.test"),
		chromedp.Click(chromedp.ID("sso-login")),
		chromedp.WaitVisible(chromedp.CSS(`input[name="user"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="user"]`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), devidp.Password),
		chromedp.Click(chromedp.CSS(`input[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("current-email")),
	)
	if err != nil {
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
		t.Fatalf("SSO in the browser: %v\n%s", err, html)
	}
	body, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, "alice@acme.test") {
		t.Fatalf("account page does not show alice: %s", body)
	}
	// Her account page shows what applies to an SSO-only admin: the address is the IdP's
	// (no change form), no current password to ask for (she may set one: the connection
	// does not enforce SSO), and the portal link.
	for _, want := range []string{"manages your address", "Dev IdP", "Set a password", "Open the admin portal"} {
		if !strings.Contains(body, want) {
			t.Fatalf("SSO account page lacks %q: %s", want, body)
		}
	}
	offered, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!(document.getElementById("new-email") || document.getElementById("current-password"))`))
	if err != nil || offered {
		t.Fatalf("SSO account page offers an email change or asks for a current password (%v)", err)
	}
	// Alice came in with the Admins group: she may open the portal, and test the connection.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/admin/sso"), chromedp.WaitVisible(chromedp.ID("sso-connections"))); err != nil {
		t.Fatalf("portal list: %v", err)
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/admin/sso/"+c.ID),
		chromedp.WaitVisible(chromedp.ID("sp-entity-id")),
	)
	if err != nil {
		t.Fatalf("connection page: %v", err)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("sso-test")),
		chromedp.WaitVisible(chromedp.ID("sso-reference")),
	)
	if err != nil {
		t.Fatalf("portal test connection: %v", err)
	}
	if body, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, "passed every check") || !strings.Contains(body, "alice@acme.test") {
		t.Fatalf("test report: %s", body)
	}
}
