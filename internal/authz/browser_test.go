package authz_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestBrowserPortal: the owner opens the setup link, sets a password, signs in, invites a
// member and changes the verification policy to required; the member accepts the
// invitation but cannot open /admin. Screenshots of the portal pages go to
// $GATEHOUSE_SCREENSHOTS (docs/screenshots when refreshing the README's pictures).
func TestBrowserPortal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	t.Parallel()
	ctx := context.Background()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	p := tenant.DefaultPolicy()
	p.Verification.Mode = tenant.VerificationOptional
	c, err := srv.App.Tenants.Create(ctx, tenant.CreateInput{Slug: testutil.UniqueSlug("portal"), Name: "Acme Portal", AdminEmail: "owner@acme.example", Policy: &p})
	if err != nil {
		t.Fatal(err)
	}
	link, err := srv.App.Accounts.IssueSetupLink(ctx, c.Tenant, c.AdminUserID)
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://%s.localhost:%d", c.Tenant.Slug, srv.Port)
	if !strings.HasPrefix(link, base+"/password/reset?token=") {
		t.Fatalf("setup link %q", link)
	}
	shots := os.Getenv("GATEHOUSE_SCREENSHOTS")
	shoot := func(bctx context.Context, name string) {
		if shots == "" {
			return
		}
		if img, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)); err == nil {
			_ = os.WriteFile(filepath.Join(shots, name+".png"), img, 0o644)
		}
	}

	owner := testutil.Browser(t)
	err = chromedp.Do(owner,
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.CSS(`p[role=status]`)),
		chromedp.Navigate(base+"/login?return_to=%2Fadmin"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "owner@acme.example"),
		chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("count-users")),
	)
	if err != nil {
		t.Fatalf("owner setup and sign-in: %v", err)
	}
	shoot(owner, "admin-overview")

	err = chromedp.Do(owner,
		chromedp.Navigate(base+"/admin/invitations"),
		chromedp.WaitVisible(chromedp.ID("invite-email")),
		chromedp.SendKeys(chromedp.ID("invite-email"), "member@acme.example"),
		chromedp.Submit(chromedp.ID("invite-email")),
		chromedp.WaitVisible(chromedp.CSS(`p[role=status]`)),
	)
	if err != nil {
		t.Fatalf("invite: %v", err)
	}
	shoot(owner, "admin-invitations")

	err = chromedp.Do(owner,
		chromedp.Navigate(base+"/admin/policy"),
		chromedp.WaitVisible(chromedp.ID("save-policy")),
		chromedp.SetValue(chromedp.ID("verification-mode"), "required"),
		chromedp.Click(chromedp.ID("save-policy")),
		chromedp.WaitVisible(chromedp.CSS(`p[role=status]`)),
	)
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	shoot(owner, "admin-policy")
	got, err := srv.App.Tenants.Get(ctx, c.Tenant.Slug)
	if err != nil || got.Policy.Verification.Mode != tenant.VerificationRequired {
		t.Fatalf("verification mode after saving: %q (%v)", got.Policy.Verification.Mode, err)
	}

	inv := srv.WaitMail(t, "member@acme.example", "invited to Acme Portal")
	var invLink string
	for _, l := range inv.Links {
		if strings.Contains(l, "/invite?token=") {
			invLink = l
		}
	}
	member := testutil.Browser(t)
	err = chromedp.Do(member,
		chromedp.Navigate(invLink),
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("current-email")),
		chromedp.Navigate(base+"/admin"),
		chromedp.WaitVisible(chromedp.CSS("main h1")),
	)
	if err != nil {
		t.Fatalf("member: %v", err)
	}
	text, _ := chromedp.Run(member, chromedp.Text(chromedp.CSS("main")))
	if !strings.Contains(text, "Not allowed") {
		t.Fatalf("a member opened /admin: %q", text)
	}

	for _, page := range []struct{ path, name, wait string }{
		{"/admin/users", "admin-users", "table"},
		{"/admin/audit", "admin-audit", "table"},
	} {
		if err := chromedp.Do(owner, chromedp.Navigate(base+page.path), chromedp.WaitVisible(chromedp.CSS(page.wait))); err != nil {
			t.Fatalf("%s: %v", page.path, err)
		}
		shoot(owner, page.name)
	}
	users, _ := chromedp.Run(owner, chromedp.Text(chromedp.CSS("table")))
	if !strings.Contains(users, "member@acme.example") || !strings.Contains(users, "owner@acme.example") {
		t.Fatalf("users page: %q", users)
	}
	// The other portal pages, for the README's screenshots (the SSO pages come from
	// internal/sso's TestBrowserSSO).
	if err := chromedp.Do(owner, chromedp.Navigate(base+"/admin/users"), chromedp.WaitVisible(chromedp.CSS("table"))); err != nil {
		t.Fatal(err)
	}
	memberPage, err := chromedp.Run(owner, chromedp.Evaluate[string](`[...document.querySelectorAll("table a")].find(a => a.textContent === "member@acme.example").href`))
	if err != nil {
		t.Fatalf("member's link: %v", err)
	}
	for _, page := range []struct{ url, name, wait string }{
		{memberPage, "admin-user", "#delete-user"},
		{base + "/admin/roles", "admin-roles", "main h1"},
		{base + "/admin/branding", "admin-branding", "#save-branding"},
	} {
		if err := chromedp.Do(owner, chromedp.Navigate(page.url), chromedp.WaitVisible(chromedp.CSS(page.wait))); err != nil {
			t.Fatalf("%s: %v", page.url, err)
		}
		shoot(owner, page.name)
	}
}
