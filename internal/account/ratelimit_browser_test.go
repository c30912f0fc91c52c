package account_test

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestBrowserRateLimitSaysWhenToRetry (issue 16 item 15): once an address has used up its
// sign-ins for the minute, the answer (JSON, form, and the page in Chromium) says in words
// when to try again, with the same wait as Retry-After.
func TestBrowserRateLimitSaysWhenToRetry(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	t.Parallel()
	e := newEnv(t, nil)
	// The browser and these requests share the address 127.0.0.1 (no X-Forwarded-For).
	var r *testutil.Response
	for i := range 60 {
		r = e.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": fmt.Sprintf("u%d@example.com", i), "password": "not the password at all"})
		if r.StatusCode == 429 {
			break
		}
	}
	e.expect(t, r, 429, "rate_limited")
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || secs < 1 || secs > 60 {
		t.Fatalf("Retry-After %q, want at most a minute", r.Header.Get("Retry-After"))
	}
	var body struct {
		Error struct {
			Message string
			Details struct {
				RetryAfterSeconds int `json:"retry_after_seconds"`
			}
		}
	}
	r.JSON(t, &body)
	if body.Error.Message != "Too many attempts. Try again in "+ratelimit.Wait(secs)+"." || body.Error.Details.RetryAfterSeconds != secs {
		t.Fatalf("JSON 429 (Retry-After %d): %s", secs, r.Body)
	}
	// The page form answers 429 with the header and the words.
	r = e.Form(t, "/login", url.Values{"email": {"page@example.com"}, "password": {"not the password at all"}})
	secs, _ = strconv.Atoi(r.Header.Get("Retry-After"))
	if r.StatusCode != 429 || secs == 0 || !strings.Contains(string(r.Body), "Try again in "+ratelimit.Wait(secs)+".") {
		t.Fatalf("login form: %d (Retry-After %q)\n%s", r.StatusCode, r.Header.Get("Retry-After"), r.Body)
	}

	ctx := testutil.Browser(t)
	err = chromedp.Do(ctx,
		chromedp.Navigate(fmt.Sprintf("http://%s:%d/login", e.Host, e.Srv.Port)),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "browser@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), "not the password at all"),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.CSS(`p[role=alert]`)),
	)
	if err != nil {
		t.Fatalf("login page: %v", err)
	}
	alert, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`p[role=alert]`)))
	if err != nil || !regexp.MustCompile(`^Too many attempts\. Try again in ([1-9][0-9]? seconds?|1 minute)\.$`).MatchString(alert) {
		t.Fatalf("the page says %q (%v)", alert, err)
	}
}
