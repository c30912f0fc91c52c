package sso_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/domainverify"
	"github.com/gatehouse-id/gatehouse/internal/sso/devidp"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// devSite is a tenant with the dev IdP connected (domain acme.test verified), as
// `gatehouse dev` sets it up.
type devSite struct {
	*site
	idp  *devidp.IdP
	conn conn
	base string
}

func newDevSite(t *testing.T, editMetadata func(string) string) *devSite {
	t.Helper()
	dns, err := domainverify.StartServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dns.Close() })
	srv, d := newServer(t, testutil.WithConfig(func(c *config.Config) { c.DNSServer = dns.Addr }))
	s := newSite(t, srv, d)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	idp, err := devidp.New(fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port), filepath.Join(t.TempDir(), "idp.pem"))
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: idp.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	md, err := idp.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	xml := string(md)
	if editMetadata != nil {
		xml = editMetadata(xml)
	}
	c := s.createConn(t, map[string]any{"name": "Dev IdP", "slug": "dev", "provider": "dev", "idp_metadata_xml": xml,
		"domains": []string{"acme.test"}, "attribute_mapping": map[string]string{"groups": devidp.GroupsAttribute},
		"role_mapping": map[string]string{"Admins": "admin"}})
	spMeta := s.call(t, "GET", "/sso/saml/dev/metadata", "", nil)
	if err := idp.Register("gatehouse", spMeta.Body); err != nil {
		t.Fatal(err)
	}
	dns.SetTXT(c.Domains[0].RecordName, c.Domains[0].RecordValue)
	if r := s.call(t, "POST", "/api/v1/admin/sso/domains/acme.test/verify", s.admin, nil); r.StatusCode != 200 {
		t.Fatalf("verify: %d %s", r.StatusCode, r.Body)
	}
	return &devSite{site: s, idp: idp, conn: c, base: fmt.Sprintf("http://%s:%d", s.host, srv.Port)}
}

// signIn goes through "Sign in with single sign-on" as email, signing in at the dev IdP
// as user when it asks (user "" expects no question: the IdP still has a session).
func (s *devSite) signIn(t *testing.T, ctx context.Context, email, user string) {
	t.Helper()
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(s.base + "/login?return_to=/account"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.Click(chromedp.ID("sso-login")),
	}
	if user != "" {
		steps = append(steps,
			chromedp.WaitVisible(chromedp.CSS(`input[name="user"]`)),
			chromedp.SendKeys(chromedp.CSS(`input[name="user"]`), user),
			chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), devidp.Password),
			chromedp.Click(chromedp.CSS(`[type="submit"]`)))
	}
	steps = append(steps, chromedp.WaitVisible(chromedp.ID("current-email")))
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("SSO sign-in as %s: %v\n%s", email, err, pageHTML(ctx))
	}
}

// signOut presses Sign out on the account page and returns the signed-out page's text.
func (s *devSite) signOut(t *testing.T, ctx context.Context) string {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Navigate(s.base+"/account"),
		chromedp.WaitVisible(chromedp.ID("current-email")),
		chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.ID("signed-out")),
	)
	if err != nil {
		t.Fatalf("sign out: %v\n%s", err, pageHTML(ctx))
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		t.Fatal(err)
	}
	return text
}

func (s *devSite) liveSSOSessions(t *testing.T) int {
	t.Helper()
	var n int
	if err := s.d.Admin.QueryRow(context.Background(), `SELECT count(*) FROM sessions WHERE tenant_id = $1 AND 'saml' = ANY(methods) AND revoked_at IS NULL`, s.t.ID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func pageHTML(ctx context.Context) string {
	html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.documentElement.outerHTML`))
	return html
}

// TestBrowserSignOutEndsIdPSession (issue 16 item 14): an employee signed in through the
// dev IdP (which publishes single logout) presses Sign out; the browser carries a signed
// LogoutRequest to the IdP, whose signed answer lands on the signed-out page saying the
// organisation's sign-in ended too, and Sign in with single sign-on asks for the IdP
// password again instead of signing straight back in.
func TestBrowserSignOutEndsIdPSession(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	t.Parallel()
	s := newDevSite(t, nil)
	ctx := testutil.Browser(t)
	s.signIn(t, ctx, "alice@acme.test", "alice")
	text := s.signOut(t, ctx)
	if !strings.Contains(text, "You are signed out of SSO Co and of your organisation's sign-in.") || strings.Contains(text, "still") {
		t.Fatalf("signed-out page after single logout:\n%s", text)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasSuffix(loc, "/signed-out?idp=ended") {
		t.Fatalf("signed out at %s", loc)
	}
	if s.liveSSOSessions(t) != 0 {
		t.Fatal("the Gatehouse session survived sign-out")
	}
	// The IdP's session is gone: it asks again.
	s.signIn(t, ctx, "alice@acme.test", "alice")
}

// TestBrowserSignOutWarnsIdPSessionLives: with a connection whose IdP publishes no single
// logout, signing out says the organisation's sign-in still has a session — and it is
// true: Sign in with single sign-on signs straight back in without the IdP asking.
func TestBrowserSignOutWarnsIdPSessionLives(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	t.Parallel()
	noSLO := regexp.MustCompile(`<SingleLogoutService [^>]*>(</SingleLogoutService>)?`)
	s := newDevSite(t, func(md string) string { return noSLO.ReplaceAllString(md, "") })
	if r := s.call(t, "GET", "/api/v1/admin/sso/connections/"+s.conn.ID, s.admin, nil); strings.Contains(string(r.Body), "slo_redirect_url") {
		t.Fatalf("the connection still has single logout: %s", r.Body)
	}
	ctx := testutil.Browser(t)
	s.signIn(t, ctx, "bob@acme.test", "bob")
	text := s.signOut(t, ctx)
	if !strings.Contains(text, "You are signed out of SSO Co.") || !strings.Contains(text, "You are still signed in at your organisation's sign-in") {
		t.Fatalf("signed-out page without single logout:\n%s", text)
	}
	if s.liveSSOSessions(t) != 0 {
		t.Fatal("the Gatehouse session survived sign-out")
	}
	s.signIn(t, ctx, "bob@acme.test", "")
}

// TestLogoutResponseNeedsOurRequest: what arrives at /slo as an answer to a LogoutRequest
// counts as a sign-out at the IdP only when it is valid and answers the request this
// browser sent; anything else lands on the signed-out page with the IdP unconfirmed.
func TestLogoutResponseNeedsOurRequest(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t)
	s := newSite(t, srv, d)
	idp := mustIdP(t, "https://idp.example/slo")
	c := s.connect(t, idp, nil)
	slo := "/sso/saml/" + c.Slug + "/slo"
	form := func(body, cookie string) *testutil.Response {
		h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
		if cookie != "" {
			h.Set("Cookie", "__Host-gatehouse-slo="+cookie)
		}
		return s.srv.Do(t, testutil.Request{Method: "POST", Host: s.host, Path: slo, Body: body, Header: h})
	}
	for name, r := range map[string]*testutil.Response{
		"garbage":          form("SAMLResponse=bm90IHNhbWw%3D", "id-1"),
		"no request":       form("SAMLResponse=bm90IHNhbWw%3D", ""),
		"redirect garbage": s.srv.Do(t, testutil.Request{Host: s.host, Path: slo + "?SAMLResponse=x&SigAlg=y&Signature=z", Header: http.Header{"Cookie": {"__Host-gatehouse-slo=id-1"}}}),
	} {
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/signed-out?idp=unconfirmed" {
			t.Errorf("%s: %d %q %s", name, r.StatusCode, r.Header.Get("Location"), r.Body)
		}
	}
	if r := form("", ""); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/signed-out" {
		t.Errorf("empty: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
}
