package authz_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

func (s *site) rolesOf(t *testing.T, id uuid.UUID) []string {
	t.Helper()
	rows, err := s.d.Admin.Query(context.Background(), "SELECT role FROM role_bindings WHERE tenant_id = $1 AND user_id = $2 ORDER BY role", s.Tenant.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// acceptForm posts the invitation form with an optional session cookie.
func (s *site) acceptForm(t *testing.T, tok, password, cookie string) *testutil.Response {
	t.Helper()
	var h []string
	if cookie != "" {
		h = []string{"Cookie", "__Host-gatehouse=" + cookie}
	}
	return s.Form(t, "/invite", url.Values{"token": {tok}, "password": {password}}, h...)
}

// TestInvitationForExistingAccount: the link proves the mailbox, not the account. An
// invitation to an address that has an account is accepted only by that account, signed in
// the normal way; the form never issues a session for it (issue 14, finding 3).
func TestInvitationForExistingAccount(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	a := newSite(t, srv, d)
	_, admin := a.Person(t, "admin@a.example", authz.Admin)
	userID, userTok := a.Person(t, "user@a.example", authz.Member)
	_, otherTok := a.Person(t, "other@a.example", authz.Member)

	if r := a.Do(t, "POST", "/api/v1/admin/invitations", admin, map[string]string{"email": "user@a.example", "role": "admin"}); r.StatusCode/100 != 2 {
		t.Fatalf("invite: %d %s", r.StatusCode, r.Body)
	}
	tok := testutil.TokenFrom(t, srv.WaitMail(t, "user@a.example", "invited"), "/invite")

	// The page asks for a sign-in, not for a password.
	page := a.Page(t, "/invite?token="+url.QueryEscape(tok))
	if page.StatusCode != 200 || !strings.Contains(string(page.Body), "Sign in to accept") || strings.Contains(string(page.Body), `name="password"`) {
		t.Fatalf("acceptance page for an existing account: %d %s", page.StatusCode, page.Body)
	}

	// Anonymous, with any password: refused, no session, no role.
	for _, pw := range []string{"anything at all 123", pw} {
		r := a.acceptForm(t, tok, pw, "")
		if r.StatusCode != 401 || len(r.Header.Values("Set-Cookie")) != 0 {
			t.Fatalf("anonymous acceptance for an existing account: %d %v %s", r.StatusCode, r.Header.Values("Set-Cookie"), r.Body)
		}
	}
	// Signed in as somebody else: refused.
	if r := a.acceptForm(t, tok, "", otherTok); r.StatusCode != 401 {
		t.Fatalf("acceptance by another account: %d %s", r.StatusCode, r.Body)
	}
	if slices.Contains(a.rolesOf(t, userID), authz.Admin) {
		t.Fatal("the role was granted without the account's sign-in")
	}

	// Signed in as the invitee: accepted, the role is granted, no new session.
	page = a.Page(t, "/invite?token="+url.QueryEscape(tok), "Cookie", "__Host-gatehouse="+userTok)
	if !strings.Contains(string(page.Body), "Accept the invitation") {
		t.Fatalf("signed-in invitee sees no Accept button: %s", page.Body)
	}
	r := a.acceptForm(t, tok, "", userTok)
	if r.StatusCode != 303 || len(r.Header.Values("Set-Cookie")) != 0 {
		t.Fatalf("acceptance by the signed-in invitee: %d %v %s", r.StatusCode, r.Header.Values("Set-Cookie"), r.Body)
	}
	if !slices.Contains(a.rolesOf(t, userID), authz.Admin) {
		t.Fatalf("roles after acceptance: %v", a.rolesOf(t, userID))
	}
	if r := a.acceptForm(t, tok, "", userTok); r.StatusCode != 409 || !strings.Contains(string(r.Body), "already accepted") {
		t.Fatalf("second acceptance: %d (want 409 invitation_accepted)", r.StatusCode)
	}

	// An account scheduled for deletion cannot be brought back by an invitation.
	goneID, goneTok := a.Person(t, "gone@a.example", authz.Member)
	if r := a.Do(t, "POST", "/api/v1/admin/invitations", admin, map[string]string{"email": "gone@a.example", "role": "admin"}); r.StatusCode/100 != 2 {
		t.Fatalf("invite: %d %s", r.StatusCode, r.Body)
	}
	goneInv := testutil.TokenFrom(t, srv.WaitMail(t, "gone@a.example", "invited"), "/invite")
	if r := a.Do(t, "DELETE", "/api/v1/account", goneTok, nil); r.StatusCode != 202 {
		t.Fatalf("deletion: %d %s", r.StatusCode, r.Body)
	}
	if r := a.acceptForm(t, goneInv, pw, ""); r.StatusCode != 401 {
		t.Fatalf("acceptance for a pending deletion: %d %s", r.StatusCode, r.Body)
	}
	if slices.Contains(a.rolesOf(t, goneID), authz.Admin) {
		t.Fatal("pending-deletion account got the role")
	}

	// A new address still joins with a password of its own.
	if r := a.Do(t, "POST", "/api/v1/admin/invitations", admin, map[string]string{"email": "new@a.example", "role": "member"}); r.StatusCode/100 != 2 {
		t.Fatalf("invite: %d %s", r.StatusCode, r.Body)
	}
	newInv := testutil.TokenFrom(t, srv.WaitMail(t, "new@a.example", "invited"), "/invite")
	if r := a.acceptForm(t, newInv, pw, ""); r.StatusCode != 303 || len(r.Header.Values("Set-Cookie")) == 0 {
		t.Fatalf("new account: %d %s", r.StatusCode, r.Body)
	}
}

// TestDevMailboxPerTenant: on a tenant host the dev mailbox lists that tenant's mail only
// (issue 14, finding 10); the operator host lists all of it.
func TestDevMailboxPerTenant(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	a, b := newSite(t, srv, d), newSite(t, srv, d)
	for _, s := range []*site{a, b} {
		addr := "mailbox@" + s.Tenant.Slug + ".example"
		s.Signup(t, addr)
		srv.WaitMail(t, addr, "Confirm")
	}
	list := func(host string) []string {
		r := srv.Do(t, testutil.Request{Host: host, Path: "/_dev/mail.json"})
		var msgs []struct{ To string }
		r.JSON(t, &msgs)
		var to []string
		for _, m := range msgs {
			to = append(to, m.To)
		}
		return to
	}
	for _, s := range []*site{a, b} {
		for _, to := range list(s.Host) {
			if !strings.HasSuffix(to, "@"+s.Tenant.Slug+".example") && !strings.HasSuffix(to, "@"+s.Tenant.Slug+".example>") {
				t.Errorf("%s's mailbox shows %s", s.Tenant.Slug, to)
			}
		}
		if !slices.ContainsFunc(list(s.Host), func(to string) bool { return strings.Contains(to, s.Tenant.Slug) }) {
			t.Errorf("%s's mailbox misses its own mail", s.Tenant.Slug)
		}
	}
	all := strings.Join(list("localhost"), " ")
	if !strings.Contains(all, a.Tenant.Slug) || !strings.Contains(all, b.Tenant.Slug) {
		t.Errorf("operator mailbox: %s", all)
	}
}

// TestLoginDiscoveryErrorIsShown: a discovery that fails says why on the login page
// instead of "Enter your password" (issue 15, step 9).
func TestLoginDiscoveryErrorIsShown(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	a := newSite(t, srv, d)
	r := a.Form(t, "/login", url.Values{"email": {"not-an-address"}, "sso": {"1"}})
	if r.StatusCode != 400 || strings.Contains(string(r.Body), "Enter your password") || !strings.Contains(string(r.Body), "email address") {
		t.Fatalf("discovery of a malformed address: %d %s", r.StatusCode, r.Body)
	}
	r = a.Form(t, "/login", url.Values{"email": {"someone@a.example"}})
	if r.StatusCode != 400 || !strings.Contains(string(r.Body), "Enter your password") {
		t.Fatalf("an address without SSO and no password: %d %s", r.StatusCode, r.Body)
	}
}

// TestAuditExportKeepsTheFilter: the CSV and JSON links of a filtered audit page export
// that filter's events only (issue 16, item 2: the filter was escaped out of the links).
func TestAuditExportKeepsTheFilter(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	a := newSite(t, srv, d)
	_, owner := a.Person(t, "owner@a.example", authz.Owner)
	for i := range 3 {
		a.Person(t, fmt.Sprintf("user%d@a.example", i))
	}
	a.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": "owner@a.example", "password": "wrong password here"})
	cookie := "__Host-gatehouse=" + owner
	page := a.Page(t, "/admin/audit?action=session.login_failed", "Cookie", cookie)
	m := regexp.MustCompile(`href="(/admin/audit\.csv\?[^"]*)"`).FindStringSubmatch(string(page.Body))
	if m == nil {
		t.Fatalf("no CSV link: %s", page.Body)
	}
	link := strings.ReplaceAll(m[1], "&amp;", "&")
	if !strings.Contains(link, "action=session.login_failed") {
		t.Fatalf("the CSV link drops the filter: %s", link)
	}
	csvBody := a.Page(t, link, "Cookie", cookie)
	rows, err := csv.NewReader(bytes.NewReader(csvBody.Body)).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("csv: %v %s", err, csvBody.Body)
	}
	for _, row := range rows[1:] {
		if row[2] != "session.login_failed" {
			t.Fatalf("export has a %s row under the session.login_failed filter", row[2])
		}
	}
	jsonLink := strings.Replace(link, "audit.csv", "audit.json", 1)
	var doc struct{ Events []struct{ Action string } }
	a.Page(t, jsonLink, "Cookie", cookie).JSON(t, &doc)
	if len(doc.Events) != len(rows)-1 {
		t.Fatalf("JSON export has %d events, CSV %d", len(doc.Events), len(rows)-1)
	}
}

// TestLoginLinksSignupOnlyWhenOpen: a tenant without self-service sign-up does not link
// "Create an account" (issue 16, item 13).
func TestLoginLinksSignupOnlyWhenOpen(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	a := newSite(t, srv, d)
	page := func() string {
		return string(srv.Do(t, testutil.Request{Host: a.Host, Path: "/login", Header: http.Header{"Accept": {"text/html"}}}).Body)
	}
	if !strings.Contains(page(), `href="/signup"`) {
		t.Fatal("an open tenant's login page does not link sign-up")
	}
	p := a.Tenant.Policy
	p.Signup.Enabled = false
	if _, err := srv.App.Tenants.UpdatePolicy(context.Background(), a.Tenant.ID, p, audit.Who{ActorLabel: "test"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for strings.Contains(page(), `href="/signup"`) {
		if time.Now().After(deadline) {
			t.Fatal("the login page links sign-up on a tenant without it")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
