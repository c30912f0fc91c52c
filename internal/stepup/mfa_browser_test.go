package stepup_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// shoot saves a screenshot of the page to $GATEHOUSE_SCREENSHOTS (docs/screenshots when
// refreshing the pictures), when it is set.
func shoot(ctx context.Context, name string) {
	dir := os.Getenv("GATEHOUSE_SCREENSHOTS")
	if dir == "" {
		return
	}
	if img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		_ = os.WriteFile(filepath.Join(dir, name+".png"), img, 0o644)
	}
}

// browserEnrol signs the env's user in, starts the TOTP set-up from the account page, makes
// one typo and then confirms with the same secret; it checks each page on the way and
// returns the secret and the recovery codes shown after the confirmation.
func browserEnrol(t *testing.T, ctx context.Context, e *env, base string) (string, []string) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), e.email),
		chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/account/mfa/totp"] button`)),
		chromedp.Click(chromedp.CSS(`form[action="/account/mfa/totp"] button`)),
		chromedp.WaitVisible(chromedp.ID("totp-secret")),
	)
	if err != nil {
		t.Fatalf("sign in and start the set-up: %v", err)
	}
	secret, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("totp-secret")))
	qr, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("main img").src`))
	if secret == "" || !strings.HasPrefix(qr, "data:image/png;base64,") {
		t.Fatalf("set-up page: secret %q, QR %.40q", secret, qr)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#recovery-codes").length`)); n != 0 {
		t.Fatal("recovery codes are shown before the set-up is confirmed")
	}

	// A typo: the same page again, same key and QR code, with the error.
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("code"), wrongCode(t, secret, e.clk.Now())),
		chromedp.Submit(chromedp.ID("code")),
		chromedp.WaitVisible(chromedp.ID("enroll-error")),
	)
	if err != nil {
		t.Fatalf("confirm with a typo: %v", err)
	}
	msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("enroll-error")))
	again, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("totp-secret")))
	qr2, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("main img").src`))
	if again != secret || qr2 != qr || !strings.Contains(msg, "not correct") {
		t.Fatalf("after a typo: secret %q (was %q), same QR %v, message %q", again, secret, qr2 == qr, msg)
	}
	shoot(ctx, "mfa-setup-retry")
	if n := e.d.AuditCount(t, e.Tenant.ID, "mfa.confirm_failed", "invalid_code"); n != 1 {
		t.Fatalf("%d mfa.confirm_failed events; want 1", n)
	}

	// The right code of the same secret turns it on and shows the codes once.
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("code"), code(t, secret, e.clk.Now())),
		chromedp.Submit(chromedp.ID("code")),
		chromedp.WaitVisible(chromedp.ID("recovery-codes")),
	)
	if err != nil {
		t.Fatalf("confirm after the typo: %v", err)
	}
	codes, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#recovery-codes code")].map(c => c.textContent)`))
	if err != nil || len(codes) != 10 {
		t.Fatalf("recovery codes after the confirmation: %v %q", err, codes)
	}
	shoot(ctx, "mfa-recovery-codes")
	return secret, codes
}

// TestBrowserTOTPTypoKeepsSecret (issue 16, item 5): a typo while confirming the set-up
// keeps the same secret and QR code with a clear error; the next right code turns TOTP on;
// the recovery codes appear only then, with a working copy button and a download of a text
// file holding them.
func TestBrowserTOTPTypoKeepsSecret(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	t.Parallel()
	e := newEnv(t, nil)
	ctx := testutil.Browser(t)
	base := fmt.Sprintf("http://%s:%d", e.Host, e.Srv.Port)
	dir := t.TempDir()
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir}); err != nil {
		t.Fatalf("allow downloads: %v", err)
	}
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted, Origin: base}); err != nil {
			t.Fatalf("grant %s: %v", name, err)
		}
	}
	_, codes := browserEnrol(t, ctx, e, base)
	e.Srv.WaitMail(t, e.email, "Two-factor authentication turned on")

	// Copy: the button puts every code on the clipboard, one a line.
	err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("copy-codes")),
		chromedp.Poll[chromedp.Void](`document.getElementById("copy-codes").textContent === "Copied"`, chromedp.WithPollingTimeout(5*time.Second)))
	if err != nil {
		t.Fatalf("copy button: %v", err)
	}
	clip, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
	if err != nil || clip != strings.Join(codes, "\n") {
		t.Fatalf("clipboard after Copy: %v %q", err, clip)
	}

	// Download: a text file with the codes, from the page itself (a data: URL).
	href, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("download-codes").href`))
	name, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("download-codes").getAttribute("download")`))
	if !strings.HasPrefix(href, "data:text/plain") || name != "recovery-codes-"+e.Tenant.Slug+".txt" {
		t.Fatalf("download link: %.60q named %q", href, name)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("download-codes"))); err != nil {
		t.Fatalf("click download: %v", err)
	}
	var file []byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil && len(b) > 0 {
			file = b
			break
		}
	}
	if file == nil {
		entries, _ := os.ReadDir(dir)
		t.Fatalf("no downloaded %s in %v", name, entries)
	}
	for _, c := range codes {
		if !strings.Contains(string(file), "\n"+c+"\n") {
			t.Fatalf("downloaded file misses %s:\n%s", c, file)
		}
	}
	if !strings.Contains(string(file), e.email) {
		t.Fatalf("downloaded file does not say whose codes they are:\n%s", file)
	}
	// The codes are nowhere else: not in the data: URL of another page, not fetchable later.
	if b64, ok := strings.CutPrefix(href, "data:text/plain;charset=utf-8;base64,"); !ok {
		t.Fatalf("download href %.60q", href)
	} else if raw, _ := base64.StdEncoding.DecodeString(b64); string(raw) != string(file) {
		t.Fatal("the downloaded file is not the link's text")
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/account/mfa"), chromedp.WaitVisible(chromedp.ID("codes-left"))); err != nil {
		t.Fatalf("two-factor page: %v", err)
	}
	page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	for _, c := range codes {
		if strings.Contains(page, c) {
			t.Fatalf("the two-factor page shows recovery code %s again", c)
		}
	}
}

// TestBrowserRecoveryCodesPage (issue 16, item 11): the two-factor page counts the unused
// recovery codes; the sign-in's code field takes a recovery code (letters: no numeric
// keyboard); a used one gets its own message; regenerating asks to confirm it's you and
// then shows ten new codes, and the count is back to ten.
func TestBrowserRecoveryCodesPage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	t.Parallel()
	e := newEnv(t, nil)
	ctx := testutil.Browser(t)
	base := fmt.Sprintf("http://%s:%d", e.Host, e.Srv.Port)
	secret, codes := browserEnrol(t, ctx, e, base)
	left := func(want string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/account/mfa"), chromedp.WaitVisible(chromedp.ID("codes-left"))); err != nil {
			t.Fatalf("two-factor page: %v", err)
		}
		if got, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("codes-left"))); !strings.Contains(got, want) {
			t.Fatalf("two-factor page says %q; want %q", got, want)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`main a[href="/account/mfa"]`)), chromedp.WaitVisible(chromedp.ID("codes-left"))); err != nil {
		t.Fatalf("continue after saving the codes: %v", err)
	}
	left("10 recovery codes left")

	signIn := func(code string) {
		t.Helper()
		err := chromedp.Do(ctx,
			chromedp.Navigate(base+"/account"),
			chromedp.WaitVisible(chromedp.CSS(`form[action="/logout"] button`)))
		if err == nil { // sign out, and wait for the page it leads to
			_, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)))
		}
		if err != nil {
			t.Fatalf("sign out: %v", err)
		}
		err = chromedp.Do(ctx,
			chromedp.Navigate(base+"/login"),
			chromedp.WaitVisible(chromedp.ID("email")),
			chromedp.SendKeys(chromedp.ID("email"), e.email),
			chromedp.SendKeys(chromedp.ID("password"), pw),
			chromedp.Submit(chromedp.ID("password")),
			chromedp.WaitVisible(chromedp.CSS(`form[action="/login/mfa"] #code`)),
		)
		if err != nil {
			t.Fatalf("sign in to the code step: %v", err)
		}
		if mode, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("code").inputMode`)); mode == "numeric" {
			t.Fatal("the sign-in code field asks for a numeric keyboard; recovery codes have letters")
		}
		if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("code"), code), chromedp.Submit(chromedp.ID("code")),
			chromedp.WaitReady(chromedp.CSS("main"))); err != nil {
			t.Fatalf("enter the code: %v", err)
		}
	}
	signIn(codes[0])
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("manage-mfa"))); err != nil {
		t.Fatalf("sign-in with a recovery code: %v", err)
	}
	left("9 recovery codes left")

	signIn(codes[0])
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("code-error"))); err != nil {
		t.Fatalf("sign-in with a used recovery code: %v", err)
	}
	if msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("code-error"))); !strings.Contains(msg, "This recovery code was already used") {
		t.Fatalf("used recovery code message: %q", msg)
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("code"), codes[1]), chromedp.Submit(chromedp.ID("code")),
		chromedp.WaitVisible(chromedp.ID("manage-mfa"))); err != nil {
		t.Fatalf("sign-in with another recovery code: %v", err)
	}

	// Later, regenerating asks to confirm it's you (two factors), then shows ten new codes.
	e.clk.Advance(6 * time.Minute)
	left("8 recovery codes left")
	shoot(ctx, "account-mfa")
	err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("regenerate")), chromedp.WaitVisible(chromedp.CSS(`form[action="/reauth"]`)))
	if err != nil {
		t.Fatalf("regenerate before re-auth: %v", err)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.Contains(loc, "action=recovery_codes.regenerate") {
		t.Fatalf("sent to %q, want the re-auth page for recovery_codes.regenerate", loc)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("code"), code(t, secret, e.clk.Now())),
		chromedp.Submit(chromedp.ID("code")),
		chromedp.WaitVisible(chromedp.ID("regenerate")),
		chromedp.Click(chromedp.ID("regenerate")),
		chromedp.WaitVisible(chromedp.ID("recovery-codes")),
	)
	if err != nil {
		t.Fatalf("regenerate after re-auth: %v", err)
	}
	fresh, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#recovery-codes code")].map(c => c.textContent)`))
	if len(fresh) != 10 || fresh[0] == codes[0] {
		t.Fatalf("new codes: %q", fresh)
	}
	for _, id := range []string{"copy-codes", "download-codes"} {
		if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#`+id+`").length`)); n != 1 {
			t.Fatalf("no #%s on the new codes page", id)
		}
	}
	left("10 recovery codes left")
	e.Srv.WaitMail(t, e.email, "New recovery codes")
}
