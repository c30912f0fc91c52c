package authz_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestEveryJSONEndpointRefusesBadInput sends malformed, mistyped, oversized and wrongly
// typed bodies to every JSON route that takes a body, as an owner with a fresh session
// (so authentication and step-up pass and the body is what is judged): each answer is a
// 4xx with a stable error code, never a 5xx.
func TestEveryJSONEndpointRefusesBadInput(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	a := newSite(t, srv, d)
	_, owner := a.Person(t, "owner@a.example", authz.Owner)
	victim, _ := a.Person(t, "victim@a.example", authz.Member)

	routes := []struct{ method, path string }{}
	walk := func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if strings.HasPrefix(route, "/api/") && (method == "POST" || method == "PUT" || method == "PATCH") && !strings.Contains(route, "/platform/") {
			routes = append(routes, struct{ method, path string }{method, strings.ReplaceAll(route, "{id}", victim.String())})
		}
		return nil
	}
	if err := chi.Walk(srv.App.TenantRoutes(), walk); err != nil {
		t.Fatal(err)
	}
	// Logout last: it would end the session the other requests need.
	for i, rt := range routes {
		if rt.path == "/api/v1/logout" {
			routes = append(append(routes[:i:i], routes[i+1:]...), rt)
			break
		}
	}
	if len(routes) < 15 {
		t.Fatalf("found only %d JSON routes with a body: %v", len(routes), routes)
	}
	bodies := []struct {
		name, body, ctype string
	}{
		{"malformed", `{"email":`, "application/json"},
		{"array", `[1,2,3]`, "application/json"},
		{"wrong types", `{"email":1,"password":true,"token":[],"code":{},"roles":"admin","name":7}`, "application/json"},
		{"unknown field", `{"surprise":"field"}`, "application/json"},
		{"invalid utf-8", "{\"email\":\"\xff\xfe\"}", "application/json"},
		{"huge", `{"email":"` + strings.Repeat("a", 100<<10) + `"}`, "application/json"},
		{"form encoded", `email=a`, "application/x-www-form-urlencoded"},
		{"null", `null`, "application/json"},
		{"string", `"x"`, "application/json"},
		{"duplicate keys", `{"roles":["member"],"roles":[],"email":"a@a.example","email":"b@a.example"}`, "application/json"},
		{"nested duplicate keys", `{"verification":{"mode":"required","mode":"off"}}`, "application/json"},
		{"deep nesting", strings.Repeat("[", 100) + strings.Repeat("]", 100), "application/json"},
	}
	for _, rt := range routes {
		for _, b := range bodies {
			if b.name == "null" && isBodiless(rt.path) {
				continue // says nothing: accepted (TestBodilessEndpointsAcceptEmptyBodies)
			}
			r := a.Do(t, rt.method, rt.path, owner, b.body, "Content-Type", b.ctype)
			if r.StatusCode < 400 || r.StatusCode >= 500 || r.ErrorCode() == "" {
				t.Errorf("%s %s with a %s body: %d %.200s", rt.method, rt.path, b.name, r.StatusCode, r.Body)
			}
		}
	}
}

// bodiless are the POST routes that take no body.
var bodiless = map[string]bool{"/api/v1/logout": true, "/api/v1/sessions/revoke-others": true, "/api/v1/mfa/totp": true,
	"/api/v1/mfa/recovery-codes": true}

func isBodiless(path string) bool {
	return bodiless[path] || strings.HasSuffix(path, "/verification/resend") || strings.HasSuffix(path, "/rotate-key") ||
		strings.HasPrefix(path, "/api/v1/admin/sso/domains/") ||
		// Passkey ceremonies' begin (their empty bodies: internal/passkey TestPasskeyBeginTakesNoBody).
		path == "/api/v1/passkeys/register/begin" || path == "/api/v1/login/passkey/begin" || path == "/api/v1/reauth/passkey/begin"
}

// TestBodilessEndpointsAcceptEmptyBodies: a POST without fields may come with no body,
// `{}` or `null` (what SDKs send); a body with content is still refused (issue 15).
func TestBodilessEndpointsAcceptEmptyBodies(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	a := newSite(t, srv, d)
	for path := range bodiless {
		for _, body := range []string{"", "{}", "null", " { } "} {
			_, tok := a.Person(t, testutil.UniqueSlug("u")+"@a.example")
			r := a.Do(t, "POST", path, tok, body, "Content-Type", "application/json")
			if r.StatusCode >= 500 || r.ErrorCode() == "invalid_json" {
				t.Errorf("POST %s with %q: %d %.200s", path, body, r.StatusCode, r.Body)
			}
		}
		_, tok := a.Person(t, testutil.UniqueSlug("u")+"@a.example")
		r := a.Do(t, "POST", path, tok, `{"surprise":1}`, "Content-Type", "application/json")
		if r.StatusCode != 400 || r.ErrorCode() != "invalid_json" {
			t.Errorf("POST %s with a field: %d %.200s", path, r.StatusCode, r.Body)
		}
	}
}

// TestEveryRouteRefusesBadQueryAndHeaders sends invalid UTF-8 and NUL in query parameters
// to every route of the tenant host (JSON and pages, every method), and invalid UTF-8 and
// control characters in the User-Agent and forwarded headers to every GET route and to
// login and sign-up: never a 5xx, and a bad query is a 400 with a stable code before any
// handler runs.
func TestEveryRouteRefusesBadQueryAndHeaders(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	a := newSite(t, srv, d)
	_, owner := a.Person(t, "owner@a.example", authz.Owner)
	victim, _ := a.Person(t, "victim@a.example", authz.Member)

	type route struct{ method, path string }
	var routes []route
	walk := func(method, r string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		r = strings.NewReplacer("{id}", victim.String(), "{connection}", "dev", "{slug}", "dev").Replace(r)
		if !strings.Contains(r, "{") && !strings.Contains(r, "*") {
			routes = append(routes, route{method, r})
		}
		return nil
	}
	if err := chi.Walk(srv.App.TenantRoutes(), walk); err != nil {
		t.Fatal(err)
	}
	if len(routes) < 60 {
		t.Fatalf("found only %d routes", len(routes))
	}
	cookie := "__Host-gatehouse=" + owner
	for _, rt := range routes {
		for _, q := range []string{"q=%ff", "action=%ff%fe", "return_to=%2F%00x", "%ff=1", "q=%zz", "cursor=%c0%af"} {
			r := a.Do(t, rt.method, rt.path+"?"+q, owner, nil, "Cookie", cookie)
			if r.StatusCode != 400 || r.ErrorCode() != "invalid_request" {
				t.Errorf("%s %s?%s: %d %.200s", rt.method, rt.path, q, r.StatusCode, r.Body)
			}
		}
	}
	// The victim's account is still there: no handler ran.
	var n int
	if err := d.Admin.QueryRow(context.Background(), "SELECT count(*) FROM users WHERE tenant_id = $1 AND id = $2", a.Tenant.ID, victim).Scan(&n); err != nil || n != 1 {
		t.Fatalf("victim: %d %v", n, err)
	}

	headers := [][]string{
		{"User-Agent", "Mozilla/5.0 \xff\xfe\xc0"},
		{"User-Agent", "bad\x80\x9b\tUA" + strings.Repeat("\xe2\x82\xac", 300)},
		{"X-Forwarded-For", "\xff, 1.2.3.4", "X-Forwarded-Host", "\xff.localhost", "X-Request-Id", "\xff\xfe"},
	}
	for _, h := range headers {
		for _, rt := range routes {
			if rt.method != "GET" {
				continue
			}
			if r := a.Do(t, "GET", rt.path, owner, nil, append([]string{"Cookie", cookie}, h...)...); r.StatusCode >= 500 {
				t.Errorf("GET %s with %v: %d %.200s", rt.path, h, r.StatusCode, r.Body)
			}
		}
	}
}

// TestInvalidUserAgentIsAudited: a wrong password sent with a User-Agent that is not
// UTF-8 is a 401 and leaves its audit entry; sign-up with one succeeds (issue 14, finding 6).
func TestInvalidUserAgentIsAudited(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	a := newSite(t, srv, d)
	a.Person(t, "user@a.example", authz.Member)
	const ua = "Evil/1.0 \xff\xfe\tx"
	r := a.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": "user@a.example", "password": "wrong password entirely"}, "User-Agent", ua)
	if r.StatusCode != 401 {
		t.Fatalf("login with a bad User-Agent: %d %s", r.StatusCode, r.Body)
	}
	var stored string
	err := d.Admin.QueryRow(context.Background(), `SELECT user_agent FROM audit_events WHERE tenant_id = $1 AND action = 'session.login_failed'
		ORDER BY occurred_at DESC LIMIT 1`, a.Tenant.ID).Scan(&stored)
	if err != nil {
		t.Fatalf("no audit entry for the failed login: %v", err)
	}
	if !strings.HasPrefix(stored, "Evil/1.0") || !utf8.ValidString(stored) || strings.ContainsRune(stored, 0x09) {
		t.Fatalf("stored user agent %q", stored)
	}
	r = a.Do(t, "POST", "/api/v1/signup", "", map[string]string{"email": "new@a.example", "password": pw}, "User-Agent", ua)
	if r.StatusCode != 202 {
		t.Fatalf("sign-up with a bad User-Agent: %d %s", r.StatusCode, r.Body)
	}
	r = a.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": "user@a.example", "password": pw}, "User-Agent", ua)
	if r.StatusCode != 200 {
		t.Fatalf("login with a bad User-Agent: %d %s", r.StatusCode, r.Body)
	}
}

// TestUserSearchIsLiteral: % and _ in the admin user search match themselves only.
func TestUserSearchIsLiteral(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	a := newSite(t, srv, d)
	_, owner := a.Person(t, "owner@a.example", authz.Owner)
	a.Person(t, "a_b@a.example")
	a.Person(t, "axb@a.example")
	for q, want := range map[string]int{"%25": 0, "_": 1, "a_b": 1, "axb": 1, "a.example": 3} {
		r := a.Do(t, "GET", "/api/v1/admin/users?q="+q, owner, nil)
		var b struct {
			Users []struct{ Email string } `json:"users"`
		}
		r.JSON(t, &b)
		if len(b.Users) != want {
			t.Errorf("q=%s: %d users %v, want %d", q, len(b.Users), b.Users, want)
		}
	}
}

// TestRateLimitsCountIPv6By64: a client rotating through the addresses of its IPv6 /64
// shares one counter (issue 14, finding 10); another /64 has its own.
func TestRateLimitsCountIPv6By64(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d, testutil.TrustProxyHeaders)
	a := newSite(t, srv, d)
	login := func(i int, from string) int {
		return a.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": fmt.Sprintf("nobody%d@a.example", i), "password": "not a real password"},
			"X-Forwarded-For", from).StatusCode
	}
	// login_ip is a fixed one-minute window: 61 tries within a minute put more than 30 in
	// one window even when they straddle a window boundary.
	limited := false
	for i := range 61 {
		if login(i, fmt.Sprintf("2001:db8:1:2:%x::%x", i, i+1)) == 429 {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("61 logins from one /64 were never limited (login_ip allows 30 a minute)")
	}
	if code := login(99, "2001:db8:1:3::1"); code == 429 {
		t.Fatalf("another /64 was limited too: %d", code)
	}
}
