package account_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestBrowserSignupVerifyLogin drives real Chromium through the pages: sign up, open the
// verification link from the captured mail, confirm, sign in, see the account page, sign
// out.
func TestBrowserSignupVerifyLogin(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	t.Parallel()
	e := newEnv(t, nil)
	ctx := testutil.Browser(t)
	base := fmt.Sprintf("http://%s:%d", e.Host, e.Srv.Port)
	email := "browser@example.com"

	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/signup"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("name"), "Bea Browser"),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), goodPassword),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.CSS(`p[role=status]`)),
	)
	if err != nil {
		t.Fatalf("signup page: %v", err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	if err != nil || !strings.Contains(text, "Check your email") {
		t.Fatalf("after signup: %q %v", text, err)
	}

	m := e.Srv.WaitMail(t, email, "Confirm your email address")
	var link string
	for _, l := range m.Links {
		if strings.Contains(l, "/verify?token=") {
			link = l
		}
	}
	if !strings.HasPrefix(link, base+"/verify?token=") {
		t.Fatalf("verification link %q does not point at %s", link, base)
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS(`button[type=submit]`)),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`p[role=status]`)),
	)
	if err != nil {
		t.Fatalf("verify page: %v", err)
	}
	if text, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main"))); err != nil || !strings.Contains(text, "Email address confirmed") {
		t.Fatalf("after confirming: %q %v", text, err)
	}

	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), goodPassword),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("current-email")),
	)
	if err != nil {
		t.Fatalf("login page: %v", err)
	}
	if text, err = chromedp.Run(ctx, chromedp.Text(chromedp.ID("current-email"))); err != nil || !strings.Contains(text, email) || !strings.Contains(text, "confirmed") {
		t.Fatalf("account page shows %q (%v)", text, err)
	}
	if dir := os.Getenv("GATEHOUSE_SCREENSHOTS"); dir != "" {
		if shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
			_ = os.WriteFile(dir+"/account.png", shot, 0o644)
		}
	}

	// Signing out ends the session (the signed-out page); the account page then sends the
	// browser to sign in.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.ID("signed-out")),
		chromedp.Navigate(base+"/account"),
		chromedp.WaitVisible(chromedp.ID("password")),
	)
	if err != nil {
		t.Fatalf("logout: %v", err)
	}
}

// TestBrowserExportAndDelete: from the account page, download the data (the link the page
// offers, fetched with the browser's own session) and delete the account.
func TestBrowserExportAndDelete(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	t.Parallel()
	e := newEnv(t, nil)
	e.SignupVerified(t, "leaver@example.com")
	ctx := testutil.Browser(t)
	base := fmt.Sprintf("http://%s:%d", e.Host, e.Srv.Port)
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "leaver@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), goodPassword),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("export")),
	)
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	body, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch(document.getElementById("export").href).then(r => r.text())`,
		chromedp.EvalAwaitPromise))
	if err != nil || !strings.Contains(body, `"leaver@example.com"`) || !strings.Contains(body, `"tables"`) {
		t.Fatalf("export from the page: %v %.200s", err, body)
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/account/delete"),
		chromedp.WaitVisible(chromedp.ID("confirm_email")),
		chromedp.SendKeys(chromedp.ID("confirm_email"), "leaver@example.com"),
		chromedp.Submit(chromedp.ID("confirm_email")),
		chromedp.WaitVisible(chromedp.CSS(`p[role=status]`)),
	)
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	text, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	if !strings.Contains(text, "will be erased on") {
		t.Fatalf("after deleting: %q", text)
	}
	e.expect(t, e.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": "leaver@example.com", "password": goodPassword}), 403, "account_pending_deletion")
	e.Srv.WaitMail(t, "leaver@example.com", "will be deleted")
}
