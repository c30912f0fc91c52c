package account_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestBrowserShowPasswordToggle (issue 16 item 16): every password field (sign-in,
// sign-up, reset, change password, re-authentication) gets a Show button from the static
// password.js under the strict CSP; it flips the field to text and back, and the field is
// a password field again when its form is sent.
func TestBrowserShowPasswordToggle(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	t.Parallel()
	e := newEnv(t, nil)
	e.SignupVerified(t, "shows@example.com")
	base := fmt.Sprintf("http://%s:%d", e.Host, e.Srv.Port)
	if csp := e.Page(t, "/login").Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("login page CSP: %q", csp)
	}
	ctx := testutil.Browser(t)
	typeOf := func(id string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById(`+"`"+id+"`"+`).type`))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	toggle := func(id string) string { return `button.pw-toggle[aria-controls="` + id + `"]` }
	check := func(path string, ids ...string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS(toggle(ids[0])))); err != nil {
			t.Fatalf("%s: no show-password button: %v", path, err)
		}
		for _, id := range ids {
			if got := typeOf(id); got != "password" {
				t.Fatalf("%s #%s starts as %q", path, id, got)
			}
			if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID(id), "secret words"), chromedp.Click(chromedp.CSS(toggle(id)))); err != nil {
				t.Fatal(err)
			}
			label, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(toggle(id))))
			pressed, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('`+toggle(id)+`').getAttribute("aria-pressed")`))
			if got := typeOf(id); got != "text" || label != "Hide" || pressed != "true" {
				t.Fatalf("%s #%s after Show: type %q, button %q, aria-pressed %q", path, id, got, label, pressed)
			}
			for _, other := range ids {
				if other != id && typeOf(other) != "password" {
					t.Fatalf("%s: showing #%s also showed #%s", path, id, other)
				}
			}
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(toggle(id)))); err != nil {
				t.Fatal(err)
			}
			if got := typeOf(id); got != "password" {
				t.Fatalf("%s #%s after Hide: %q", path, id, got)
			}
			if v, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("`+id+`").value`)); v != "secret words" {
				t.Fatalf("%s #%s lost what was typed: %q", path, id, v)
			}
		}
	}
	check("/signup", "password")
	// A real reset link (an unknown one shows what happened instead of the form).
	e.Do(t, "POST", "/api/v1/password/forgot", "", map[string]string{"email": "shows@example.com"})
	reset := testutil.TokenFrom(t, e.Srv.WaitMail(t, "shows@example.com", "Reset your"), "/password/reset")
	check("/password/reset?token="+reset, "password")
	check("/login", "password")
	// Shown when the form is sent: it goes as a password field (the page's own submit
	// handler runs first; this one, added after it, sees the field as sent).
	sentAs, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(function () {
		var f = document.getElementById("password").form, seen = "";
		document.getElementById("email").value = "shows@example.com";
		document.querySelector('`+toggle("password")+`').click();
		f.addEventListener("submit", function (ev) { seen = f.password.type; ev.preventDefault(); });
		f.requestSubmit();
		return seen;
	})()`))
	if err != nil || sentAs != "password" {
		t.Fatalf("a shown password was sent as %q (%v)", sentAs, err)
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "shows@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), goodPassword),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("current-email")),
	)
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	check("/account", "current-password", "new-password")
	check("/reauth?return_to=/account", "password")
}
