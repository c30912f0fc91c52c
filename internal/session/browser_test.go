package session_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestBrowserSignOutOtherDevice: two browsers sign in as one user; the first sees both
// sessions, its own first and marked, signs the other out and is told so; the second is
// signed out at its next request; the first then signs itself out from the list and
// lands on the signed-out page.
func TestBrowserSignOutOtherDevice(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	s := newSite(t, srv, d, nil)
	s.User(t, "two@example.com")
	base := fmt.Sprintf("http://%s:%d", s.Host, srv.Port)
	first, second := testutil.Browser(t), testutil.Browser(t)

	login := func(name string) {
		t.Helper()
		ctx := first
		if name == "second" {
			ctx = second
		}
		err := chromedp.Do(ctx,
			chromedp.Navigate(base+"/login"),
			chromedp.WaitVisible(chromedp.ID("email")),
			chromedp.SendKeys(chromedp.ID("email"), "two@example.com"),
			chromedp.SendKeys(chromedp.ID("password"), pw),
			chromedp.Submit(chromedp.ID("password")),
			chromedp.WaitVisible(chromedp.ID("current-email")),
		)
		if err != nil {
			t.Fatalf("%s browser sign-in: %v", name, err)
		}
	}
	login("first")
	login("second")

	err := chromedp.Do(first,
		chromedp.Navigate(base+"/sessions"),
		chromedp.WaitVisible(chromedp.CSS(".session")),
	)
	if err != nil {
		t.Fatalf("sessions page: %v", err)
	}
	text, err := chromedp.Run(first, chromedp.Text(chromedp.CSS(".sessions")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(text, "Sign out") != 2 || !strings.Contains(text, "This device") {
		t.Fatalf("first browser sees:\n%s", text)
	}
	// The second browser signed in last, yet the first sees itself at the top.
	firstRow, err := chromedp.Run(first, chromedp.Text(chromedp.CSS(".session:first-child")))
	if err != nil || !strings.Contains(firstRow, "This device") {
		t.Fatalf("first row is not this device: %q %v", firstRow, err)
	}
	// Sign out the session that is not "this device".
	err = chromedp.Do(first,
		chromedp.Click(chromedp.CSS(`.session:not(.current) button`)),
		chromedp.WaitVisible(chromedp.ID("sessions-notice")),
	)
	if err != nil {
		t.Fatalf("sign out the other session: %v", err)
	}
	// The click posts and the page reloads: wait for the new list, not the old one.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		text, err = chromedp.Run(first, chromedp.Text(chromedp.CSS(".sessions")))
		if err == nil && strings.Count(text, "Sign out") == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after signing out the other: %q %v", text, err)
		}
	}
	// The second browser's next request lands on the sign-in page.
	err = chromedp.Do(second,
		chromedp.Navigate(base+"/account"),
		chromedp.WaitVisible(chromedp.ID("password")),
	)
	if err != nil {
		t.Fatalf("second browser after being signed out: %v", err)
	}
	loc, err := chromedp.Run(second, chromedp.Location())
	if err != nil || !strings.Contains(loc, "/login") {
		t.Fatalf("second browser is at %q (%v), want the sign-in page", loc, err)
	}
	notice, err := chromedp.Run(first, chromedp.Text(chromedp.ID("sessions-notice")))
	if err != nil || !strings.Contains(notice, "Signed out of that session") {
		t.Fatalf("notice after signing out the other: %q %v", notice, err)
	}
	// The first is still signed in.
	if err := chromedp.Do(first, chromedp.Navigate(base+"/account"), chromedp.WaitVisible(chromedp.ID("current-email"))); err != nil {
		t.Fatalf("first browser lost its session: %v", err)
	}
	// Signing this device out from the list is a sign-out.
	err = chromedp.Do(first,
		chromedp.Navigate(base+"/sessions"),
		chromedp.Click(chromedp.CSS(`.session.current button`)),
		chromedp.WaitVisible(chromedp.ID("signed-out")),
	)
	if err != nil {
		t.Fatalf("sign this device out: %v", err)
	}
	if text, err = chromedp.Run(first, chromedp.Text(chromedp.CSS("main"))); err != nil || !strings.Contains(text, "You are signed out of Sessions Co") || strings.Contains(text, "organisation") {
		t.Fatalf("signed-out page: %q %v", text, err)
	}
}
