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
// allows tries to change the email, is sent to re-authenticate, enters the password, and
// lands back on the account page where the change then works.
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
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("new-email")),
	)
	if err != nil {
		t.Fatalf("re-auth: %v", err)
	}
	if loc, _ = chromedp.Run(ctx, chromedp.Location()); !strings.HasSuffix(loc, "/account") {
		t.Fatalf("after re-auth the browser is at %q, want /account", loc)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("new-email"), "changed@example.com"),
		chromedp.Submit(chromedp.ID("new-email")),
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
}
