package cli_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-id/gatehouse/internal/sso/devidp"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestBrowserDevOIDCIdP: `gatehouse dev` runs a dev OpenID Provider beside the SAML one,
// with the same demo employees, and the demo tenant has an OIDC connection to it: the
// printed login URL goes through the provider's sign-in and lands signed in at Gatehouse,
// with the Admins group mapped to the admin role.
func TestBrowserDevOIDCIdP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	t.Parallel()
	d := testutil.FreshDB(t)
	env := map[string]string{"DATABASE_URL": d.AppURL, "GATEHOUSE_ADMIN_DATABASE_URL": d.AdminURL, "GATEHOUSE_LOG_LEVEL": "warn"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	out := &syncBuffer{}
	go func() {
		done <- runTo(ctx, env, out, "dev", "--addr", "127.0.0.1:0", "--idp-addr", "127.0.0.1:0", "--oidc-idp-addr", "127.0.0.1:0",
			"--app-addr", "off", "--data-dir", t.TempDir())
	}()
	t.Cleanup(func() {
		cancel()
		if r := <-done; r.err != nil {
			t.Errorf("dev: %v\n%s", r.err, r.stderr)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), "Gatehouse dev is running"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("dev did not start:\n%s", out.String())
		}
	}
	m := regexp.MustCompile(`SSO \(dev OIDC\): (\S+/sso/oidc/dev-oidc/login) → at the dev OpenID Provider \((\S+)\) sign in as alice, password (\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("dev printed no OIDC SSO line:\n%s", out.String())
	}
	if m[3] != devidp.Password {
		t.Fatalf("printed password %q", m[3])
	}
	b := testutil.Browser(t)
	err := chromedp.Do(b,
		chromedp.Navigate(m[1]+"?return_to=/account"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), devidp.Password),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("current-email")),
	)
	if err != nil {
		html, _ := chromedp.Run(b, chromedp.Evaluate[string](`location.href + "\n" + document.documentElement.outerHTML`))
		t.Fatalf("sign in through the dev OpenID Provider: %v\n%s", err, html)
	}
	if text, _ := chromedp.Run(b, chromedp.Text(chromedp.CSS("main"))); !strings.Contains(text, "alice@acme-oidc.test") {
		t.Fatalf("account page: %q", text)
	}
}
