package authz_test

import (
	"net/http"
	"strings"
	"testing"

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
	_, owner := a.person(t, "owner@a.example", authz.Owner)
	victim, _ := a.person(t, "victim@a.example", authz.Member)

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
	}
	for _, rt := range routes {
		for _, b := range bodies {
			r := srv.Do(t, testutil.Request{Method: rt.method, Host: a.host, Path: rt.path, Body: b.body,
				Header: http.Header{"Authorization": {"Bearer " + owner}, "Content-Type": {b.ctype}}})
			if r.StatusCode < 400 || r.StatusCode >= 500 || r.ErrorCode() == "" {
				t.Errorf("%s %s with a %s body: %d %.200s", rt.method, rt.path, b.name, r.StatusCode, r.Body)
			}
		}
	}
}
