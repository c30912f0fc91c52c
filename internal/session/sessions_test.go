package session_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

const pw = testutil.Password

const (
	chromeMac  = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	firefoxWin = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"
	safariIOS  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)

// site is a tenant of the session tests, with the database to read the outbox and audit
// trail from.
type site struct {
	*testutil.Site
	d *testutil.DB
}

func newSite(t *testing.T, srv *testutil.Server, d *testutil.DB, edit func(*tenant.Policy)) *site {
	t.Helper()
	return &site{Site: testutil.NewSite(t, srv, "sess", testutil.SiteName("Sessions Co"), testutil.SitePolicy(edit)), d: d}
}

// login signs email in from a browser with user agent ua: the token and the session id.
func (s *site) login(t *testing.T, email, ua string) (token, id string) {
	t.Helper()
	return s.LoginSession(t, email, pw, "User-Agent", ua)
}

type view struct {
	ID      string
	Current bool
	Browser string
	OS      string
	Device  string
	IP      string
}

func (s *site) list(t *testing.T, tok string) []view {
	t.Helper()
	r := s.Do(t, "GET", "/api/v1/sessions", tok, nil)
	if r.StatusCode != 200 {
		t.Fatalf("list: %d %s", r.StatusCode, r.Body)
	}
	var b struct{ Sessions []view }
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatal(err)
	}
	return b.Sessions
}

func status(t *testing.T, r *testutil.Response, want int) {
	t.Helper()
	if r.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, want, r.Body)
	}
}

// TestListAndRevoke: two users in one tenant and one in another each see only their own
// sessions; another user's or tenant's session id answers 404; revocation takes effect at
// the next request.
func TestListAndRevoke(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	a := newSite(t, srv, d, nil)
	b := newSite(t, srv, d, nil)
	a.User(t, "ann@example.com")
	a.User(t, "ben@example.com")
	b.User(t, "ann@example.com") // the same address in another tenant: another person

	ann1, ann1ID := a.login(t, "ann@example.com", chromeMac)
	ann2, ann2ID := a.login(t, "ann@example.com", firefoxWin)
	ann3, _ := a.login(t, "ann@example.com", safariIOS)
	ben, benID := a.login(t, "ben@example.com", chromeMac)
	bAnn, bAnnID := b.login(t, "ann@example.com", chromeMac)

	list := a.list(t, ann1)
	if len(list) != 3 {
		t.Fatalf("ann sees %d sessions, want 3: %+v", len(list), list)
	}
	byID := map[string]view{}
	for _, v := range list {
		byID[v.ID] = v
	}
	if v := byID[ann1ID]; !v.Current || v.Browser != "Chrome" || v.OS != "MacOS" || v.Device != "Desktop" || v.IP != "127.0.0.1" {
		t.Fatalf("current session view: %+v", v)
	}
	if v := byID[ann2ID]; v.Current || v.Browser != "Firefox" || v.OS != "Windows" {
		t.Fatalf("other session view: %+v", v)
	}
	if _, ok := byID[benID]; ok {
		t.Fatal("ann sees ben's session")
	}
	if l := a.list(t, ben); len(l) != 1 || l[0].ID != benID {
		t.Fatalf("ben sees %+v", l)
	}
	if l := b.list(t, bAnn); len(l) != 1 || l[0].ID != bAnnID {
		t.Fatalf("ann in tenant B sees %+v", l)
	}

	// Another user's, another tenant's, and malformed ids: 404, nothing revoked.
	for _, id := range []string{benID, bAnnID, "not-a-uuid", "00000000-0000-0000-0000-000000000000"} {
		r := a.Do(t, "DELETE", "/api/v1/sessions/"+id, ann1, nil)
		if r.StatusCode != 404 || r.ErrorCode() != "not_found" {
			t.Fatalf("DELETE foreign session %s: %d %s", id, r.StatusCode, r.Body)
		}
	}
	status(t, a.Do(t, "GET", "/api/v1/session", ben, nil), 200)
	status(t, b.Do(t, "GET", "/api/v1/session", bAnn, nil), 200)

	status(t, a.Do(t, "GET", "/api/v1/session", ann2, nil), 200) // warm the cache
	status(t, a.Do(t, "DELETE", "/api/v1/sessions/"+ann2ID, ann1, nil), 204)
	status(t, a.Do(t, "GET", "/api/v1/session", ann2, nil), 401)
	status(t, a.Do(t, "DELETE", "/api/v1/sessions/"+ann2ID, ann1, nil), 404) // already ended

	r := a.Do(t, "POST", "/api/v1/sessions/revoke-others", ann1, nil)
	status(t, r, 200)
	if !strings.Contains(string(r.Body), `"revoked":1`) {
		t.Fatalf("revoke-others: %s", r.Body)
	}
	status(t, a.Do(t, "GET", "/api/v1/session", ann3, nil), 401)
	status(t, a.Do(t, "GET", "/api/v1/session", ann1, nil), 200)
	status(t, a.Do(t, "GET", "/api/v1/session", ben, nil), 200) // other users untouched

	// Ending the current session is a logout.
	status(t, a.Do(t, "DELETE", "/api/v1/sessions/"+ann1ID, ann1, nil), 204)
	status(t, a.Do(t, "GET", "/api/v1/session", ann1, nil), 401)
}

// TestExpiry: idle and absolute expiry are enforced on every check (the database clock
// decides; the sessions' timestamps are moved back instead of waiting).
func TestExpiry(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	s := newSite(t, srv, d, func(p *tenant.Policy) {
		p.Sessions.IdleTimeoutSeconds = 600
		p.Sessions.AbsoluteTimeoutSeconds = 3600
	})
	s.User(t, "exp@example.com")
	idle, idleID := s.login(t, "exp@example.com", chromeMac)
	abs, absID := s.login(t, "exp@example.com", chromeMac)
	status(t, s.Do(t, "GET", "/api/v1/session", idle, nil), 200)
	status(t, s.Do(t, "GET", "/api/v1/session", abs, nil), 200)

	ctx := context.Background()
	// Idle: no activity for 11 minutes (the 10-minute idle timeout passed).
	if _, err := d.Admin.Exec(ctx, "UPDATE sessions SET last_active_at = now() - interval '11 minutes' WHERE id = $1", idleID); err != nil {
		t.Fatal(err)
	}
	// Absolute: active a second ago, but the 1-hour lifetime is over.
	if _, err := d.Admin.Exec(ctx, "UPDATE sessions SET expires_at = now() - interval '1 second', created_at = now() - interval '61 minutes' WHERE id = $1", absID); err != nil {
		t.Fatal(err)
	}
	// Both are cached as valid by srv, whose cache trusts the deadlines it read (moving
	// timestamps back is not something time does; TestCacheHonoursDeadlines covers the
	// cache with an injected clock). A node without a cache checks the database each time.
	nocache := s.On(testutil.NewServer(t, d, testutil.WithConfig(func(c *config.Config) { c.SessionCacheSize = 0 })))
	for _, tok := range []string{idle, abs} {
		status(t, nocache.Do(t, "GET", "/api/v1/session", tok, nil), 401)
	}
	// And activity within the idle timeout keeps a session alive (last_active_at moves,
	// at most once a minute).
	live, liveID := s.login(t, "exp@example.com", chromeMac)
	if _, err := d.Admin.Exec(ctx, "UPDATE sessions SET last_active_at = now() - interval '9 minutes' WHERE id = $1", liveID); err != nil {
		t.Fatal(err)
	}
	status(t, nocache.Do(t, "GET", "/api/v1/session", live, nil), 200)
	var age time.Duration
	if err := d.Admin.QueryRow(ctx, "SELECT extract(epoch FROM now() - last_active_at)::int * interval '1 second' FROM sessions WHERE id = $1", liveID).Scan(&age); err != nil {
		t.Fatal(err)
	}
	if age > 5*time.Second {
		t.Fatalf("last_active_at not refreshed by the check (%v old)", age)
	}
}

func TestMaxSessionsEvictsOldest(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	s := newSite(t, srv, d, func(p *tenant.Policy) { p.Sessions.MaxPerUser = 2 })
	s.User(t, "max@example.com")
	first, _ := s.login(t, "max@example.com", chromeMac)
	status(t, s.Do(t, "GET", "/api/v1/session", first, nil), 200) // cached
	second, _ := s.login(t, "max@example.com", chromeMac)
	third, _ := s.login(t, "max@example.com", chromeMac)
	status(t, s.Do(t, "GET", "/api/v1/session", first, nil), 401)
	status(t, s.Do(t, "GET", "/api/v1/session", second, nil), 200)
	status(t, s.Do(t, "GET", "/api/v1/session", third, nil), 200)
}

// TestConcurrentRevocation: 50 requests in flight with one session while it is revoked;
// none that starts after the revocation committed succeeds.
func TestConcurrentRevocation(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	s := newSite(t, srv, d, nil)
	s.User(t, "race@example.com")
	victim, victimID := s.login(t, "race@example.com", chromeMac)
	admin, _ := s.login(t, "race@example.com", firefoxWin)
	status(t, s.Do(t, "GET", "/api/v1/session", victim, nil), 200)

	var committed atomic.Int64 // unix nanos when the revoking request returned
	var wg sync.WaitGroup
	var lateSuccess atomic.Int64
	start := make(chan struct{})
	for range 50 {
		wg.Go(func() {
			<-start
			for i := 0; i < 20; i++ {
				began := time.Now().UnixNano()
				r := s.Do(t, "GET", "/api/v1/session", victim, nil)
				if c := committed.Load(); c != 0 && began > c && r.StatusCode == 200 {
					lateSuccess.Add(1)
				}
				if r.StatusCode != 200 && r.StatusCode != 401 {
					t.Errorf("status %d: %s", r.StatusCode, r.Body)
				}
			}
		})
	}
	close(start)
	time.Sleep(20 * time.Millisecond)
	status(t, s.Do(t, "DELETE", "/api/v1/sessions/"+victimID, admin, nil), 204)
	committed.Store(time.Now().UnixNano())
	wg.Wait()
	if n := lateSuccess.Load(); n != 0 {
		t.Fatalf("%d requests that started after the revocation committed still succeeded", n)
	}
}

func TestPasswordChangeRevokesOthers(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	s := newSite(t, srv, d, nil)
	s.User(t, "pwc@example.com")
	keep, _ := s.login(t, "pwc@example.com", chromeMac)
	other, _ := s.login(t, "pwc@example.com", firefoxWin)
	r := s.Do(t, "POST", "/api/v1/account/password", keep, map[string]string{"current_password": "wrong one entirely", "password": "new tangerine bicycle route"})
	if r.StatusCode != 401 || r.ErrorCode() != "invalid_credentials" {
		t.Fatalf("wrong current password: %d %s", r.StatusCode, r.Body)
	}
	r = s.Do(t, "POST", "/api/v1/account/password", keep, map[string]string{"current_password": pw, "password": "new tangerine bicycle route"})
	status(t, r, 200)
	status(t, s.Do(t, "GET", "/api/v1/session", keep, nil), 200)
	status(t, s.Do(t, "GET", "/api/v1/session", other, nil), 401)
	srv.WaitMail(t, "pwc@example.com", "password was changed")
}

// TestNewDeviceNotice: the first sign-in from a new browser/OS sends a notice whose
// "wasn't you?" link ends every session and starts a reset; the same device again does not;
// tenants can turn it off.
func TestNewDeviceNotice(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	s := newSite(t, srv, d, nil)
	s.User(t, "dev@example.com")
	first, _ := s.login(t, "dev@example.com", chromeMac) // first device ever: nothing to compare with
	s.login(t, "dev@example.com", chromeMac)
	s.login(t, "dev@example.com", firefoxWin)
	m := srv.WaitMail(t, "dev@example.com", "New sign-in to Sessions Co from Firefox on Windows")
	if !strings.Contains(m.Text, "IP address 127.0.0.1") {
		t.Fatalf("notice: %s", m.Text)
	}
	// Each login answers after its transaction committed, and the notice is enqueued in
	// it: the outbox and the audit trail now hold everything these logins will ever send.
	if diff := cmp.Diff([]bool{false, false, true}, s.loginsOnNewDevice(t)); diff != "" {
		t.Fatalf("logins recorded as on a new device (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]testutil.QueuedMail{{Template: mail.TplNewDevice, To: "dev@example.com", Jobs: 1}}, s.d.QueuedMails(t, s.Tenant.ID)); diff != "" {
		t.Fatalf("mails queued, want exactly one notice: known devices must not trigger one (-want +got):\n%s", diff)
	}
	tok := testutil.TokenFrom(t, m, "/account/secure")
	page := s.Page(t, "/account/secure?token="+tok)
	if page.StatusCode != 200 || !strings.Contains(string(page.Body), "Sign out everywhere") {
		t.Fatalf("secure page: %d", page.StatusCode)
	}
	status(t, s.Do(t, "POST", "/api/v1/account/secure", "", map[string]string{"token": tok}), 200)
	status(t, s.Do(t, "GET", "/api/v1/session", first, nil), 401)
	srv.WaitMail(t, "dev@example.com", "Reset your")
	status(t, s.Do(t, "POST", "/api/v1/account/secure", "", map[string]string{"token": tok}), 409) // token_used: the link says what happened (issue 16)

	off := newSite(t, srv, d, func(p *tenant.Policy) { p.Sessions.NewDeviceNotice = false })
	off.User(t, "quiet@example.com")
	off.login(t, "quiet@example.com", chromeMac)
	off.login(t, "quiet@example.com", firefoxWin)
	if diff := cmp.Diff([]bool{false, true}, off.loginsOnNewDevice(t)); diff != "" {
		t.Fatalf("logins recorded as on a new device (-want +got):\n%s", diff)
	}
	if got := off.d.QueuedMails(t, off.Tenant.ID); len(got) != 0 {
		t.Fatalf("notice queued although the tenant turned it off: %+v", got)
	}
}

// loginsOnNewDevice returns, for each login of the tenant in order, whether the login's
// transaction found the device new (the session.login audit event records it).
func (s *site) loginsOnNewDevice(t *testing.T) []bool {
	t.Helper()
	rows, err := s.d.Admin.Query(context.Background(), `
		SELECT (details->>'new_device')::boolean FROM audit_events
		WHERE tenant_id = $1 AND action = $2 ORDER BY occurred_at, id`, s.Tenant.ID, audit.SessionLogin)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[bool])
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestSessionsPage: the page lists the caller's own session first and marked, although
// another session was active more recently; signing another session out comes back to
// the list with a notice (a GET: reloading does not post again); signing this device out
// from the list is a sign-out.
func TestSessionsPage(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	s := newSite(t, srv, d, nil)
	s.User(t, "page@example.com")
	tok, ownID := s.login(t, "page@example.com", chromeMac)
	_, otherID := s.login(t, "page@example.com", firefoxWin)
	// The other session was active after this one (within the minute in which activity
	// is not written again, so viewing the page does not change the order by itself).
	if _, err := d.Admin.Exec(context.Background(), "UPDATE sessions SET last_active_at = now() - interval '30 seconds' WHERE id = $1", ownID); err != nil {
		t.Fatal(err)
	}
	if l := s.list(t, tok); len(l) != 2 || l[0].ID != ownID || !l[0].Current {
		t.Fatalf("GET /api/v1/sessions does not list the caller's session first: %+v", l)
	}
	cookie := "__Host-gatehouse=" + tok
	r := s.Page(t, "/sessions", "Cookie", cookie)
	body := string(r.Body)
	for _, want := range []string{"Where you&#39;re signed in", "Chrome on MacOS", "Firefox on Windows", "This device", "just now", "/sessions/" + otherID + "/revoke"} {
		if !strings.Contains(body, want) {
			t.Fatalf("sessions page lacks %q:\n%s", want, body)
		}
	}
	own, other := strings.Index(body, `data-session="`+ownID+`"`), strings.Index(body, `data-session="`+otherID+`"`)
	if own < 0 || other < 0 || own > other || !strings.Contains(body, `class="session current" data-session="`+ownID+`" aria-current="true"`) {
		t.Fatalf("this device is not first and marked (own at %d, other at %d):\n%s", own, other, body)
	}
	if strings.Contains(body, "/sessions/"+ownID+"/revoke") {
		t.Fatal("this device's Sign out should be the ordinary sign-out (/logout)")
	}
	r = s.Form(t, "/sessions/"+otherID+"/revoke", nil, "Cookie", cookie)
	if r.StatusCode != 303 || r.Header.Get("Location") != "/sessions?revoked=1" {
		t.Fatalf("revoke form: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	if l := s.list(t, tok); len(l) != 1 {
		t.Fatalf("%d sessions after signing out the other", len(l))
	}
	r = s.Page(t, "/sessions?revoked=1", "Cookie", cookie)
	if !strings.Contains(string(r.Body), `id="sessions-notice">Signed out of that session.`) {
		t.Fatalf("no notice after signing a session out:\n%s", r.Body)
	}
	// Signing this device out from the list ends up where signing out does.
	r = s.Form(t, "/sessions/"+ownID+"/revoke", nil, "Cookie", cookie)
	if r.StatusCode != 303 || r.Header.Get("Location") != "/signed-out" {
		t.Fatalf("revoking this device: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	status(t, s.Do(t, "GET", "/api/v1/session", tok, nil), 401)
}
