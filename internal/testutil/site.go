package testutil

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// Password is the password of every account a Site creates (User, Person, Signup).
const Password = "purple monkey dishwasher"

// TrustProxyHeaders makes the test client a trusted proxy: an X-Forwarded-For header
// ("X-Forwarded-For", "203.0.113.7" in a Site request) sets the client address.
var TrustProxyHeaders = WithConfig(func(c *config.Config) {
	c.TrustedProxies, _ = config.ParsePrefixes("127.0.0.1")
})

// Site is one tenant on a running server, seen from its own host: people with roles and
// sessions, JSON requests, form posts and page loads. A package whose tests need more (a
// database to read, a clock) embeds it.
type Site struct {
	Srv    *Server
	Tenant tenant.Tenant
	Host   string // the tenant's host, slug + ".localhost"
}

// SiteOption adjusts the tenant NewSite creates.
type SiteOption func(*tenant.CreateInput)

// SiteName gives the tenant its display name (pages and mail show it).
func SiteName(name string) SiteOption {
	return func(in *tenant.CreateInput) { in.Name = name }
}

// SitePolicy edits the tenant's policy, starting from the defaults; a nil edit keeps them.
func SitePolicy(edit func(*tenant.Policy)) SiteOption {
	return func(in *tenant.CreateInput) {
		if in.Policy == nil {
			p := tenant.DefaultPolicy()
			in.Policy = &p
		}
		if edit != nil {
			edit(in.Policy)
		}
	}
}

// NewSite creates a tenant with a unique slug starting with prefix through srv's app.
func NewSite(tb testing.TB, srv *Server, prefix string, opts ...SiteOption) *Site {
	tb.Helper()
	in := tenant.CreateInput{Slug: UniqueSlug(prefix), Name: "Test " + prefix}
	for _, o := range opts {
		o(&in)
	}
	c, err := srv.App.Tenants.Create(context.Background(), in)
	if err != nil {
		tb.Fatalf("create tenant: %v", err)
	}
	return &Site{Srv: srv, Tenant: c.Tenant, Host: c.Tenant.Slug + ".localhost"}
}

// On is the same tenant reached through another server on the same database (another
// node of the cluster).
func (s *Site) On(srv *Server) *Site {
	return &Site{Srv: srv, Tenant: s.Tenant, Host: s.Host}
}

// User creates a verified user with Password and the roles, and returns their id. Nobody
// signs in: see Person.
func (s *Site) User(tb testing.TB, email string, roles ...string) uuid.UUID {
	tb.Helper()
	ctx := context.Background()
	u, err := s.Srv.App.Accounts.CreateVerifiedUser(ctx, s.Tenant, email, Password, "")
	if err != nil {
		tb.Fatalf("create user %s: %v", email, err)
	}
	for _, r := range roles {
		if err := s.Srv.App.Store().InTenant(ctx, s.Tenant.ID, func(q *sqlcgen.Queries) error { return authz.Grant(ctx, q, u.ID, r) }); err != nil {
			tb.Fatalf("grant %s to %s: %v", r, email, err)
		}
	}
	return u.ID
}

// Person is User signed in: it returns the user's id and a session token.
func (s *Site) Person(tb testing.TB, email string, roles ...string) (uuid.UUID, string) {
	tb.Helper()
	id := s.User(tb, email, roles...)
	return id, s.Login(tb, email, Password)
}

// Do sends a JSON request to the tenant's host, with token as the bearer token unless it
// is "". body is as in Request; header holds name, value pairs.
func (s *Site) Do(tb testing.TB, method, path, token string, body any, header ...string) *Response {
	tb.Helper()
	h := pairs(header)
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return s.Srv.Do(tb, Request{Method: method, Host: s.Host, Path: path, Body: body, Header: h})
}

// Form posts values as an HTML form does (a browser without JavaScript); header pairs
// are added, or replace the form's own Content-Type and Accept.
func (s *Site) Form(tb testing.TB, path string, values url.Values, header ...string) *Response {
	tb.Helper()
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"text/html"}}
	for k, v := range pairs(header) {
		h[k] = v
	}
	return s.Srv.Do(tb, Request{Method: http.MethodPost, Host: s.Host, Path: path, Body: values.Encode(), Header: h})
}

// Page loads a page as a browser does; header pairs are added (a "Cookie" signs in).
func (s *Site) Page(tb testing.TB, path string, header ...string) *Response {
	tb.Helper()
	h := http.Header{"Accept": {"text/html"}}
	for k, v := range pairs(header) {
		h[k] = v
	}
	return s.Srv.Do(tb, Request{Host: s.Host, Path: path, Header: h})
}

// Login signs email in with password through the API and returns the session token; it
// fails the test unless that succeeds without a second factor.
func (s *Site) Login(tb testing.TB, email, password string, header ...string) string {
	tb.Helper()
	tok, _ := s.LoginSession(tb, email, password, header...)
	return tok
}

// LoginSession is Login returning the session's id too.
func (s *Site) LoginSession(tb testing.TB, email, password string, header ...string) (token, id string) {
	tb.Helper()
	r := s.Do(tb, http.MethodPost, "/api/v1/login", "", map[string]string{"email": email, "password": password}, header...)
	var b struct{ Session struct{ ID, Token string } }
	if r.StatusCode == http.StatusOK {
		r.JSON(tb, &b)
	}
	if b.Session.Token == "" {
		tb.Fatalf("login %s: %d %s", email, r.StatusCode, r.Body)
	}
	return b.Session.Token, b.Session.ID
}

// Signup signs email up with Password through the API (the answer is 202 whether or not
// the address has an account).
func (s *Site) Signup(tb testing.TB, email string) {
	tb.Helper()
	r := s.Do(tb, http.MethodPost, "/api/v1/signup", "", map[string]string{"email": email, "password": Password})
	if r.StatusCode != http.StatusAccepted {
		tb.Fatalf("signup %s: %d %s", email, r.StatusCode, r.Body)
	}
}

// SignupVerified is Signup followed by the confirmation link of the mail it sends.
func (s *Site) SignupVerified(tb testing.TB, email string) {
	tb.Helper()
	s.Signup(tb, email)
	tok := TokenFrom(tb, s.Srv.WaitMail(tb, email, "Confirm your email address"), "/verify")
	r := s.Do(tb, http.MethodPost, "/api/v1/verification/confirm", "", map[string]string{"token": tok})
	if r.StatusCode != http.StatusOK {
		tb.Fatalf("confirm %s: %d %s", email, r.StatusCode, r.Body)
	}
}

// pairs makes a header of name, value pairs (a last name without a value is dropped).
func pairs(kv []string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// Clock is an application clock a test moves (config.Config.Now): past a delay, a lock or
// an expiry, instead of sleeping.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock that stands at the current time until advanced.
func NewClock() *Clock { return &Clock{t: time.Now()} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// WithClock runs the server on clk instead of the wall clock.
func WithClock(clk *Clock) ServerOption {
	return WithConfig(func(c *config.Config) { c.Now = clk.Now })
}

// QueuedMail is one row of a tenant's mail outbox with the number of River send jobs for it.
type QueuedMail struct {
	Template, To string
	Jobs         int
}

// QueuedMails returns the tenant's outbox in the order the mails were enqueued, each with
// its send jobs: what the committed transactions will ever send, whether or not a worker
// has delivered it yet.
func (d *DB) QueuedMails(tb testing.TB, tenantID uuid.UUID) []QueuedMail {
	tb.Helper()
	rows, err := d.Admin.Query(context.Background(), `
		SELECT o.template, o.to_address, count(j.id)
		FROM mail_outbox o
		LEFT JOIN river_job j ON j.kind = 'mail.send' AND j.args->>'tenant_id' = o.tenant_id::text AND j.args->>'outbox_id' = o.id::text
		WHERE o.tenant_id = $1
		GROUP BY o.tenant_id, o.id ORDER BY o.created_at, o.id`, tenantID)
	if err != nil {
		tb.Fatalf("read the outbox: %v", err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[QueuedMail])
	if err != nil {
		tb.Fatalf("read the outbox: %v", err)
	}
	return got
}

// AuditCount counts the tenant's audit events of action, only those whose details.reason
// is reason unless reason is "".
func (d *DB) AuditCount(tb testing.TB, tenantID uuid.UUID, action, reason string) int {
	tb.Helper()
	var n int
	err := d.Admin.QueryRow(context.Background(), `SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND action = $2
		AND ($3 = '' OR details->>'reason' = $3)`, tenantID, action, reason).Scan(&n)
	if err != nil {
		tb.Fatalf("count %s events: %v", action, err)
	}
	return n
}
