package cli_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-id/gatehouse/internal/sso/devidp"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestBrowserDevIdPAsTheREADMESays (issue 16 item 7): `gatehouse dev` as a newcomer uses
// it, in Chromium: the IdP address it prints opens a front page naming the demo
// employees; on the demo tenant's login page alice@acme.test goes to the dev IdP, where a
// wrong password keeps the form and says why, and the email address (not only the
// username) signs in; an expired or broken request gets a page leading back, not a bare
// "Bad Request".
func TestBrowserDevIdPAsTheREADMESays(t *testing.T) {
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
		done <- runTo(ctx, env, out, "dev", "--addr", "127.0.0.1:0", "--idp-addr", "127.0.0.1:0", "--data-dir", t.TempDir())
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
	m := regexp.MustCompile(`SSO \(dev IdP\): (\S+/login) → type alice@acme\.test .*\n\s+at the dev IdP \((\S+)\) sign in as alice \(or alice@acme\.test\), password (\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("dev printed no SSO instructions:\n%s", out.String())
	}
	login, front, password := m[1], m[2], m[3]
	if password != devidp.Password {
		t.Fatalf("printed IdP password %q", password)
	}
	// A broken request (or one posted again after the 90 s it is valid) gets a page with
	// the way back.
	r, err := http.Post(strings.TrimSuffix(front, "/")+"/sso", "application/x-www-form-urlencoded", strings.NewReader("SAMLRequest=bm90IHNhbWw%3D&user=alice&password=x"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `<a href="`+login+`" id="start">Start again at Gatehouse</a>`) {
		t.Fatalf("broken request: %d\n%s", r.StatusCode, body)
	}

	b := testutil.Browser(t)
	if err := chromedp.Do(b, chromedp.Navigate(front), chromedp.WaitVisible(chromedp.ID("start"))); err != nil {
		t.Fatalf("IdP front page %s: %v", front, err)
	}
	text, err := chromedp.Run(b, chromedp.Text(chromedp.CSS("body")))
	if err != nil || !strings.Contains(text, "alice@acme.test") || !strings.Contains(text, devidp.Password) {
		t.Fatalf("front page: %q %v", text, err)
	}
	err = chromedp.Do(b,
		chromedp.Click(chromedp.ID("start")),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "alice@acme.test"),
		chromedp.Click(chromedp.ID("sso-login")),
		chromedp.WaitVisible(chromedp.ID("user")),
		chromedp.SendKeys(chromedp.ID("user"), "alice@acme.test"),
		chromedp.SendKeys(chromedp.ID("password"), "not the password"),
		chromedp.Click(chromedp.CSS(`input[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("idp-error")),
	)
	if err != nil {
		t.Fatalf("wrong password at the dev IdP: %v", err)
	}
	if text, _ = chromedp.Run(b, chromedp.Text(chromedp.ID("idp-error"))); !strings.Contains(text, "Invalid username or password") {
		t.Fatalf("error at the IdP: %q", text)
	}
	err = chromedp.Do(b,
		chromedp.WaitVisible(chromedp.ID("user")),
		chromedp.SendKeys(chromedp.ID("user"), "Alice@acme.test "),
		chromedp.SendKeys(chromedp.ID("password"), devidp.Password),
		chromedp.Click(chromedp.CSS(`input[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("current-email")), // an SSO user's address is read-only (issue 16 item 8)
	)
	if err != nil {
		html, _ := chromedp.Run(b, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
		t.Fatalf("sign in with the address at the dev IdP: %v\n%s", err, html)
	}
	if text, _ = chromedp.Run(b, chromedp.Text(chromedp.CSS("main"))); !strings.Contains(text, "alice@acme.test") {
		t.Fatalf("account page: %q", text)
	}
}
