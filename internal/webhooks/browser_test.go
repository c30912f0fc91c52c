package webhooks_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-id/gatehouse/internal/events"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestBrowserWebhooksPage: in Chromium, an owner creates an endpoint on the Webhooks page
// and reads its whsec_ secret once, sends a test event that a real receiver verifies and
// sees it delivered (with its status) in the deliveries log, sees a failed delivery (410:
// the endpoint is disabled), enables the endpoint and retries that delivery, rotates the
// secret (the next test carries both signatures), disables and deletes the endpoint.
func TestBrowserWebhooksPage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	t.Parallel()
	srv := testutil.NewServer(t, testutil.FreshDB(t), testutil.WithConfig(fast))
	site := testutil.NewSite(t, srv, "portalhooks")
	site.User(t, "owner@acme.example", "owner")
	rc := newReceiver(t)
	ctx := testutil.Browser(t)
	origin := fmt.Sprintf("http://%s:%d", site.Host, srv.Port)
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
	text := func(sel string) string {
		return js(`(document.querySelector("` + sel + `") || {innerText: ""}).innerText.trim()`)
	}
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			fail(step, err)
		}
	}
	// submit clicks a form's button on the endpoint's page and waits for the page it
	// redirects to (its query says which), so that no later navigation cuts it short.
	submit := func(step, sel, query string) {
		t.Helper()
		do(step, chromedp.Click(sel))
		for deadline := time.Now().Add(20 * time.Second); js(`location.search`) != query || text("#webhook-state") == ""; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				fail(step, fmt.Errorf("no redirect to %s: at %s", query, js(`location.href`)))
			}
		}
	}
	// until reloads the endpoint's page until the deliveries log satisfies ok.
	var page string
	until := func(what string, ok func(log string) bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			do("reload "+what, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("webhook-state")))
			if ok(text("#deliveries")) {
				return
			}
			if time.Now().After(deadline) {
				fail(what, fmt.Errorf("deliveries log: %q", text("#deliveries")))
			}
		}
	}

	do("sign in to /admin/webhooks",
		chromedp.Navigate(origin+"/login?return_to=%2Fadmin%2Fwebhooks"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "owner@acme.example"),
		chromedp.SendKeys(chromedp.ID("password"), testutil.Password),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("new-webhook")))
	if cur := js(`document.querySelector("nav.adminnav a[aria-current=page]").textContent`); cur != "Webhooks" {
		t.Errorf("current section %q", cur)
	}
	do("create the endpoint",
		chromedp.SendKeys(`#new-webhook input[name=url]`, rc.URL()),
		chromedp.SendKeys(`#new-webhook input[name=description]`, "the app"),
		chromedp.Click(`#new-webhook button[type=submit]`),
		chromedp.WaitVisible(chromedp.ID("webhook-secret")))
	secret := text("#webhook-secret")
	if !strings.HasPrefix(secret, "whsec_") || !strings.Contains(text("#secret-warning"), "will not be shown again") || strings.Contains(js(`location.href`), secret) {
		t.Fatalf("secret page: %q, warning %q, URL %s", secret, text("#secret-warning"), js(`location.href`))
	}
	rc.trust("first", secret)
	do("leave the secret page", chromedp.Click(chromedp.ID("secret-done")), chromedp.WaitVisible(chromedp.ID("send-test")))
	page = js(`location.href`)
	if strings.Contains(js(`document.documentElement.outerHTML`), secret) {
		t.Fatal("the endpoint's page shows the secret again")
	}

	// A test event, verified by the receiver, delivered in the log with its status.
	submit("send a test event", "#send-test", "?tested=1")
	rc.waitFor("the test event", 20*time.Second, func(ds []delivery) bool { return len(ofType(ds, events.WebhookTest)) == 1 })
	until("the delivered test", func(log string) bool {
		return strings.Contains(log, "webhook.test") && strings.Contains(log, "delivered") && strings.Contains(log, "204")
	})

	// A failed delivery: the receiver answers 410, which fails it and disables the endpoint.
	rc.setStatus(http.StatusGone)
	submit("send a test event to fail", "#send-test", "?tested=1")
	// The delivery is recorded failed, then the endpoint disabled, in two transactions.
	until("the failed test and the endpoint disabled", func(log string) bool {
		return strings.Contains(log, "failed") && strings.Contains(log, "410") && strings.HasPrefix(text("#webhook-state"), "Disabled")
	})
	rc.setStatus(0)
	do("tick enabled", chromedp.Click(`#webhook-settings input[name=enabled]`))
	submit("enable the endpoint again", `#webhook-settings button[type=submit]`, "?saved=1")
	if state := text("#webhook-state"); !strings.HasPrefix(state, "Enabled") {
		t.Fatalf("state after enabling: %q", state)
	}
	submit("retry the failed delivery", `#deliveries form button`, "?retried=1")
	rc.waitFor("the retried test event", 20*time.Second, func(ds []delivery) bool { return len(ofType(ds, events.WebhookTest)) == 2 })
	until("the retried delivery", func(log string) bool { return !strings.Contains(log, "failed") && strings.Count(log, "delivered") == 2 })

	// Rotation: the new secret once; the next delivery is signed by both.
	do("rotate the secret", chromedp.Click(chromedp.ID("rotate-secret")), chromedp.WaitVisible(chromedp.ID("secret-overlap")))
	rotated := text("#webhook-secret")
	if !strings.HasPrefix(rotated, "whsec_") || rotated == secret {
		t.Fatalf("rotated secret %q", rotated)
	}
	rc.trust("second", rotated)
	do("back to the endpoint", chromedp.Click(chromedp.ID("secret-done")), chromedp.WaitVisible(chromedp.ID("send-test")))
	if !strings.Contains(text("#webhook-state"), "The previous secret signs too until") {
		t.Errorf("state after rotation: %q", text("#webhook-state"))
	}
	submit("send a test event after the rotation", "#send-test", "?tested=1")
	got := rc.waitFor("the test after rotation", 20*time.Second, func(ds []delivery) bool { return len(ofType(ds, events.WebhookTest)) == 3 })
	if last := ofType(got, events.WebhookTest)[2]; last.Sigs != 2 || !slices.Contains(last.Verified, "first") || !slices.Contains(last.Verified, "second") {
		t.Fatalf("after rotation: %d signatures, verified by %v", last.Sigs, last.Verified)
	}

	// Disable, then delete.
	do("untick enabled", chromedp.Click(`#webhook-settings input[name=enabled]`))
	submit("disable the endpoint", `#webhook-settings button[type=submit]`, "?saved=1")
	if state := text("#webhook-state"); !strings.HasPrefix(state, "Disabled") {
		t.Fatalf("state after disabling: %q", state)
	}
	do("delete the endpoint", chromedp.Click(chromedp.ID("delete-webhook")), chromedp.WaitVisible(chromedp.ID("new-webhook")))
	if body := text("main"); !strings.Contains(body, "The endpoint was deleted.") || !strings.Contains(body, "No endpoint yet.") {
		t.Fatalf("list after delete: %q", body)
	}
	if bad := rc.refused(); len(bad) != 0 {
		t.Fatalf("the receiver refused deliveries: %v", bad)
	}
}
