package account_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// env is a running server and one tenant of its own.
type env struct {
	srv    *testutil.Server
	d      *testutil.DB
	tenant tenant.Tenant
	host   string
}

// newEnv gives each test a database of its own: servers sharing a database share its job
// queue, so one server's worker could deliver another's mail into its own mailbox.
func newEnv(t testing.TB, edit func(*tenant.Policy), opts ...testutil.ServerOption) *env {
	t.Helper()
	d := testutil.FreshDB(t)
	opts = append([]testutil.ServerOption{testutil.WithConfig(func(c *config.Config) {
		c.TrustedProxies, _ = config.ParsePrefixes("127.0.0.1")
	})}, opts...)
	srv := testutil.NewServer(t, d, opts...)
	p := tenant.DefaultPolicy()
	if edit != nil {
		edit(&p)
	}
	c, err := srv.App.Tenants.Create(context.Background(), tenant.CreateInput{Slug: testutil.UniqueSlug("acct"), Name: "Acme Test", Policy: &p})
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, d: d, tenant: c.Tenant, host: c.Tenant.Slug + ".localhost"}
}

// call sends a JSON request to the tenant host. ip, when set, is the client address
// (the test server trusts 127.0.0.1 as a proxy).
func (e *env) call(t testing.TB, method, path string, body any, bearer string, ip ...string) *testutil.Response {
	t.Helper()
	h := http.Header{}
	if bearer != "" {
		h.Set("Authorization", "Bearer "+bearer)
	}
	if len(ip) > 0 {
		h.Set("X-Forwarded-For", ip[0])
	}
	return e.srv.Do(t, testutil.Request{Method: method, Host: e.host, Path: path, Body: body, Header: h})
}

func (e *env) expect(t testing.TB, r *testutil.Response, status int, code string) {
	t.Helper()
	if r.StatusCode != status || r.ErrorCode() != code {
		t.Fatalf("%s %s: status %d code %q, want %d %q; body %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, r.ErrorCode(), status, code, r.Body)
	}
}

const goodPassword = "purple monkey dishwasher"

func (e *env) signup(t testing.TB, email string) {
	t.Helper()
	e.expect(t, e.call(t, "POST", "/api/v1/signup", map[string]string{"email": email, "password": goodPassword}, ""), 202, "")
}

// signupVerified signs up and confirms the address, returning nothing.
func (e *env) signupVerified(t testing.TB, email string) {
	t.Helper()
	e.signup(t, email)
	m := e.srv.WaitMail(t, email, "Confirm your email address")
	e.expect(t, e.call(t, "POST", "/api/v1/verification/confirm", map[string]string{"token": testutil.TokenFrom(t, m, "/verify")}, ""), 200, "")
}

// login returns the session token.
func (e *env) login(t testing.TB, email, pw string) string {
	t.Helper()
	r := e.call(t, "POST", "/api/v1/login", map[string]string{"email": email, "password": pw}, "")
	e.expect(t, r, 200, "")
	var body struct{ Session struct{ Token string } }
	r.JSON(t, &body)
	if body.Session.Token == "" {
		t.Fatalf("login without token: %s", r.Body)
	}
	return body.Session.Token
}

func (e *env) admin(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := e.d.Admin.Exec(context.Background(), sql, args...); err != nil {
		t.Fatal(err)
	}
}

func ago(d time.Duration) time.Time { return time.Now().Add(-d) }
