package account_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

func contains(t *testing.T, r *testutil.Response, status int, parts ...string) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d\n%s", r.Request.Method, r.Request.URL, r.StatusCode, status, r.Body)
	}
	for _, p := range parts {
		if !strings.Contains(string(r.Body), p) {
			t.Fatalf("%s %s: page lacks %q\n%s", r.Request.Method, r.Request.URL, p, r.Body)
		}
	}
}

// TestPages walks the HTML forms without JavaScript: errors re-render the form with a
// clear message and the typed values (never the password); success pages and redirects.
func TestPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	contains(t, e.Page(t, "/signup"), 200, `<label for="email">`, `action="/signup"`, "Acme Test")
	contains(t, e.Form(t, "/signup", url.Values{"email": {"p@example.com"}, "password": {"password"}}), 400,
		"too common", `value="p@example.com"`)
	r := e.Form(t, "/signup", url.Values{"email": {"p@example.com"}, "password": {goodPassword}})
	if r.StatusCode != 303 || r.Header.Get("Location") != "/signup/sent" {
		t.Fatalf("sign-up answers %d to %q, want 303 to /signup/sent (Post/Redirect/Get)", r.StatusCode, r.Header.Get("Location"))
	}
	if strings.Contains(string(r.Body), goodPassword) {
		t.Fatal("password echoed in a page")
	}
	contains(t, e.Form(t, "/login", url.Values{"email": {"p@example.com"}, "password": {goodPassword}}), 403,
		"Confirm your email address first", `href="/verify/resend"`)
	tok := testutil.TokenFrom(t, e.Srv.WaitMail(t, "p@example.com", "Confirm"), "/verify")
	contains(t, e.Form(t, "/verify", url.Values{"token": {tampered(tok)}}), 400, "invalid or has expired", `href="/verify/resend"`)
	contains(t, e.Form(t, "/verify", url.Values{"token": {tok}}), 200, "Email address confirmed")

	contains(t, e.Form(t, "/login", url.Values{"email": {"p@example.com"}, "password": {"wrong password here"}}), 401, "not correct")
	r = e.Form(t, "/login", url.Values{"email": {"p@example.com"}, "password": {goodPassword}, "return_to": {"//evil.example/x"}})
	if r.StatusCode != 303 || r.Header.Get("Location") != "/account" {
		t.Fatalf("login: %d to %q (an off-host return_to must fall back to /account)", r.StatusCode, r.Header.Get("Location"))
	}
	var cookie string
	for _, c := range r.Cookies() {
		if c.Name == session.CookieName {
			cookie = c.Name + "=" + c.Value
		}
	}
	contains(t, e.Page(t, "/account", "Cookie", cookie), 200, "p@example.com", "confirmed", `action="/account/email"`)
	contains(t, e.Form(t, "/account/email", url.Values{"email": {"nope"}}, "Cookie", cookie), 400, "valid email address")

	// Forms refuse cross-site posts (a page on another site submitting to ours).
	r = e.Form(t, "/account/email", url.Values{"email": {"evil@example.com"}}, "Cookie", cookie, "Sec-Fetch-Site", "cross-site")
	contains(t, r, 403, "cross_origin_request")
	r = e.Form(t, "/login", url.Values{"email": {"p@example.com"}, "password": {goodPassword}}, "Origin", "https://evil.example")
	contains(t, r, 403)

	// Reset and the no-account pages answer alike.
	a := e.Form(t, "/password/forgot", url.Values{"email": {"p@example.com"}})
	b := e.Form(t, "/password/forgot", url.Values{"email": {"nobody@example.com"}})
	contains(t, a, 200, "If p@example.com belongs to an account")
	contains(t, b, 200, "If nobody@example.com belongs to an account")
	rt := testutil.TokenFrom(t, e.Srv.WaitMail(t, "p@example.com", "Reset your"), "/password/reset")
	contains(t, e.Page(t, "/password/reset?token="+rt), 200, `name="token" value="`+rt+`"`)
	contains(t, e.Form(t, "/password/reset", url.Values{"token": {rt}, "password": {"new tangerine bicycle route"}}), 200, "Password changed")
	contains(t, e.Page(t, "/account", "Cookie", cookie), 303) // the reset ended the session
	// The used link says so at once (GET, nothing consumed) instead of showing the form.
	used := e.Page(t, "/password/reset?token="+rt)
	contains(t, used, 409, "already used to set a password", `id="next-step" href="/login"`)
	if strings.Contains(string(used.Body), `name="password"`) {
		t.Fatal("a used reset link still shows the password form")
	}
	// The page a sign-up lands on says the same for every address.
	contains(t, e.Page(t, "/signup/sent"), 200, "Check your email", "the address you entered")
	contains(t, e.Page(t, "/_dev/mail"), 200, "Dev mailbox", "p@example.com")
}

// tampered changes a token's first character (to another one, whatever it was).
func tampered(tok string) string {
	if tok[0] == 'x' {
		return "y" + tok[1:]
	}
	return "x" + tok[1:]
}
