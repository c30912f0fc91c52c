package sso_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-id/gatehouse/internal/sso/devidp"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// startDevIdP serves the dev IdP (crewjam's samlidp, as `gatehouse dev` runs it) on a
// loopback port for the test.
func startDevIdP(t *testing.T) *devidp.IdP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	idp, err := devidp.New(fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port), filepath.Join(t.TempDir(), "idp.pem"))
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: idp.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	return idp
}

// TestBrowserSSOSetupFromDraft: in Chromium, an admin starts an Okta connection by name
// alone and reads its final ACS URL on the next page (a draft: no Test connection yet,
// every input typed); the IdP is set up from the draft's SP metadata; the admin pastes the
// IdP's metadata in step 2, and Test connection reaches the IdP and passes. Then sign-in is
// turned on, and the connection is deleted through the confirmation step (a wrong
// identifier is refused beside the field) with a success message.
func TestBrowserSSOSetupFromDraft(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	t.Parallel()
	srv, d := newServer(t)
	s := newSite(t, srv, d)
	idp := startDevIdP(t)
	md, err := idp.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://%s:%d", s.host, srv.Port)
	ctx := testutil.Browser(t)
	snap := func(name string) {
		if dir := os.Getenv("GATEHOUSE_SCREENSHOTS"); dir != "" {
			if img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
				_ = os.WriteFile(filepath.Join(dir, name+".png"), img, 0o644)
			}
		}
	}
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
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
		t.Fatalf("%s: %v\n%s", step, err, html)
	}
	untyped := func() int {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("main input:not([type])").length`))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	// Step 1: a name is all it takes; the next page shows the final SP values.
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/login?return_to=%2Fadmin%2Fsso%3Fprovider%3Dokta"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), s.adminEmail),
		chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("sso-add")),
	)
	if err != nil {
		fail("sign in to the portal", err)
	}
	if n := untyped(); n != 0 {
		t.Fatalf("%d inputs without a type on /admin/sso", n)
	}
	if !strings.Contains(text("#add + p + ul + section"), "Single sign-on URL") {
		t.Fatalf("Okta guide: %s", text("main"))
	}
	snap("admin-sso")
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("sso-name"), "Dev IdP"),
		chromedp.Click(chromedp.ID("sso-create")),
		chromedp.WaitVisible(chromedp.ID("sp-acs-url")),
	)
	if err != nil {
		fail("create the draft", err)
	}
	acs := text("#sp-acs-url")
	if acs != base+"/sso/saml/dev-idp/acs" {
		t.Fatalf("ACS URL on the page %q, want %q", acs, base+"/sso/saml/dev-idp/acs")
	}
	if st := text("#sso-status"); !strings.Contains(st, "Draft") {
		t.Fatalf("status %q", st)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#sso-test").length`)); n != 0 {
		t.Fatal("a draft offers Test connection")
	}
	if n := untyped(); n != 0 {
		t.Fatalf("%d inputs without a type on the connection page", n)
	}
	// The copy buttons are shown by copy.js (hidden without JavaScript).
	if hidden, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("[data-copy]").hidden`)); hidden {
		t.Fatal("copy buttons stay hidden: copy.js did not run")
	}
	snap("admin-sso-draft")
	// A copy button answers (the clipboard, or the value selected where it is refused).
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#sp-acs-url + button`)),
		chromedp.Poll[chromedp.Void](`["Copied", "Press Ctrl+C"].includes(document.querySelector("#sp-acs-url + button").textContent)`, chromedp.WithPollingTimeout(5*time.Second)),
	)
	if err != nil {
		fail("copy button", err)
	}

	// At the IdP: the draft's SP metadata URL already works.
	spMeta := s.call(t, "GET", "/sso/saml/dev-idp/metadata", "", nil)
	if spMeta.StatusCode != 200 || !strings.Contains(string(spMeta.Body), acs) {
		t.Fatalf("SP metadata of the draft: %d %s", spMeta.StatusCode, spMeta.Body)
	}
	if err := idp.Register("gatehouse", spMeta.Body); err != nil {
		t.Fatal(err)
	}

	// Step 2: the IdP's metadata, pasted. Step 3: Test connection reaches the IdP.
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("m-xml"), string(md)),
		chromedp.Click(chromedp.ID("sso-save-metadata")),
		chromedp.WaitVisible(chromedp.ID("sso-test")),
	)
	if err != nil {
		fail("paste the IdP metadata", err)
	}
	if st := text("#sso-status"); st != "Off" || !strings.Contains(text("#idp-entity-id"), "localhost") {
		t.Fatalf("after step 2: status %q, IdP %q", st, text("#idp-entity-id"))
	}
	snap("admin-sso-connection")
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("sso-test")),
		chromedp.WaitVisible(chromedp.CSS(`input[name="user"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="user"]`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), devidp.Password),
		chromedp.Click(chromedp.CSS(`input[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("sso-reference")),
	)
	if err != nil {
		fail("test connection", err)
	}
	if body := text("main"); !strings.Contains(body, "passed every check") || !strings.Contains(body, "alice@acme.test") {
		t.Fatalf("test report: %s", body)
	}
	snap("admin-sso-test")

	// Settings: a wrong domain is named beside its field, with what was typed kept; an IDN
	// domain is stored as ASCII and shown in Unicode.
	c := s.createdConn(t, "dev-idp")
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/admin/sso/"+c.ID),
		chromedp.SetValue(chromedp.ID("s-domains"), "bücher.example, not..a-domain"),
		chromedp.Click(chromedp.ID("sso-save")),
		chromedp.WaitVisible(chromedp.ID("s-domains-error")),
	)
	if err != nil {
		fail("domain field error", err)
	}
	if msg := text("#s-domains-error"); !strings.Contains(msg, `"not..a-domain" is not a domain name.`) || strings.Contains(msg, "domains)") {
		t.Fatalf("field error %q", msg)
	}
	if v, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("s-domains").value`)); v != "bücher.example, not..a-domain" {
		t.Fatalf("typed domains not kept: %q", v)
	}
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("s-domains"), "bücher.example"),
		chromedp.Click(chromedp.ID("sso-save")),
		chromedp.WaitVisible(chromedp.CSS(`p[role=status]`)),
	)
	if err != nil {
		fail("save an IDN domain", err)
	}
	if got := s.getConn(t, c.ID); len(got.Domains) != 1 || got.Domains[0].Domain != "xn--bcher-kva.example" {
		t.Fatalf("stored domains: %+v", got.Domains)
	}
	if cell := text("#sso-domains tbody td"); !strings.HasPrefix(cell, "bücher.example") {
		t.Fatalf("domain shown as %q", cell)
	}
	if v, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("s-domains").value`)); v != "bücher.example" {
		t.Fatalf("domains field: %q", v)
	}

	// Turn sign-in on.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("sso-enable")),
		chromedp.WaitNotPresent(chromedp.ID("sso-enable")),
		chromedp.WaitVisible(chromedp.ID("sso-status")),
	)
	if err != nil {
		fail("enable", err)
	}
	if st := text("#sso-status"); st != "Active" {
		t.Fatalf("after enabling: %q", st)
	}

	// Delete, through the confirmation step.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("sso-delete")),
		chromedp.WaitVisible(chromedp.ID("sso-delete-confirm")),
		chromedp.SendKeys(chromedp.ID("sso-delete-confirm"), "dev"),
		chromedp.Click(chromedp.ID("sso-delete-confirmed")),
		chromedp.WaitVisible(chromedp.ID("sso-delete-error")),
	)
	if err != nil {
		fail("wrong confirmation", err)
	}
	if got := s.getConn(t, c.ID); got.ID != c.ID {
		t.Fatal("the connection is gone after a wrong confirmation")
	}
	snap("admin-sso-delete")
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(document.getElementById("sso-delete-confirm").value = "") === ""`)); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("sso-delete-confirm"), "dev-idp"),
		chromedp.Click(chromedp.ID("sso-delete-confirmed")),
		chromedp.WaitVisible(chromedp.ID("sso-deleted")),
	)
	if err != nil {
		fail("delete", err)
	}
	if body := text("#sso-connections"); strings.Contains(body, "Dev IdP") {
		t.Fatalf("deleted connection still listed: %s", body)
	}
	if r := s.call(t, "GET", "/api/v1/admin/sso/connections/"+c.ID, s.admin, nil); r.StatusCode != http.StatusNotFound {
		t.Fatalf("after delete: %d", r.StatusCode)
	}
}

// createdConn is the tenant's connection with the given slug.
func (s *site) createdConn(t *testing.T, slug string) conn {
	t.Helper()
	var b struct{ Connections []conn }
	s.call(t, "GET", "/api/v1/admin/sso/connections", s.admin, nil).JSON(t, &b)
	for _, c := range b.Connections {
		if c.Slug == slug {
			return c
		}
	}
	t.Fatalf("no connection %s", slug)
	return conn{}
}
