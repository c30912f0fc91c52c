package oidcop_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// secretWorks tells whether the token endpoint's client authentication (on introspection)
// takes clientID and secret.
func (e *env) secretWorks(t *testing.T, clientID, secret string) bool {
	t.Helper()
	resp, b := e.post(t, "/oauth2/introspect", clientID, secret, url.Values{"token": {"not-a-token"}})
	switch resp.StatusCode {
	case http.StatusOK:
		return true
	case http.StatusUnauthorized, http.StatusBadRequest:
		return false
	}
	t.Fatalf("introspect: %d %s", resp.StatusCode, b)
	return false
}

type apiApp struct {
	ID           string   `json:"id"`
	ClientID     string   `json:"client_id"`
	Name         string   `json:"name"`
	RedirectURIs []string `json:"redirect_uris"`
	FirstParty   bool     `json:"first_party"`
}

// apps lists the tenant's apps through the admin API.
func (e *env) apps(t *testing.T, token string) []apiApp {
	t.Helper()
	r := e.Do(t, http.MethodGet, "/api/v1/admin/apps", token, nil)
	var out struct{ Apps []apiApp }
	if r.StatusCode != http.StatusOK || json.Unmarshal([]byte(r.Body), &out) != nil {
		t.Fatalf("list apps: %d %s", r.StatusCode, r.Body)
	}
	return out.Apps
}

// TestBrowserAppsPortal: in Chromium, an owner opens Applications (issuer and discovery
// URL shown with copy buttons, the issuer being the one discovery answers), creates a
// confidential app and reads its secret once (the secret works; reloading the answer
// creates nothing and shows no secret; the app's page never shows it), edits its redirect
// URIs (a bad URI is refused beside the field with the text kept, and nothing changes),
// rotates the secret (new one shown once, both work during the overlap), and deletes the
// app through the confirmation step (a wrong name is refused beside the field); the
// client is then refused.
func TestBrowserAppsPortal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	t.Parallel()
	srv := testutil.NewServer(t, testutil.PackageDB(t))
	e := newEnv(t, srv, "portalapps")
	e.User(t, "owner@acme.example", "owner")
	_, api := e.Person(t, "api-owner@acme.example", "owner")
	ctx := testutil.Browser(t)
	snap := func(name string) {
		if dir := os.Getenv("GATEHOUSE_SCREENSHOTS"); dir != "" {
			if img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
				_ = os.WriteFile(filepath.Join(dir, name+".png"), img, 0o644)
			}
		}
	}
	fail := func(step string, err error) {
		t.Helper()
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
		t.Fatalf("%s: %v\n%s", step, err, html)
	}
	js := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			fail("evaluate "+expr, err)
		}
		return v
	}
	text := func(sel string) string { return js(`document.querySelector("` + sel + `").innerText.trim()`) }
	body := func() string { return js(`document.documentElement.outerHTML`) }

	err := chromedp.Do(ctx,
		chromedp.Navigate(e.issuer+"/login?return_to=%2Fadmin%2Fapps"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "owner@acme.example"),
		chromedp.SendKeys(chromedp.ID("password"), testutil.Password),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("app-new")),
	)
	if err != nil {
		fail("owner sign-in to /admin/apps", err)
	}
	if cur := js(`document.querySelector("nav.adminnav a[aria-current=page]").textContent`); cur != "Applications" {
		t.Errorf("current section %q, want Applications", cur)
	}
	var disc struct{ Issuer string }
	resp, err := e.hc.Get(e.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&disc)
	resp.Body.Close()
	if got := text("#apps-issuer"); got != e.issuer || got != disc.Issuer {
		t.Errorf("issuer shown %q, want %q (discovery says %q)", got, e.issuer, disc.Issuer)
	}
	if got := text("#apps-discovery"); got != e.issuer+"/.well-known/openid-configuration" {
		t.Errorf("discovery URL shown %q", got)
	}
	if n := js(`String([...document.querySelectorAll(".connect [data-copy]")].filter(b => !b.hidden).length)`); n != "2" {
		t.Errorf("%s visible copy buttons in the connect box, want 2", n)
	}

	// Create: the secret is on the page that answers the POST, once.
	const cb = "https://crm.acme.example/callback"
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("n-name"), "Acme CRM"),
		chromedp.SetValue(chromedp.ID("n-redirect"), cb),
		chromedp.Click(chromedp.ID("n-first")),
		chromedp.Click(chromedp.ID("app-create")),
		chromedp.WaitVisible(chromedp.ID("client-secret")),
	)
	if err != nil {
		fail("create app", err)
	}
	secret, clientID := text("#client-secret"), text("#secret-client-id")
	if !strings.HasPrefix(secret, "ghs_") || !strings.HasPrefix(clientID, "app_") {
		t.Fatalf("secret %q, client id %q", secret, clientID)
	}
	if w := text("#secret-warning"); !strings.Contains(w, "will not be shown again") {
		t.Errorf("warning %q", w)
	}
	if js(`document.querySelector("#copy-secret").hidden ? "hidden" : document.querySelector("#copy-secret").dataset.copy`) != secret {
		t.Error("the secret's copy button is hidden or copies something else")
	}
	if u := js(`location.href`); strings.Contains(u, secret) || !strings.HasSuffix(u, "/admin/apps") {
		t.Errorf("secret page at %s", u)
	}
	if !e.secretWorks(t, clientID, secret) {
		t.Fatal("the secret shown does not authenticate the client")
	}
	list := e.apps(t, api)
	if len(list) != 1 || list[0].ClientID != clientID || !list[0].FirstParty || len(list[0].RedirectURIs) != 1 || list[0].RedirectURIs[0] != cb {
		t.Fatalf("apps after create: %+v", list)
	}
	appURL := e.issuer + "/admin/apps/" + list[0].ID

	// Reloading the answer submits the form again: nothing is created, no secret shown.
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err = chromedp.Do(rctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("app-notice")))
	cancel()
	if err != nil {
		fail("reload the secret page", err)
	}
	if strings.Contains(body(), secret) {
		t.Error("a reload shows the secret again")
	}
	if n := text("#app-notice"); !strings.Contains(n, "not shown again") {
		t.Errorf("notice after reload %q", n)
	}
	if n := len(e.apps(t, api)); n != 1 {
		t.Errorf("%d apps after reloading the secret page, want 1", n)
	}

	// The app's page: identifiers, never the secret.
	if err := chromedp.Do(ctx, chromedp.Navigate(appURL), chromedp.WaitVisible(chromedp.ID("app-settings"))); err != nil {
		fail("app page", err)
	}
	if strings.Contains(body(), secret) {
		t.Error("the app's page shows the secret")
	}
	if got := text("#app-client-id"); got != clientID {
		t.Errorf("client id %q on the app page", got)
	}

	// Edit the redirect URIs.
	const cb2 = "https://crm.acme.example/auth/done"
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("e-redirect"), cb+"\n"+cb2+"\n"),
		chromedp.Click(chromedp.ID("app-save")),
		chromedp.WaitVisible(chromedp.ID("app-notice")),
	)
	if err != nil {
		fail("save redirect URIs", err)
	}
	if n := text("#app-notice"); !strings.HasPrefix(n, "Saved.") {
		t.Errorf("notice after saving %q", n)
	}
	if got := js(`document.querySelector("#e-redirect").value`); got != cb+"\n"+cb2 {
		t.Errorf("redirect URIs after saving %q", got)
	}
	snap("admin-app")

	// The list shows the app.
	if err := chromedp.Do(ctx, chromedp.Navigate(e.issuer+"/admin/apps"), chromedp.WaitVisible(chromedp.ID("apps-list"))); err != nil {
		fail("list", err)
	}
	if row := text("#apps-list tbody tr"); !strings.Contains(row, "Acme CRM") || !strings.Contains(row, clientID) ||
		!strings.Contains(row, "confidential") || !strings.Contains(row, cb2) {
		t.Errorf("list row %q", row)
	}
	snap("admin-apps")
	if err := chromedp.Do(ctx, chromedp.Navigate(appURL), chromedp.WaitVisible(chromedp.ID("app-settings"))); err != nil {
		fail("app page", err)
	}

	// A bad redirect URI: refused beside the field, what was typed kept, nothing changed.
	bad := cb + "\nhttp://crm.acme.example/insecure"
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("e-redirect"), bad),
		chromedp.Click(chromedp.ID("app-save")),
		chromedp.WaitVisible(chromedp.ID("e-redirect-error")),
	)
	if err != nil {
		fail("save a bad redirect URI", err)
	}
	if msg := text("#e-redirect-error"); !strings.Contains(msg, "https") {
		t.Errorf("field error %q", msg)
	}
	if got := js(`document.querySelector("#e-redirect").value`); got != bad {
		t.Errorf("typed text not kept: %q", got)
	}
	if js(`document.querySelector("#e-redirect").getAttribute("aria-invalid")`) != "true" {
		t.Error("the redirect URIs field is not marked invalid")
	}
	if got := e.apps(t, api)[0].RedirectURIs; len(got) != 2 || got[1] != cb2 {
		t.Errorf("redirect URIs after a refused save: %v", got)
	}

	// Rotate: the new secret once; the old one works during the overlap.
	err = chromedp.Do(ctx,
		chromedp.Navigate(appURL),
		chromedp.WaitVisible(chromedp.ID("app-rotate")),
		chromedp.Click(chromedp.ID("app-rotate")),
		chromedp.WaitVisible(chromedp.ID("client-secret")),
	)
	if err != nil {
		fail("rotate", err)
	}
	secret2 := text("#client-secret")
	if secret2 == secret || !strings.HasPrefix(secret2, "ghs_") {
		t.Fatalf("rotated secret %q", secret2)
	}
	if o := text("#secret-overlap"); !strings.Contains(o, "24 hours") || !strings.Contains(o, "UTC") {
		t.Errorf("overlap text %q", o)
	}
	if !e.secretWorks(t, clientID, secret2) || !e.secretWorks(t, clientID, secret) {
		t.Error("after rotation the new and the previous secret must both work")
	}
	rctx, cancel = context.WithTimeout(ctx, 15*time.Second)
	err = chromedp.Do(rctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("app-notice")))
	cancel()
	if err != nil {
		fail("reload the rotated secret page", err)
	}
	if b := body(); strings.Contains(b, secret2) || strings.Contains(b, secret) {
		t.Error("a reload after rotation shows a secret")
	}
	if !e.secretWorks(t, clientID, secret2) {
		t.Error("a reload of the rotation rotated again")
	}
	if n := text("#app-notice"); !strings.HasPrefix(n, "Nothing was rotated") {
		t.Errorf("notice after reloading the rotation %q", n)
	}
	if w := text("#app-previous-secret"); !strings.Contains(w, "previous secret still works") {
		t.Errorf("previous secret line %q", w)
	}

	// Delete, through the confirmation.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("app-delete")),
		chromedp.WaitVisible(chromedp.ID("app-delete-confirm")),
		chromedp.SendKeys(chromedp.ID("app-delete-confirm"), "Acme"),
		chromedp.Click(chromedp.ID("app-delete-confirmed")),
		chromedp.WaitVisible(chromedp.ID("app-delete-error")),
	)
	if err != nil {
		fail("delete with a wrong name", err)
	}
	if n := len(e.apps(t, api)); n != 1 {
		t.Fatalf("%d apps after a wrong confirmation", n)
	}
	if js(`document.querySelector("#app-delete-confirmed").className`) != "danger" {
		t.Error("the delete button is not button.danger")
	}
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("app-delete-confirm"), "Acme CRM"),
		chromedp.Click(chromedp.ID("app-delete-confirmed")),
		chromedp.WaitVisible(chromedp.ID("apps-deleted")),
	)
	if err != nil {
		fail("delete", err)
	}
	if n := len(e.apps(t, api)); n != 0 {
		t.Errorf("%d apps after deleting", n)
	}
	if e.secretWorks(t, clientID, secret2) {
		t.Error("a deleted app's client still authenticates")
	}
}

// TestAppPagesPermissionAndStepUp: the Applications pages are for holders of apps.manage
// only, and every write through them asks for the apps.manage step-up: with a session
// older than the rule allows, create, save, rotate and delete send the browser to
// /reauth and change nothing.
func TestAppPagesPermissionAndStepUp(t *testing.T) {
	t.Parallel()
	clk := testutil.NewClock()
	srv := testutil.NewServer(t, testutil.PackageDB(t), testutil.WithClock(clk))
	e := newEnv(t, srv, "appsgate")
	_, member := e.Person(t, "member@acme.example", "member")
	_, owner := e.Person(t, "owner@acme.example", "owner")
	cookie := func(tok string) []string { return []string{"Cookie", "__Host-gatehouse=" + tok} }
	form := url.Values{"name": {"Acme CRM"}, "type": {"confidential"}, "redirect_uris": {"https://crm.acme.example/cb"},
		"grant_types": {"authorization_code"}, "allowed_scopes": {"openid"}, "access_token_minutes": {"5"}, "refresh_token_days": {"30"}}

	if r := e.Page(t, "/admin/apps", cookie(member)...); r.StatusCode != http.StatusForbidden {
		t.Errorf("member GET /admin/apps: %d, want 403", r.StatusCode)
	}
	if r := e.Form(t, "/admin/apps", form, cookie(member)...); r.StatusCode != http.StatusForbidden {
		t.Errorf("member POST /admin/apps: %d, want 403", r.StatusCode)
	}
	if r := e.Page(t, "/admin/apps"); r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login?") {
		t.Errorf("signed-out GET /admin/apps: %d %s, want the sign-in page", r.StatusCode, r.Header.Get("Location"))
	}
	if n := len(e.apps(t, owner)); n != 0 {
		t.Fatalf("%d apps after the member's attempt", n)
	}
	// A fresh owner session creates through the page (the secret page answers the POST).
	r := e.Form(t, "/admin/apps", form, cookie(owner)...)
	if r.StatusCode != http.StatusCreated || !strings.Contains(string(r.Body), `id="client-secret"`) {
		t.Fatalf("owner POST /admin/apps: %d %s", r.StatusCode, r.Body)
	}
	list := e.apps(t, owner)
	if len(list) != 1 {
		t.Fatalf("apps: %+v", list)
	}
	id := list[0].ID
	// A public app has no secret: its page, with a notice, follows the POST.
	pub := url.Values{}
	for k, v := range form {
		pub[k] = v
	}
	pub.Set("name", "Acme SPA")
	pub.Set("type", "public")
	if r := e.Form(t, "/admin/apps", pub, cookie(owner)...); r.StatusCode != http.StatusSeeOther ||
		!strings.HasPrefix(r.Header.Get("Location"), "/admin/apps/") || !strings.HasSuffix(r.Header.Get("Location"), "?created=1") {
		t.Errorf("public app: %d %s, want its page", r.StatusCode, r.Header.Get("Location"))
	} else if p := e.Page(t, r.Header.Get("Location"), cookie(owner)...); !strings.Contains(string(p.Body), "no secret") ||
		strings.Contains(string(p.Body), "app-rotate") {
		t.Errorf("public app page: %d %s", p.StatusCode, p.Body)
	}
	// No scope ticked: refused beside the scopes, never a 500.
	noScopes := url.Values{}
	for k, v := range form {
		noScopes[k] = v
	}
	noScopes.Set("name", "Scopeless")
	noScopes.Del("allowed_scopes")
	if r := e.Form(t, "/admin/apps", noScopes, cookie(owner)...); r.StatusCode != http.StatusBadRequest || !strings.Contains(string(r.Body), `id="n-scopes-error"`) {
		t.Errorf("no scopes: %d, want 400 with #n-scopes-error", r.StatusCode)
	}
	if r := e.Do(t, http.MethodPost, "/api/v1/admin/apps", owner, map[string]any{"name": "Scopeless", "redirect_uris": []string{"https://x.example/cb"},
		"allowed_scopes": []string{}}); r.StatusCode != http.StatusBadRequest || r.ErrorCode() != "invalid_app" {
		t.Errorf("API, no scopes: %d %s, want 400 invalid_app", r.StatusCode, r.Body)
	}
	// Bad values: 400 with the error beside its field, never a 500.
	for field, want := range map[string]string{"refresh_token_days": "n-rt-error", "access_token_minutes": "n-at-error",
		"type": "n-type-error", "grant_types": "n-grants-error", "backchannel_logout_uri": "n-bcl-error", "name": "n-name-error"} {
		bad := url.Values{}
		for k, v := range form {
			bad[k] = v
		}
		bad.Set("name", "Another")
		bad.Set(field, map[string]string{"refresh_token_days": "soon", "access_token_minutes": "99999", "type": "secret-ish",
			"grant_types": "implicit", "backchannel_logout_uri": "ftp://x", "name": " "}[field])
		r := e.Form(t, "/admin/apps", bad, cookie(owner)...)
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(r.Body), `id="`+want+`"`) {
			t.Errorf("bad %s: %d, want 400 with #%s\n%s", field, r.StatusCode, want, r.Body)
		}
	}

	clk.Advance(10 * time.Minute) // past the default apps.manage rule (5 minutes)
	edited := url.Values{}
	for k, v := range form {
		edited[k] = v
	}
	edited.Set("name", "Renamed")
	page := e.Page(t, "/admin/apps/"+id, cookie(owner)...)
	if page.StatusCode != http.StatusOK {
		t.Fatalf("app page: %d", page.StatusCode)
	}
	for _, w := range []struct {
		path string
		v    url.Values
	}{
		{"/admin/apps", form},
		{"/admin/apps/" + id, edited},
		{"/admin/apps/" + id + "/secret", url.Values{"version": {"any"}}},
		{"/admin/apps/" + id + "/delete", url.Values{"confirm": {"Acme CRM"}}},
	} {
		r := e.Form(t, w.path, w.v, cookie(owner)...)
		if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/reauth?") {
			t.Errorf("POST %s with an old session: %d %s, want a redirect to /reauth", w.path, r.StatusCode, r.Header.Get("Location"))
		}
	}
	if got := e.apps(t, owner); len(got) != 2 || got[0].Name != "Acme CRM" {
		t.Errorf("apps after refused writes: %+v", got)
	}
}
