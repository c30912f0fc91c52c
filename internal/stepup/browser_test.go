package stepup_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestBrowserReauthForEmailChange: a signed-in user whose sign-in is older than the rule
// allows tries to change the email, is sent to re-authenticate (the page says the change
// is kept), enters the password, and lands back on the account page with the address
// still filled in and a message to finish; pressing the button finishes it. The same holds
// for deleting the account.
func TestBrowserReauthForEmailChange(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	t.Parallel()
	e := newEnv(t, nil)
	ctx := testutil.Browser(t)
	base := fmt.Sprintf("http://%s:%d", e.Host, e.Srv.Port)
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), e.email),
		chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("new-email")),
	)
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	e.clk.Advance(11 * time.Minute) // the sign-in is now older than email.change allows

	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("new-email"), "changed@example.com"),
		chromedp.Submit(chromedp.ID("new-email")),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/reauth"]`)),
	)
	if err != nil {
		t.Fatalf("email change before re-auth: %v", err)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if !strings.Contains(loc, "/reauth?action=email.change") || !strings.Contains(loc, "return_to=%2Faccount") {
		t.Fatalf("sent to %q, want the re-auth page for email.change returning to /account", loc)
	}
	if kept, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("reauth-kept"))); err != nil || !strings.Contains(kept, "We kept your change") {
		t.Fatalf("re-auth page: %q %v", kept, err)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("email-kept")),
	)
	if err != nil {
		t.Fatalf("re-auth: %v", err)
	}
	if loc, _ = chromedp.Run(ctx, chromedp.Location()); !strings.HasSuffix(loc, "/account") {
		t.Fatalf("after re-auth the browser is at %q, want /account", loc)
	}
	if v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("new-email").value`)); err != nil || v != "changed@example.com" {
		t.Fatalf("after re-auth the form holds %q (%v), want the address typed before", v, err)
	}
	err = chromedp.Do(ctx,
		chromedp.Submit(chromedp.ID("new-email")),
		chromedp.WaitNotPresent(chromedp.ID("email-kept")),
		chromedp.WaitVisible(chromedp.CSS(`p[role=status]`)),
	)
	if err != nil {
		t.Fatalf("email change after re-auth: %v", err)
	}
	text, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	if !strings.Contains(text, "Check your new inbox") {
		t.Fatalf("after the change: %q", text)
	}
	e.Srv.WaitMail(t, "changed@example.com", "Confirm your new email address")
	// Made once: the account page no longer offers the kept change.
	err = chromedp.Do(ctx, chromedp.Navigate(base+"/account"), chromedp.WaitVisible(chromedp.ID("new-email")))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("new-email").value + (document.getElementById("email-kept") ? "kept" : "")`)); v != "" {
		t.Fatalf("after the change the form still holds %q", v)
	}

	// Deleting the account: the typed confirmation survives the re-authentication too.
	e.clk.Advance(11 * time.Minute)
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/account/delete"),
		chromedp.WaitVisible(chromedp.ID("confirm_email")),
		chromedp.SendKeys(chromedp.ID("confirm_email"), e.email),
		chromedp.Submit(chromedp.ID("confirm_email")),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/reauth"]`)),
		chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("delete-kept")),
	)
	if err != nil {
		t.Fatalf("delete with re-auth: %v", err)
	}
	if v, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("confirm_email").value`)); v != e.email {
		t.Fatalf("after re-auth the deletion form holds %q", v)
	}
	err = chromedp.Do(ctx, chromedp.Click(chromedp.ID("delete-account")), chromedp.WaitNotPresent(chromedp.ID("delete-kept")),
		chromedp.WaitVisible(chromedp.CSS(`p[role=status]`)))
	if text, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main"))); err != nil || !strings.Contains(text, "will be erased on") {
		t.Fatalf("delete after re-auth: %v %q", err, text)
	}
}
