package account_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// signInBrowser signs the browser in with a password and waits for the account page.
func signInBrowser(t *testing.T, e *env, email, password string) (ctx context.Context, base string) {
	t.Helper()
	ctx = testutil.Browser(t)
	base = fmt.Sprintf("http://%s:%d", e.Host, e.Srv.Port)
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("current-email")),
	)
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	return ctx, base
}

func bodyText(t *testing.T, ctx context.Context) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func present(t *testing.T, ctx context.Context, sel string) bool {
	t.Helper()
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector(`+fmt.Sprintf("%q", sel)+`) !== null`))
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestBrowserSSOAccountPage: the account page of an SSO-only admin shows the address as
// the IdP's (no change form), no password form where the domain must use SSO, and the
// portal link; once the connection stops enforcing, a "Set a password" form without a
// current password.
func TestBrowserSSOAccountPage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	t.Parallel()
	e := newEnv(t, nil)
	e.User(t, "ines@corp.example", authz.Admin)
	ctx, base := signInBrowser(t, e, "ines@corp.example", goodPassword)
	e.ssoAccount(t, "ines@corp.example", "corp.example", true)

	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/account"), chromedp.WaitVisible(chromedp.ID("email-managed"))); err != nil {
		t.Fatalf("account page: %v", err)
	}
	text := bodyText(t, ctx)
	for _, want := range []string{"manages your address", "Acme Okta", "no password here", "Open the admin portal"} {
		if !strings.Contains(text, want) {
			t.Fatalf("account page lacks %q:\n%s", want, text)
		}
	}
	for _, sel := range []string{"#new-email", "#current-password", "#new-password"} {
		if present(t, ctx, sel) {
			t.Fatalf("the SSO account's page offers %s", sel)
		}
	}
	href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("admin-portal").getAttribute("href")`))
	if err != nil || href != "/admin" {
		t.Fatalf("portal link %q %v", href, err)
	}

	e.admin(t, "UPDATE sso_connections SET enforce = false WHERE tenant_id = $1", e.Tenant.ID)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/account"), chromedp.WaitVisible(chromedp.ID("new-password"))); err != nil {
		t.Fatalf("account page without enforcement: %v", err)
	}
	if present(t, ctx, "#current-password") || !strings.Contains(bodyText(t, ctx), "Set a password") {
		t.Fatalf("want a Set a password form without the current password:\n%s", bodyText(t, ctx))
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("new-password"), "new tangerine bicycle route"),
		chromedp.Submit(chromedp.ID("new-password")),
		chromedp.WaitVisible(chromedp.CSS(`p[role=status]`)),
	)
	if err != nil || !strings.Contains(bodyText(t, ctx), "Password changed") {
		t.Fatalf("set a password: %v\n%s", err, bodyText(t, ctx))
	}
	e.Login(t, "ines@corp.example", "new tangerine bicycle route")

	// A member without a portal role gets no portal link.
	e.User(t, "mo@example.com")
	ctx2, _ := signInBrowser(t, e, "mo@example.com", goodPassword)
	if present(t, ctx2, "#admin-portal") || !present(t, ctx2, "#new-email") || !present(t, ctx2, "#current-password") {
		t.Fatalf("a password member's page:\n%s", bodyText(t, ctx2))
	}
}

// TestBrowserUsedLinks: each used link's page says what happened and offers the one next
// step, which works: a confirmed verification link leads to sign-in, a used reset link
// shows no form, an old deletion-cancel link leads to a form that mails a new one, an
// accepted invitation leads to sign-in.
func TestBrowserUsedLinks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	t.Parallel()
	e := newEnv(t, nil)
	ctx := testutil.Browser(t)
	base := fmt.Sprintf("http://%s:%d", e.Host, e.Srv.Port)
	open := func(link, want string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("link-state"))); err != nil {
			t.Fatalf("%s: %v", link, err)
		}
		if text := bodyText(t, ctx); !strings.Contains(text, want) {
			t.Fatalf("%s says:\n%s\nwant %q", link, text, want)
		}
	}
	next := func(wantPath string) {
		t.Helper()
		href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("next-step").getAttribute("href")`))
		if err != nil || href != wantPath {
			t.Fatalf("next step %q %v, want %q", href, err, wantPath)
		}
	}

	e.Signup(t, "v@example.com")
	verify := testutil.TokenFrom(t, e.Srv.WaitMail(t, "v@example.com", "Confirm"), "/verify")
	e.expect(t, e.Do(t, "POST", "/api/v1/verification/confirm", "", map[string]string{"token": verify}), 200, "")
	open(base+"/verify?token="+verify, "already confirmed")
	next("/login")

	e.expect(t, e.Do(t, "POST", "/api/v1/password/forgot", "", map[string]string{"email": "v@example.com"}), 202, "")
	reset := testutil.TokenFrom(t, e.Srv.WaitMail(t, "v@example.com", "Reset your"), "/password/reset")
	e.expect(t, e.Do(t, "POST", "/api/v1/password/reset", "", map[string]string{"token": reset, "password": "new tangerine bicycle route"}), 200, "")
	open(base+"/password/reset?token="+reset, "already used to set a password")
	next("/login")
	if present(t, ctx, `input[name="password"]`) {
		t.Fatal("the used reset link still shows the password form")
	}

	e.User(t, "going@example.com")
	tok := e.Login(t, "going@example.com", goodPassword)
	e.expect(t, e.Do(t, "DELETE", "/api/v1/account", tok, nil), 202, "")
	cancel := testutil.TokenFrom(t, e.Srv.WaitMail(t, "going@example.com", "will be deleted"), "/account/deletion/cancel")
	e.admin(t, "UPDATE email_tokens SET expires_at = now() - interval '1 second' WHERE tenant_id = $1 AND purpose = 'cancel_deletion'", e.Tenant.ID)
	open(base+"/account/deletion/cancel?token="+cancel, "invalid or has expired")
	next("/account/deletion/resend")
	err := chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("next-step")),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "going@example.com"),
		chromedp.Submit(chromedp.ID("email")),
		chromedp.WaitVisible(chromedp.CSS(`p[role=status]`)),
	)
	if err != nil {
		t.Fatalf("ask for a new cancel link: %v", err)
	}
	fresh := e.newToken(t, "going@example.com", "will be deleted", "/account/deletion/cancel", cancel)
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/account/deletion/cancel?token="+fresh),
		chromedp.Click(chromedp.CSS(`form[action="/account/deletion/cancel"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`p[role=status]`)),
	)
	if err != nil || !strings.Contains(bodyText(t, ctx), "The deletion is cancelled") {
		t.Fatalf("cancel with the new link: %v\n%s", err, bodyText(t, ctx))
	}

	_, adminTok := e.Person(t, "boss@example.com", authz.Admin)
	e.expect(t, e.Do(t, "POST", "/api/v1/admin/invitations", adminTok, map[string]string{"email": "friend@example.com", "role": "member"}), 201, "")
	inv := testutil.TokenFrom(t, e.Srv.WaitMail(t, "friend@example.com", "invited"), "/invite")
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/invite?token="+inv),
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("password"), goodPassword),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("current-email")),
		chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.ID("signed-out")),
	)
	if err != nil {
		t.Fatalf("accept the invitation: %v", err)
	}
	open(base+"/invite?token="+inv, "already accepted")
	next("/login?return_to=%2Faccount")
}

// TestBrowserSignupReload: the sign-up answer is a page of its own (Post/Redirect/Get):
// reloading it does not sign up again — no second mail — and it does not name the address.
func TestBrowserSignupReload(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	t.Parallel()
	e := newEnv(t, nil)
	ctx := testutil.Browser(t)
	base := fmt.Sprintf("http://%s:%d", e.Host, e.Srv.Port)
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/signup"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "prg@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), goodPassword),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("signup-sent")),
	)
	if err != nil {
		t.Fatalf("sign up: %v", err)
	}
	e.Srv.WaitMail(t, "prg@example.com", "Confirm")
	err = chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("signup-sent")))
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if !strings.HasSuffix(loc, "/signup/sent") {
		t.Fatalf("after sign-up the browser is at %q", loc)
	}
	if text := bodyText(t, ctx); strings.Contains(text, "prg@example.com") || !strings.Contains(text, "Check your email") {
		t.Fatalf("sign-up answer:\n%s", text)
	}
	if n := len(e.d.QueuedMails(t, e.Tenant.ID)); n != 1 {
		t.Fatalf("%d mails after a reload of the answer, want the one of the sign-up", n)
	}
}
