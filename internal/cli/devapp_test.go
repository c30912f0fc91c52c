package cli_test

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// startDev runs `gatehouse dev` on free ports against a fresh database until the test
// ends, and returns what it printed once it is running.
func startDev(t *testing.T, args ...string) string {
	t.Helper()
	d := testutil.FreshDB(t)
	env := map[string]string{"DATABASE_URL": d.AppURL, "GATEHOUSE_ADMIN_DATABASE_URL": d.AdminURL, "GATEHOUSE_LOG_LEVEL": "warn"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	out := &syncBuffer{}
	go func() {
		done <- runTo(ctx, env, out, append([]string{"dev", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, args...)...)
	}()
	t.Cleanup(func() {
		cancel()
		if r := <-done; r.err != nil {
			t.Errorf("dev: %v\n%s", r.err, r.stderr)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), "Gatehouse dev is running"); {
		select {
		case r := <-done:
			t.Fatalf("dev exited: %v\n%s", r.err, r.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("dev did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return out.String()
}

// pageState describes where the browser is, for a failure message.
func pageState(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	at, _ := chromedp.Run(ctx, chromedp.Location())
	body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	return fmt.Sprintf("\nat %s:\n%s", at, body)
}

// TestBrowserDemoApp is the README's first look: `gatehouse dev` prints the demo app's URL;
// in Chromium the demo app's "Sign in with Acme" goes through Acme's own login page on the
// tenant host and comes back with the ID token's claims and userinfo; "Sensitive action"
// (max_age=0) makes Acme ask for the password again, and the demo app shows the action
// done with auth_time renewed; "Sign out" ends on the demo app, signed out.
func TestBrowserDemoApp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	t.Parallel()
	out := startDev(t, "--idp-addr", "", "--app-addr", "127.0.0.1:0")
	m := regexp.MustCompile(`Demo app:\s+(http://127\.0\.0\.1:\d+)/`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("dev printed no demo app URL:\n%s", out)
	}
	appURL := m[1]
	tenantHost := regexp.MustCompile(`Demo tenant:\s+(http://acme\.localhost:\d+)/`).FindStringSubmatch(out)
	if tenantHost == nil {
		t.Fatalf("dev printed no demo tenant URL:\n%s", out)
	}

	ctx := testutil.Browser(t)
	err := chromedp.Do(ctx, chromedp.Navigate(appURL+"/"), chromedp.WaitVisible(chromedp.ID("sign-in")))
	if err != nil {
		t.Fatalf("demo app home: %v", err)
	}
	if signIn, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("sign-in"))); err != nil || signIn != "Sign in with Acme" {
		t.Fatalf("demo app home: %q %v", signIn, err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("sign-in")), chromedp.WaitVisible(chromedp.ID("password"))); err != nil {
		t.Fatalf("Sign in with Acme: %v", err)
	}
	if at, err := chromedp.Run(ctx, chromedp.Location()); err != nil || !strings.HasPrefix(at, tenantHost[1]+"/login") {
		t.Fatalf("sign-in went to %q (%v), want Acme's login page on %s", at, err, tenantHost[1])
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err = chromedp.Do(wctx,
		chromedp.SendKeys(chromedp.ID("email"), "user@acme.example"),
		chromedp.SendKeys(chromedp.ID("password"), "demo-correct-horse-battery"),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("claim-sub")),
	)
	if err != nil {
		t.Fatalf("sign in through Acme: %v%s", err, pageState(ctx))
	}
	claim := func(id string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		return strings.TrimSpace(s)
	}
	authTime := func() int64 {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("claim-auth_time").dataset.unix`))
		if err != nil {
			t.Fatalf("auth_time: %v", err)
		}
		n, _ := strconv.ParseInt(s, 10, 64)
		return n
	}
	if at, err := chromedp.Run(ctx, chromedp.Location()); err != nil || at != appURL+"/" {
		t.Fatalf("after sign-in the browser is at %q (%v), want the demo app", at, err)
	}
	if claim("claim-email") != "user@acme.example" || claim("claim-name") != "Demo User" || claim("claim-amr") != "pwd" ||
		claim("claim-acr") != "urn:gatehouse:aal1" || claim("claim-sid") == "" || len(claim("claim-sub")) != 36 {
		t.Fatalf("claims: email %q name %q amr %q acr %q sid %q sub %q", claim("claim-email"), claim("claim-name"),
			claim("claim-amr"), claim("claim-acr"), claim("claim-sid"), claim("claim-sub"))
	}
	if info := claim("userinfo"); !strings.Contains(info, `"email": "user@acme.example"`) || !strings.Contains(info, claim("claim-sub")) {
		t.Fatalf("userinfo: %s", info)
	}
	first := authTime()
	if first < time.Now().Add(-time.Minute).Unix() || first > time.Now().Unix() {
		t.Fatalf("auth_time %d is not the sign-in just made", first)
	}

	time.Sleep(1100 * time.Millisecond) // auth_time has second precision: make "renewed" visible
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("sensitive")), chromedp.WaitVisible(chromedp.CSS(`form[action="/reauth"]`))); err != nil {
		t.Fatalf("sensitive action: %v%s", err, pageState(ctx))
	}
	if at, err := chromedp.Run(ctx, chromedp.Location()); err != nil || !strings.HasPrefix(at, tenantHost[1]+"/reauth") {
		t.Fatalf("sensitive action: at %q (%v), want Acme's re-authentication page", at, err)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("password"), "demo-correct-horse-battery"),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("sensitive-done")),
	)
	if err != nil {
		t.Fatalf("re-authenticate: %v%s", err, pageState(ctx))
	}
	if done := claim("sensitive-done"); !strings.Contains(done, "auth_time renewed") {
		t.Fatalf("sensitive action: %q", done)
	}
	if second := authTime(); second <= first {
		t.Fatalf("auth_time after the sensitive action %d, before %d: not renewed", second, first)
	}

	// Sign out: local, then RP-initiated logout at Acme when it offers one; either way the
	// browser ends on the demo app, signed out.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("sign-out")), chromedp.WaitVisible(chromedp.ID("sign-in"))); err != nil {
		t.Fatalf("sign out: %v%s", err, pageState(ctx))
	}
	if at, err := chromedp.Run(ctx, chromedp.Location()); err != nil || !strings.HasPrefix(at, appURL+"/") {
		t.Fatalf("after sign-out the browser is at %q (%v), want the demo app", at, err)
	}
	if text := claim("signed-out"); !strings.Contains(text, "Signed out of the demo app") {
		t.Fatalf("after sign-out: %q", text)
	}
}
