package authz_test

import (
	"context"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

const pw = testutil.Password

// site is a tenant of the authorisation tests, with the database to check rows in.
type site struct {
	*testutil.Site
	d *testutil.DB
}

func newSite(t *testing.T, srv *testutil.Server, d *testutil.DB) *site {
	t.Helper()
	return &site{Site: testutil.NewSite(t, srv, "authz", testutil.SiteName("Authz Co")), d: d}
}

// TestAuthorizationMatrix: every admin route for every kind of caller.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	a := newSite(t, srv, d)
	b := newSite(t, srv, d)
	_, owner := a.Person(t, "owner@a.example", authz.Owner)
	_, admin := a.Person(t, "admin@a.example", authz.Admin)
	_, member := a.Person(t, "member@a.example", authz.Member)
	_, nobody := a.Person(t, "norole@a.example")
	victim, _ := a.Person(t, "victim@a.example", authz.Member)
	_, adminB := b.Person(t, "admin@b.example", authz.Admin)
	u := "/api/v1/admin/users/" + victim.String()
	routes := []struct {
		method, path string
		body         any
		ok           int
	}{
		{"GET", "/api/v1/admin/policy", nil, 200},
		{"PUT", "/api/v1/admin/policy", map[string]any{"verification": map[string]any{"mode": "required"}}, 200},
		{"GET", "/api/v1/admin/users", nil, 200},
		{"GET", u, nil, 200},
		{"GET", u + "/sessions", nil, 200},
		{"DELETE", u + "/sessions", nil, 200},
		{"PUT", u + "/roles", map[string]any{"roles": []string{"member"}}, 200},
		{"GET", "/api/v1/admin/audit", nil, 200},
	}
	callers := []struct {
		name   string
		token  string
		status func(ok int) int
	}{
		{"owner", owner, func(ok int) int { return ok }},
		{"admin", admin, func(ok int) int { return ok }},
		{"member", member, func(int) int { return 403 }},
		{"no role", nobody, func(int) int { return 403 }},
		{"anonymous", "", func(int) int { return 401 }},
		{"admin of another tenant", adminB, func(int) int { return 401 }},
	}
	for _, c := range callers {
		for _, r := range routes {
			t.Run(c.name+" "+r.method+" "+r.path, func(t *testing.T) {
				resp := a.Do(t, r.method, r.path, c.token, r.body)
				if want := c.status(r.ok); resp.StatusCode != want {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, want, resp.Body)
				}
			})
		}
	}
	// Ids of another tenant's users are unknown here.
	otherID, _ := b.Person(t, "someone@b.example")
	if r := a.Do(t, "GET", "/api/v1/admin/users/"+otherID.String(), owner, nil); r.StatusCode != 404 {
		t.Fatalf("another tenant's user: %d", r.StatusCode)
	}
}

func TestRoleRules(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	a := newSite(t, srv, d)
	ownerID, owner := a.Person(t, "owner@a.example", authz.Owner)
	adminID, admin := a.Person(t, "admin@a.example", authz.Admin)
	memberID, _ := a.Person(t, "member@a.example", authz.Member)
	roles := func(tok string, id uuid.UUID, rs ...string) *testutil.Response {
		return a.Do(t, "PUT", "/api/v1/admin/users/"+id.String()+"/roles", tok, map[string]any{"roles": rs})
	}
	if r := roles(owner, ownerID, "admin"); r.StatusCode != 409 || r.ErrorCode() != "last_owner" {
		t.Fatalf("removing the last owner: %d %s", r.StatusCode, r.Body)
	}
	if r := roles(admin, memberID, "owner"); r.StatusCode != 403 || r.ErrorCode() != "owner_required" {
		t.Fatalf("admin granting owner: %d %s", r.StatusCode, r.Body)
	}
	if r := roles(admin, memberID, "admin"); r.StatusCode != 200 {
		t.Fatalf("admin granting admin: %d %s", r.StatusCode, r.Body)
	}
	if r := roles(owner, adminID, "owner"); r.StatusCode != 200 {
		t.Fatalf("owner granting owner: %d %s", r.StatusCode, r.Body)
	}
	if r := roles(owner, memberID, "superuser"); r.StatusCode != 400 || r.ErrorCode() != "invalid_role" {
		t.Fatalf("unknown role: %d %s", r.StatusCode, r.Body)
	}
	if r := roles(owner, ownerID, "member"); r.StatusCode != 200 {
		t.Fatalf("stepping down with another owner left: %d %s", r.StatusCode, r.Body)
	}
}

// TestRoleChangeReachesOtherNodes: a binding changed through node A takes effect on node
// B, which had the tenant's enforcer cached, without a restart.
func TestRoleChangeReachesOtherNodes(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	nodeA := testutil.NewServer(t, d)
	nodeB := testutil.NewServer(t, d)
	a := newSite(t, nodeA, d)
	_, owner := a.Person(t, "owner@a.example", authz.Owner)
	memberID, member := a.Person(t, "member@a.example", authz.Member)
	onB := a.On(nodeB) // the same tenant through node B
	if r := onB.Do(t, "GET", "/api/v1/admin/users", member, nil); r.StatusCode != 403 {
		t.Fatalf("member on B before: %d", r.StatusCode)
	}
	if r := a.Do(t, "PUT", "/api/v1/admin/users/"+memberID.String()+"/roles", owner, map[string]any{"roles": []string{"admin"}}); r.StatusCode != 200 {
		t.Fatalf("grant on A: %d %s", r.StatusCode, r.Body)
	}
	start := time.Now()
	for {
		if r := onB.Do(t, "GET", "/api/v1/admin/users", member, nil); r.StatusCode == 200 {
			break
		}
		if time.Since(start) > 2*time.Second {
			t.Fatal("node B still refuses the new admin after 2 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("role change reached node B in %v", time.Since(start))
}

// TestAuditEvents: each action writes exactly one event with the right actor and subject.
func TestAuditEvents(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	a := newSite(t, srv, d)
	adminID, admin := a.Person(t, "admin@a.example", authz.Admin)

	// signup + verification
	a.SignupVerified(t, "new@a.example")
	// login failure and success
	a.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": "new@a.example", "password": "wrong password here"})
	tok := a.Login(t, "new@a.example", pw)
	// step-up, revoke, policy, roles
	a.Do(t, "POST", "/api/v1/reauth", tok, map[string]string{"password": pw})
	// The token changed at step-up: a second re-auth with the old one is refused, not recorded.
	if r := a.Do(t, "POST", "/api/v1/reauth", tok, map[string]string{"password": pw}); r.StatusCode != 401 {
		t.Fatalf("reauth with the rotated-out token: %d", r.StatusCode)
	}
	a.Do(t, "PUT", "/api/v1/admin/policy", admin, map[string]any{"sessions": map[string]any{"max_per_user": 20}})
	var newID uuid.UUID
	if err := d.Admin.QueryRow(context.Background(), "SELECT id FROM users WHERE tenant_id = $1 AND email = 'new@a.example'", a.Tenant.ID).Scan(&newID); err != nil {
		t.Fatal(err)
	}
	a.Do(t, "PUT", "/api/v1/admin/users/"+newID.String()+"/roles", admin, map[string]any{"roles": []string{"member"}})
	a.Do(t, "DELETE", "/api/v1/admin/users/"+newID.String()+"/sessions", admin, nil)

	resp := a.Do(t, "GET", "/api/v1/admin/audit?limit=500", admin, nil)
	var page struct {
		Events []struct {
			Action  string
			Actor   struct{ ID *uuid.UUID }
			Subject struct{ ID *uuid.UUID }
			IP      string
			Details map[string]any
		}
	}
	if err := json.Unmarshal(resp.Body, &page); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range page.Events {
		count[e.Action]++
		switch e.Action {
		case "session.login":
			if e.Subject.ID == nil || e.Actor.ID == nil || *e.Actor.ID != *e.Subject.ID || e.IP != "127.0.0.1" {
				t.Errorf("%s: actor %v subject %v ip %q", e.Action, e.Actor.ID, e.Subject.ID, e.IP)
			}
		case "user.signup", "user.email_verified", "session.step_up":
			if e.Subject.ID == nil || *e.Subject.ID != newID || e.Actor.ID == nil || *e.Actor.ID != newID || e.IP != "127.0.0.1" {
				t.Errorf("%s: actor %v subject %v ip %q", e.Action, e.Actor.ID, e.Subject.ID, e.IP)
			}
		case "tenant.policy_updated":
			if e.Actor.ID == nil || *e.Actor.ID != adminID {
				t.Errorf("policy update actor %v", e.Actor.ID)
			}
		case "role.assigned", "session.revoked":
			if e.Actor.ID == nil || *e.Actor.ID != adminID || e.Subject.ID == nil || *e.Subject.ID != newID {
				t.Errorf("%s: actor %v subject %v", e.Action, e.Actor.ID, e.Subject.ID)
			}
		}
	}
	want := map[string]int{"user.signup": 1, "user.email_verified": 1, "session.login_failed": 1, "tenant.policy_updated": 1,
		"role.assigned": 1, "session.revoked": 1, "session.step_up": 1}
	for action, n := range want {
		if count[action] != n {
			t.Errorf("%s: %d events, want %d (all: %v)", action, count[action], n, count)
		}
	}
	if count["session.login"] != 2 { // the admin's and the new user's
		t.Errorf("session.login: %d events, want 2", count["session.login"])
	}
}

// TestBranding: the branding an admin saves shows on the hosted pages (name, logo, colour
// through /brand.css) and in emails.
func TestBranding(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	a := newSite(t, srv, d)
	_, admin := a.Person(t, "admin@a.example", authz.Admin)
	_, member := a.Person(t, "member@a.example", authz.Member)
	form := func(tok string, values url.Values) *testutil.Response {
		return a.Form(t, "/admin/branding", values, "Cookie", "__Host-gatehouse="+tok)
	}
	branding := func(logo, color string) url.Values {
		return url.Values{"display_name": {"Acme Rockets"}, "logo_url": {logo}, "primary_color": {color}}
	}
	if r := form(member, url.Values{"display_name": {"Hacked"}}); r.StatusCode != 403 {
		t.Fatalf("member saving branding: %d", r.StatusCode)
	}
	if r := form(admin, url.Values{"display_name": {"Acme"}, "logo_url": {"http://evil.example/x.png"}, "primary_color": {"#123456"}}); r.StatusCode != 400 {
		t.Fatalf("http logo accepted: %d", r.StatusCode)
	}
	if r := form(admin, branding("https://cdn.acme.example/logo.png", "#aa3300")); r.StatusCode != 303 {
		t.Fatalf("save branding: %d %s", r.StatusCode, r.Body)
	}
	deadline := time.Now().Add(2 * time.Second)
	var page *testutil.Response
	for {
		page = a.Page(t, "/login")
		if strings.Contains(string(page.Body), "Acme Rockets") || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, want := range []string{"Acme Rockets", `src="https://cdn.acme.example/logo.png"`, `href="/brand.css?v=`} {
		if !strings.Contains(string(page.Body), want) {
			t.Fatalf("login page lacks %q", want)
		}
	}
	cssURL := regexp.MustCompile(`href="(/brand\.css\?v=[0-9a-f]+)"`).FindStringSubmatch(string(page.Body))[1]
	css := a.Do(t, "GET", cssURL, "", nil)
	if !strings.Contains(string(css.Body), "--primary: #aa3300") || !strings.Contains(css.Header.Get("Cache-Control"), "immutable") {
		t.Fatalf("brand.css: %s %q", css.Body, css.Header.Get("Cache-Control"))
	}
	// A saved colour shows on the next page (issue 16: it used to be cached for 5 minutes):
	// the page links a new URL, and the old one is not cached.
	if r := form(admin, branding("https://cdn.acme.example/logo.png", "#005599")); r.StatusCode != 303 {
		t.Fatalf("save branding: %d %s", r.StatusCode, r.Body)
	}
	deadline = time.Now().Add(2 * time.Second)
	for {
		page = a.Page(t, "/login")
		if !strings.Contains(string(page.Body), cssURL) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	newURL := regexp.MustCompile(`href="(/brand\.css\?v=[0-9a-f]+)"`).FindStringSubmatch(string(page.Body))[1]
	if newURL == cssURL {
		t.Fatalf("the page still links %s after the colour changed", cssURL)
	}
	if css := a.Do(t, "GET", newURL, "", nil); !strings.Contains(string(css.Body), "--primary: #005599") {
		t.Fatalf("new brand.css: %s", css.Body)
	}
	if old := a.Do(t, "GET", cssURL, "", nil); old.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("an outdated brand.css URL may be cached: %q", old.Header.Get("Cache-Control"))
	}
	a.Do(t, "POST", "/api/v1/password/forgot", "", map[string]string{"email": "member@a.example"})
	if m := srv.WaitMail(t, "member@a.example", "Reset your Acme Rockets password"); !strings.Contains(m.HTML, "Acme Rockets") {
		t.Fatalf("email without the display name: %s", m.HTML)
	}
}

// TestAdminUserActions: resend verification and reset a second factor (the admin's own
// step-up applies), with the user told and their sessions ended.
func TestAdminUserActions(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	a := newSite(t, srv, d)
	_, admin := a.Person(t, "admin@a.example", authz.Admin)
	_, member := a.Person(t, "member@a.example", authz.Member)
	userID, userTok := a.Person(t, "user@a.example", authz.Member)

	// The user turns TOTP on.
	r := a.Do(t, "POST", "/api/v1/mfa/totp", userTok, nil)
	var en struct{ Secret string }
	r.JSON(t, &en)
	code, err := totpCode(en.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if r := a.Do(t, "POST", "/api/v1/mfa/totp/confirm", userTok, map[string]string{"code": code}); r.StatusCode != 200 {
		t.Fatalf("confirm: %d %s", r.StatusCode, r.Body)
	}
	path := "/api/v1/admin/users/" + userID.String() + "/mfa"
	if r := a.Do(t, "DELETE", path, member, nil); r.StatusCode != 403 {
		t.Fatalf("member resetting MFA: %d", r.StatusCode)
	}
	if r := a.Do(t, "DELETE", path, admin, nil); r.StatusCode != 204 {
		t.Fatalf("admin resetting MFA: %d %s", r.StatusCode, r.Body)
	}
	if r := a.Do(t, "GET", "/api/v1/session", userTok, nil); r.StatusCode != 401 {
		t.Fatalf("the user's session survived the reset: %d", r.StatusCode)
	}
	srv.WaitMail(t, "user@a.example", "reset by an administrator")
	if r := a.Do(t, "DELETE", path, admin, nil); r.StatusCode != 404 {
		t.Fatalf("second reset: %d", r.StatusCode)
	}
	if r := a.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": "user@a.example", "password": pw}); strings.Contains(string(r.Body), "mfa_required") {
		t.Fatal("login still asks for a code")
	}

	// Resend verification to an unverified user.
	a.Signup(t, "late@a.example")
	srv.WaitMail(t, "late@a.example", "Confirm")
	var lateID uuid.UUID
	if err := d.Admin.QueryRow(context.Background(), "SELECT id FROM users WHERE tenant_id = $1 AND email = 'late@a.example'", a.Tenant.ID).Scan(&lateID); err != nil {
		t.Fatal(err)
	}
	if r := a.Do(t, "POST", "/api/v1/admin/users/"+lateID.String()+"/verification/resend", admin, nil); r.StatusCode != 202 {
		t.Fatalf("resend: %d %s", r.StatusCode, r.Body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(srv.Mails(t, "late@a.example")) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no second verification mail")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAdminUserFilters(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	a := newSite(t, srv, d)
	_, admin := a.Person(t, "admin@a.example", authz.Admin)
	a.Signup(t, "unverified@a.example")
	emails := func(query string) []string {
		r := a.Do(t, "GET", "/api/v1/admin/users"+query, admin, nil)
		if r.StatusCode != 200 {
			t.Fatalf("%s: %d %s", query, r.StatusCode, r.Body)
		}
		var b struct{ Users []struct{ Email string } }
		r.JSON(t, &b)
		var out []string
		for _, u := range b.Users {
			out = append(out, u.Email)
		}
		return out
	}
	if got := emails("?verified=false"); len(got) != 1 || got[0] != "unverified@a.example" {
		t.Fatalf("verified=false: %v", got)
	}
	if got := emails("?verified=true&q=ADMIN"); len(got) != 1 || got[0] != "admin@a.example" {
		t.Fatalf("verified=true&q=ADMIN: %v", got)
	}
	if got := emails("?mfa=true"); len(got) != 0 {
		t.Fatalf("mfa=true: %v", got)
	}
	if got := emails("?limit=1"); len(got) != 1 {
		t.Fatalf("limit=1: %v", got)
	}
	for _, bad := range []string{"?verified=maybe", "?status=gone", "?limit=0", "?cursor=garbage"} {
		if r := a.Do(t, "GET", "/api/v1/admin/users"+bad, admin, nil); r.StatusCode != 400 {
			t.Fatalf("%s: %d", bad, r.StatusCode)
		}
	}
	page := a.Page(t, "/admin/roles", "Cookie", "__Host-gatehouse="+admin)
	if page.StatusCode != 200 || !strings.Contains(string(page.Body), "admin@a.example") || !strings.Contains(string(page.Body), "roles.assign") {
		t.Fatalf("roles page: %d", page.StatusCode)
	}
}
