package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

const operatorToken = "test-operator-token-0123456789abcdef"

func newServer(t *testing.T, opts ...testutil.ServerOption) (*testutil.Server, *testutil.DB) {
	t.Helper()
	d := testutil.PackageDB(t)
	opts = append([]testutil.ServerOption{testutil.WithConfig(func(c *config.Config) {
		c.OperatorToken = operatorToken
		c.TrustedProxies, _ = config.ParsePrefixes("10.0.0.0/8")
	})}, opts...)
	return testutil.NewServer(t, d, opts...), d
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// TestTenantResolution drives real requests through the server with various Host headers.
func TestTenantResolution(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t)
	ctx := context.Background()
	active := testutil.NewTenant(t, d, "res")
	suspended := testutil.NewTenant(t, d, "sus")
	if _, err := srv.App.Tenants.SetStatus(ctx, suspended.Slug, tenant.StatusSuspended); err != nil {
		t.Fatal(err)
	}
	port := srv.Port
	tests := []struct {
		name   string
		host   string
		header http.Header
		status int
		code   string // error code, or "" for success
		tenant string // expected tenant slug on success ("" for base host)
	}{
		{"tenant", active.Slug + ".localhost", nil, 200, "", active.Slug},
		{"tenant with port", active.Slug + ".localhost:" + itoa(port), nil, 200, "", active.Slug},
		{"upper case", strings.ToUpper(active.Slug) + ".LOCALHOST", nil, 200, "", active.Slug},
		{"unknown tenant", "nobody-here.localhost", nil, 404, "tenant_not_found", ""},
		{"suspended tenant", suspended.Slug + ".localhost", nil, 404, "tenant_not_found", ""},
		{"deeper name", "x." + active.Slug + ".localhost", nil, 404, "tenant_not_found", ""},
		{"foreign domain", active.Slug + ".example.com", nil, 404, "tenant_not_found", ""},
		{"ip host", "127.0.0.1:" + itoa(port), nil, 404, "tenant_not_found", ""},
		{"base host", "localhost:" + itoa(port), nil, 404, "not_found", ""},
		// The direct peer (127.0.0.1) is not a trusted proxy: X-Forwarded-Host is ignored.
		{"spoofed forwarded host", "nobody-here.localhost", hdr("X-Forwarded-Host", active.Slug+".localhost"), 404, "tenant_not_found", ""},
		{"spoofed forwarded host onto a tenant", active.Slug + ".localhost", hdr("X-Forwarded-Host", suspended.Slug+".localhost"), 200, "", active.Slug},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := srv.Do(t, testutil.Request{Host: tt.host, Path: "/api/v1/tenant", Header: tt.header})
			if resp.StatusCode != tt.status || resp.ErrorCode() != tt.code {
				t.Fatalf("status %d code %q, want %d %q; body %s", resp.StatusCode, resp.ErrorCode(), tt.status, tt.code, resp.Body)
			}
			if tt.code == "" {
				var body struct{ Tenant struct{ Slug string } }
				resp.JSON(t, &body)
				if body.Tenant.Slug != tt.tenant {
					t.Fatalf("resolved %q, want %q", body.Tenant.Slug, tt.tenant)
				}
			}
		})
	}

	t.Run("html for browsers", func(t *testing.T) {
		resp := srv.Do(t, testutil.Request{Host: "nobody-here.localhost", Path: "/", Header: hdr("Accept", "text/html,application/xhtml+xml")})
		if resp.StatusCode != 404 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(string(resp.Body), "tenant_not_found") {
			t.Fatalf("status %d type %s body %s", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Body)
		}
	})
	t.Run("tenant home page", func(t *testing.T) {
		resp := srv.Do(t, testutil.Request{Host: active.Slug + ".localhost", Path: "/", Header: hdr("Accept", "text/html")})
		if resp.StatusCode != 200 || !strings.Contains(string(resp.Body), active.Name) {
			t.Fatalf("status %d body %s", resp.StatusCode, resp.Body)
		}
	})
	t.Run("landing page on base host", func(t *testing.T) {
		resp := srv.Do(t, testutil.Request{Host: "localhost", Path: "/", Header: hdr("Accept", "text/html")})
		if resp.StatusCode != 200 || !strings.Contains(string(resp.Body), "operator host") {
			t.Fatalf("status %d body %s", resp.StatusCode, resp.Body)
		}
	})
	t.Run("suspending takes effect at once", func(t *testing.T) {
		ten := testutil.NewTenant(t, d, "live")
		if r := srv.Do(t, testutil.Request{Host: ten.Slug + ".localhost", Path: "/api/v1/tenant"}); r.StatusCode != 200 {
			t.Fatalf("before: %d", r.StatusCode)
		}
		if _, err := srv.App.Tenants.SetStatus(ctx, ten.Slug, tenant.StatusSuspended); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Second)
		for {
			r := srv.Do(t, testutil.Request{Host: ten.Slug + ".localhost", Path: "/api/v1/tenant"})
			if r.StatusCode == 404 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("suspended tenant still served after 1s")
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// TestTrustedProxy: behind a trusted proxy, X-Forwarded-Host/-Proto/-For are believed. The
// test server sees 127.0.0.1, so it trusts loopback here.
func TestTrustedProxy(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t, testutil.WithConfig(func(c *config.Config) {
		c.TrustedProxies, _ = config.ParsePrefixes("127.0.0.0/8")
	}))
	ten := testutil.NewTenant(t, d, "proxy")
	resp := srv.Do(t, testutil.Request{Host: "internal-lb:8080", Path: "/api/v1/tenant",
		Header: hdr("X-Forwarded-Host", ten.Slug+".localhost", "X-Forwarded-Proto", "https", "X-Request-Id", "lb-req-1")})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d body %s", resp.StatusCode, resp.Body)
	}
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatal("HSTS missing behind a TLS-terminating trusted proxy")
	}
	if resp.Header.Get("X-Request-Id") != "lb-req-1" {
		t.Fatalf("request id from trusted proxy not kept: %q", resp.Header.Get("X-Request-Id"))
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t)
	ten := testutil.NewTenant(t, d, "hdr")
	resp := srv.Do(t, testutil.Request{Host: ten.Slug + ".localhost", Path: "/", Header: hdr("Accept", "text/html", "X-Request-Id", "client-chosen")})
	want := map[string]string{
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
		"X-Frame-Options":        "DENY",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("CSP %q lacks %q", csp, d)
		}
	}
	if resp.Header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS on plain http")
	}
	if id := resp.Header.Get("X-Request-Id"); id == "" || id == "client-chosen" {
		t.Errorf("request id %q: must be generated, not taken from an untrusted client", id)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t)
	auth := hdr("Authorization", "Bearer "+operatorToken)
	post := func(body any, h http.Header) *testutil.Response {
		hh := auth.Clone()
		for k, v := range h {
			hh[k] = v
		}
		return srv.Do(t, testutil.Request{Method: "POST", Host: "localhost", Path: "/api/v1/platform/tenants", Body: body, Header: hh})
	}
	tests := []struct {
		name   string
		body   any
		header http.Header
		status int
		code   string
	}{
		{"malformed json", `{"slug":`, nil, 400, "invalid_json"},
		{"not an object", `[1,2]`, nil, 400, "invalid_json"},
		{"unknown field", `{"slug":"x","name":"X","admin":true}`, nil, 400, "invalid_json"},
		{"wrong type", `{"slug":1,"name":"X"}`, nil, 400, "invalid_json"},
		{"trailing data", `{"slug":"x","name":"X"} {}`, nil, 400, "invalid_json"},
		{"invalid utf-8", []byte("{\"slug\":\"x\",\"name\":\"\xff\xfe\"}"), nil, 400, "invalid_json"},
		{"huge body", `{"name":"` + strings.Repeat("a", 70<<10) + `"}`, nil, 413, "request_too_large"},
		{"wrong content type", `slug=x`, hdr("Content-Type", "application/x-www-form-urlencoded"), 415, "unsupported_media_type"},
		{"overlong name", map[string]string{"slug": testutil.UniqueSlug("long"), "name": strings.Repeat("n", 201)}, nil, 400, "invalid_name"},
		{"bad slug", map[string]string{"slug": "Not A Slug", "name": "X"}, nil, 400, "invalid_slug"},
		{"bad policy", map[string]any{"slug": testutil.UniqueSlug("pol"), "name": "X", "policy": map[string]any{"verification": map[string]any{"mode": "later"}}}, nil, 400, "invalid_policy"},
		{"unknown policy field", map[string]any{"slug": testutil.UniqueSlug("pol"), "name": "X", "policy": map[string]any{"nope": 1}}, nil, 400, "invalid_policy"},
		{"bad admin email", map[string]any{"slug": testutil.UniqueSlug("em"), "name": "X", "admin_email": "nope"}, nil, 400, "invalid_email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(tt.body, tt.header)
			if resp.StatusCode != tt.status || resp.ErrorCode() != tt.code {
				t.Fatalf("status %d code %q, want %d %q; body %.300s", resp.StatusCode, resp.ErrorCode(), tt.status, tt.code, resp.Body)
			}
		})
	}
	t.Run("nothing was written", func(t *testing.T) {
		resp := srv.Do(t, testutil.Request{Host: "localhost", Path: "/api/v1/platform/tenants", Header: auth})
		var body struct{ Tenants []struct{ Slug string } }
		resp.JSON(t, &body)
		for _, tn := range body.Tenants {
			if strings.HasPrefix(tn.Slug, "pol-") || strings.HasPrefix(tn.Slug, "em-") || strings.HasPrefix(tn.Slug, "long-") {
				t.Fatalf("refused request created tenant %s", tn.Slug)
			}
		}
	})
	t.Run("unknown route", func(t *testing.T) {
		resp := srv.Do(t, testutil.Request{Host: "localhost", Path: "/api/v1/nothing"})
		if resp.StatusCode != 404 || resp.ErrorCode() != "not_found" {
			t.Fatalf("status %d body %s", resp.StatusCode, resp.Body)
		}
	})
	t.Run("wrong method", func(t *testing.T) {
		resp := srv.Do(t, testutil.Request{Method: "DELETE", Host: "localhost", Path: "/api/v1/platform/tenants", Header: auth})
		if resp.StatusCode != 405 || resp.ErrorCode() != "method_not_allowed" {
			t.Fatalf("status %d body %s", resp.StatusCode, resp.Body)
		}
	})
}

func TestCrossOriginProtection(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t)
	body := map[string]string{"slug": testutil.UniqueSlug("csrf"), "name": "X"}
	tests := []struct {
		name   string
		header http.Header
		status int
	}{
		{"cross-site browser request", hdr("Sec-Fetch-Site", "cross-site"), 403},
		{"foreign origin", hdr("Origin", "https://evil.example"), 403},
		{"same-origin browser request", hdr("Sec-Fetch-Site", "same-origin"), 401}, // passes CSRF, then needs the token
		{"api client without browser headers", nil, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := srv.Do(t, testutil.Request{Method: "POST", Host: "localhost", Path: "/api/v1/platform/tenants", Body: body, Header: tt.header})
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.status, resp.Body)
			}
			if tt.status == 403 && resp.ErrorCode() != "cross_origin_request" {
				t.Fatalf("code %q", resp.ErrorCode())
			}
		})
	}
}

func TestPlatformAPI(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t)
	slug := testutil.UniqueSlug("plat")
	create := map[string]any{"slug": slug, "name": "Platform Co", "admin_email": "it@plat.example",
		"policy": map[string]any{"signup": map[string]any{"enabled": false}}}

	for name, h := range map[string]http.Header{
		"no token":    nil,
		"wrong token": hdr("Authorization", "Bearer "+strings.Repeat("x", len(operatorToken))),
		"not bearer":  hdr("Authorization", "Basic "+operatorToken),
	} {
		resp := srv.Do(t, testutil.Request{Method: "POST", Host: "localhost", Path: "/api/v1/platform/tenants", Body: create, Header: h})
		if resp.StatusCode != 401 || resp.ErrorCode() != "unauthenticated" {
			t.Fatalf("%s: status %d body %s", name, resp.StatusCode, resp.Body)
		}
	}
	auth := hdr("Authorization", "Bearer "+operatorToken)
	resp := srv.Do(t, testutil.Request{Method: "POST", Host: "localhost", Path: "/api/v1/platform/tenants", Body: create, Header: auth})
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, resp.Body)
	}
	var created struct {
		Tenant struct {
			Slug   string
			Policy struct{ Signup struct{ Enabled bool } }
		}
		AdminUserID string `json:"admin_user_id"`
	}
	resp.JSON(t, &created)
	if created.Tenant.Slug != slug || created.Tenant.Policy.Signup.Enabled || created.AdminUserID == "" {
		t.Fatalf("created %s", resp.Body)
	}
	if r := srv.Do(t, testutil.Request{Method: "POST", Host: "localhost", Path: "/api/v1/platform/tenants", Body: create, Header: auth}); r.StatusCode != 409 || r.ErrorCode() != "tenant_exists" {
		t.Fatalf("duplicate: %d %s", r.StatusCode, r.Body)
	}
	if r := srv.Do(t, testutil.Request{Host: "localhost", Path: "/api/v1/platform/tenants/" + slug, Header: auth}); r.StatusCode != 200 {
		t.Fatalf("get: %d %s", r.StatusCode, r.Body)
	}
	if r := srv.Do(t, testutil.Request{Host: "localhost", Path: "/api/v1/platform/tenants/unknown-x", Header: auth}); r.StatusCode != 404 || r.ErrorCode() != "tenant_not_found" {
		t.Fatalf("get unknown: %d %s", r.StatusCode, r.Body)
	}
	// The platform API exists only on the base host.
	if r := srv.Do(t, testutil.Request{Host: slug + ".localhost", Path: "/api/v1/platform/tenants"}); r.StatusCode != 404 {
		t.Fatalf("platform API on a tenant host: %d %s", r.StatusCode, r.Body)
	}
	// There the operator token is just an invalid session token.
	if r := srv.Do(t, testutil.Request{Host: slug + ".localhost", Path: "/api/v1/platform/tenants", Header: auth}); r.StatusCode != 401 {
		t.Fatalf("operator token on a tenant host: %d %s", r.StatusCode, r.Body)
	}
	// The new tenant is served at once.
	if r := srv.Do(t, testutil.Request{Host: slug + ".localhost", Path: "/api/v1/tenant"}); r.StatusCode != 200 || !strings.Contains(string(r.Body), `"signup_enabled":false`) {
		t.Fatalf("new tenant: %d %s", r.StatusCode, r.Body)
	}
	// Offboarding: bad grace refused, then purged now.
	if r := srv.Do(t, testutil.Request{Method: "DELETE", Host: "localhost", Path: "/api/v1/platform/tenants/" + slug + "?grace=soon", Header: auth}); r.StatusCode != 400 {
		t.Fatalf("delete with a bad grace: %d", r.StatusCode)
	}
	if r := srv.Do(t, testutil.Request{Method: "DELETE", Host: "localhost", Path: "/api/v1/platform/tenants/" + slug + "?grace=0s", Header: auth}); r.StatusCode != 202 {
		t.Fatalf("delete: %d %s", r.StatusCode, r.Body)
	}
	if r := srv.Do(t, testutil.Request{Host: "localhost", Path: "/api/v1/platform/tenants/" + slug, Header: auth}); r.StatusCode != 404 {
		t.Fatalf("after purge: %d", r.StatusCode)
	}
}

func TestPlatformAPIDisabledWithoutToken(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t, testutil.WithConfig(func(c *config.Config) { c.OperatorToken = "" }))
	r := srv.Do(t, testutil.Request{Host: "localhost", Path: "/api/v1/platform/tenants", Header: hdr("Authorization", "Bearer ")})
	if r.StatusCode != 403 || r.ErrorCode() != "platform_api_disabled" {
		t.Fatalf("%d %s", r.StatusCode, r.Body)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d, testutil.WithConfig(func(c *config.Config) { c.MetricsAddr = "127.0.0.1:0" }))
	for _, host := range []string{"localhost", "acme-unknown.localhost", "10.1.2.3"} {
		if r := srv.Do(t, testutil.Request{Host: host, Path: "/healthz"}); r.StatusCode != 200 {
			t.Fatalf("healthz on %s: %d", host, r.StatusCode)
		}
	}
	if r := srv.Do(t, testutil.Request{Path: "/readyz"}); r.StatusCode != 200 {
		t.Fatalf("readyz: %d %s", r.StatusCode, r.Body)
	}
	// A schema this binary does not expect makes the node unready.
	if _, err := d.Admin.Exec(context.Background(), "UPDATE schema_migrations SET version = version + 1000"); err != nil {
		t.Fatal(err)
	}
	r := srv.Do(t, testutil.Request{Path: "/readyz"})
	if r.StatusCode != 503 || r.ErrorCode() != "not_ready" {
		t.Fatalf("readyz with a foreign schema: %d %s", r.StatusCode, r.Body)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	d := testutil.PackageDB(t)
	ln := freeAddr(t)
	srv := testutil.NewServer(t, d, testutil.WithConfig(func(c *config.Config) { c.MetricsAddr = ln }))
	ten := testutil.NewTenant(t, d, "metrics")
	srv.Do(t, testutil.Request{Host: ten.Slug + ".localhost", Path: "/api/v1/tenant"})
	var body string
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get("http://" + ln + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics listener: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, m := range []string{"http_server_request_duration_seconds", "go_goroutines"} {
		if !strings.Contains(body, m) {
			t.Errorf("metric %s missing from /metrics", m)
		}
	}
	// /metrics is not on the public listener.
	if r := srv.Do(t, testutil.Request{Host: "localhost", Path: "/metrics"}); r.StatusCode != 404 {
		t.Errorf("/metrics on the public listener: %d", r.StatusCode)
	}
}

// TestDevMailboxOnlyInDev: /_dev/mail exists only when the dev command configured a mailbox.
func TestDevMailboxOnlyInDev(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t, testutil.WithConfig(func(c *config.Config) { c.DevMailDir = "" }))
	ten := testutil.NewTenant(t, d, "nodev")
	for _, p := range []string{"/_dev/mail", "/_dev/mail.json"} {
		if r := srv.Do(t, testutil.Request{Host: ten.Slug + ".localhost", Path: p}); r.StatusCode != 404 {
			t.Fatalf("%s outside dev: %d", p, r.StatusCode)
		}
	}
}
