package scim_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestBrowserDirectorySync: in Chromium, an owner opens Directory sync (the SCIM base URL
// and both setup guides name the tenant's URL), creates a directory and reads its token once
// (the token works against /scim/v2; the page's URL holds no token), sees the directory's
// request log after a SCIM request, revokes the token (it stops working) and deletes the
// directory.
func TestBrowserDirectorySync(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	srv := testutil.NewServer(t, testutil.PackageDB(t))
	site := testutil.NewSite(t, srv, "portalscim")
	site.User(t, "owner@acme.example", "owner")
	ctx := testutil.Browser(t)
	origin := fmt.Sprintf("http://%s:%d", site.Host, srv.Port)
	base := origin + "/scim/v2"
	fail := func(step string, err error) {
		t.Helper()
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
		t.Fatalf("%s: %v\n%s", step, err, html)
	}
	js := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			fail("evaluate "+expr, err)
		}
		return v
	}
	text := func(sel string) string { return js(`document.querySelector("` + sel + `").innerText.trim()`) }

	err := chromedp.Do(ctx,
		chromedp.Navigate(origin+"/login?return_to=%2Fadmin%2Fdirectories"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "owner@acme.example"),
		chromedp.SendKeys(chromedp.ID("password"), testutil.Password),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("directory-new")),
	)
	if err != nil {
		fail("sign in to /admin/directories", err)
	}
	if cur := js(`document.querySelector("nav.adminnav a[aria-current=page]").textContent`); cur != "Directory sync" {
		t.Errorf("current section %q", cur)
	}
	if got := text("#scim-base-url"); got != base {
		t.Errorf("base URL %q, want %q", got, base)
	}
	for _, g := range []string{"#guide-okta", "#guide-entra"} {
		if !strings.Contains(js(`document.querySelector("`+g+`").parentElement.innerText`), base) {
			t.Errorf("%s does not name %s", g, base)
		}
	}

	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("directory-name"), "Entra ID"),
		chromedp.SetValue(chromedp.ID("directory-provider"), "entra"),
		chromedp.Click(chromedp.ID("directory-create")),
		chromedp.WaitVisible(chromedp.ID("directory-token")),
	)
	if err != nil {
		fail("create directory", err)
	}
	token := text("#directory-token")
	if !strings.HasPrefix(token, "gh_scim_") || text("#token-base-url") != base {
		t.Fatalf("token %q base %q", token, text("#token-base-url"))
	}
	if !strings.Contains(text("#token-warning"), "will not be shown again") || strings.Contains(js(`location.href`), token) {
		t.Error("token page warning or URL wrong")
	}
	d := &dir{Site: site, t: t, token: token}
	r, _ := d.scim(http.MethodGet, "/Users?filter=userName+eq+%22nobody%22", nil)
	d.want(r, 200, "")

	// The directory's page: the request log shows the request (never the token).
	err = chromedp.Do(ctx, chromedp.Click(chromedp.ID("token-done")), chromedp.WaitVisible(chromedp.ID("directory-log")))
	if err != nil {
		fail("open directory", err)
	}
	logText := text("#directory-log")
	if !strings.Contains(logText, "GET /scim/v2/Users") || !strings.Contains(logText, "200") || strings.Contains(js(`document.body.innerHTML`), token) {
		t.Errorf("request log: %q", logText)
	}
	err = chromedp.Do(ctx, chromedp.Click(`#directory-tokens button`), chromedp.WaitVisible(chromedp.ID("token-revoked")))
	if err != nil {
		fail("revoke token", err)
	}
	r, _ = d.scim(http.MethodGet, "/Users", nil)
	d.want(r, http.StatusUnauthorized, "")
	err = chromedp.Do(ctx, chromedp.Click(chromedp.ID("directory-delete")), chromedp.WaitVisible(chromedp.ID("directories-deleted")))
	if err != nil {
		fail("delete directory", err)
	}
	if !strings.Contains(text("#directories-list"), "No directories yet.") {
		t.Errorf("list after delete: %q", text("#directories-list"))
	}
}
