package account_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// env is a running server and one tenant of its own, with the database to check rows in.
type env struct {
	*testutil.Site
	d *testutil.DB
}

// newEnv gives each test a database of its own: servers sharing a database share its job
// queue, so one server's worker could deliver another's mail into its own mailbox. The
// server trusts the test client as a proxy: an X-Forwarded-For header sets the client
// address.
func newEnv(t testing.TB, edit func(*tenant.Policy), opts ...testutil.ServerOption) *env {
	t.Helper()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d, append([]testutil.ServerOption{testutil.TrustProxyHeaders}, opts...)...)
	return &env{Site: testutil.NewSite(t, srv, "acct", testutil.SiteName("Acme Test"), testutil.SitePolicy(edit)), d: d}
}

func (e *env) expect(t testing.TB, r *testutil.Response, status int, code string) {
	t.Helper()
	if r.StatusCode != status || r.ErrorCode() != code {
		t.Fatalf("%s %s: status %d code %q, want %d %q; body %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, r.ErrorCode(), status, code, r.Body)
	}
}

const goodPassword = testutil.Password

func (e *env) admin(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := e.d.Admin.Exec(context.Background(), sql, args...); err != nil {
		t.Fatal(err)
	}
}

func ago(d time.Duration) time.Time { return time.Now().Add(-d) }
