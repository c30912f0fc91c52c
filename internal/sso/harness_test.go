package sso_test

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/sso/samltest"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

const pw = "purple monkey dishwasher"

// site is one tenant on a running server, with an admin signed in.
type site struct {
	srv        *testutil.Server
	d          *testutil.DB
	t          tenant.Tenant
	host       string
	admin      string
	adminEmail string
}

func newServer(t testing.TB, opts ...testutil.ServerOption) (*testutil.Server, *testutil.DB) {
	t.Helper()
	d := testutil.FreshDB(t)
	// The test client is a trusted proxy: X-Forwarded-For sets the client address.
	opts = append([]testutil.ServerOption{testutil.WithConfig(func(c *config.Config) {
		c.TrustedProxies, _ = config.ParsePrefixes("127.0.0.1")
	})}, opts...)
	return testutil.NewServer(t, d, opts...), d
}

func newSite(t testing.TB, srv *testutil.Server, d *testutil.DB) *site {
	t.Helper()
	ctx := context.Background()
	c, err := srv.App.Tenants.Create(ctx, tenant.CreateInput{Slug: testutil.UniqueSlug("sso"), Name: "SSO Co"})
	if err != nil {
		t.Fatal(err)
	}
	s := &site{srv: srv, d: d, t: c.Tenant, host: c.Tenant.Slug + ".localhost"}
	s.adminEmail = "admin-" + uuid.NewString()[:8] + "@admin.example"
	s.admin = s.person(t, s.adminEmail, authz.Admin)
	return s
}

// person creates a verified password user with roles and returns a session token.
func (s *site) person(t testing.TB, email string, roles ...string) string {
	t.Helper()
	ctx := context.Background()
	u, err := s.srv.App.Accounts.CreateVerifiedUser(ctx, s.t, email, pw, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		if err := s.srv.App.Store().InTenant(ctx, s.t.ID, func(q *sqlcgen.Queries) error { return authz.Grant(ctx, q, u.ID, r) }); err != nil {
			t.Fatal(err)
		}
	}
	r := s.call(t, "POST", "/api/v1/login", "", map[string]string{"email": email, "password": pw}, http.Header{"X-Forwarded-For": {"203.0.113.9"}})
	if r.StatusCode != 200 {
		t.Fatalf("login %s: %d %s", email, r.StatusCode, r.Body)
	}
	var b struct{ Session struct{ Token string } }
	r.JSON(t, &b)
	return b.Session.Token
}

func (s *site) call(t testing.TB, method, path, tok string, body any, hdr ...http.Header) *testutil.Response {
	t.Helper()
	h := http.Header{}
	for _, x := range hdr {
		for k, v := range x {
			h[k] = v
		}
	}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	return s.srv.Do(t, testutil.Request{Method: method, Host: s.host, Path: path, Body: body, Header: h})
}

// conn is a connection as the admin API returns it.
type conn struct {
	ID            string `json:"id"`
	Slug          string `json:"slug"`
	SPEntityID    string `json:"sp_entity_id"`
	ACSURL        string `json:"acs_url"`
	SPMetadataURL string `json:"sp_metadata_url"`
	Status        string `json:"status"`
	MetadataError *string
	Domains       []struct {
		Domain      string `json:"domain"`
		Verified    bool   `json:"verified"`
		RecordName  string `json:"txt_record_name"`
		RecordValue string `json:"txt_record_value"`
	} `json:"domains"`
	IdP struct {
		EntityID     string `json:"entity_id"`
		Certificates []struct {
			SHA256 string `json:"sha256"`
		} `json:"certificates"`
	} `json:"idp"`
}

func (s *site) createConn(t testing.TB, body map[string]any) conn {
	t.Helper()
	r := s.call(t, "POST", "/api/v1/admin/sso/connections", s.admin, body)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("create connection: %d %s", r.StatusCode, r.Body)
	}
	var b struct{ Connection conn }
	r.JSON(t, &b)
	return b.Connection
}

func (s *site) getConn(t testing.TB, id string) conn {
	t.Helper()
	r := s.call(t, "GET", "/api/v1/admin/sso/connections/"+id, s.admin, nil)
	if r.StatusCode != 200 {
		t.Fatalf("get connection: %d %s", r.StatusCode, r.Body)
	}
	var b struct{ Connection conn }
	r.JSON(t, &b)
	return b.Connection
}

// pending is an SP-initiated login in flight: what the IdP received and the browser holds.
type pending struct {
	RequestID string
	Relay     string
	Browser   string
	Request   string // the AuthnRequest XML
}

// start begins an SP-initiated login as a browser would (optionally signed in).
var startN atomic.Int64

func (s *site) start(t testing.TB, path, tok string) pending {
	t.Helper()
	// Each start from its own documentation address: the per-address limit is not under test.
	n := startN.Add(1)
	r := s.call(t, "GET", path, tok, nil, http.Header{"X-Forwarded-For": {fmt.Sprintf("198.51.%d.%d", n/250%250, n%250+1)}})
	if r.StatusCode != http.StatusFound {
		t.Fatalf("GET %s: %d %s", path, r.StatusCode, r.Body)
	}
	loc, err := url.Parse(r.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	p := pending{Relay: loc.Query().Get("RelayState")}
	for _, c := range r.Cookies() {
		if c.Name == "__Host-gatehouse-saml" {
			p.Browser = c.Value
			if c.SameSite != http.SameSiteNoneMode || !c.Secure || !c.HttpOnly {
				t.Fatalf("browser-binding cookie must be SameSite=None; Secure; HttpOnly: %+v", c)
			}
		}
	}
	raw, err := base64.StdEncoding.DecodeString(loc.Query().Get("SAMLRequest"))
	if err != nil {
		t.Fatal(err)
	}
	xmlBytes, err := io.ReadAll(flate.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	p.Request = string(xmlBytes)
	var req struct {
		ID string `xml:"ID,attr"`
	}
	if err := xml.Unmarshal(xmlBytes, &req); err != nil {
		t.Fatal(err)
	}
	p.RequestID = req.ID
	if p.RequestID == "" || p.Relay == "" || p.Browser == "" {
		t.Fatalf("incomplete start: %+v", p)
	}
	if strings.Contains(p.Relay, "/") {
		t.Fatalf("RelayState must be opaque, got %q", p.Relay)
	}
	return p
}

// post delivers a SAML response to the ACS as the browser would.
func (s *site) post(t testing.TB, slug string, doc []byte, relay, browser string) *testutil.Response {
	t.Helper()
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {"https://idp.example"}, "Sec-Fetch-Site": {"cross-site"}}
	if browser != "" {
		h.Set("Cookie", "__Host-gatehouse-saml="+browser)
	}
	return s.srv.Do(t, testutil.Request{Method: "POST", Host: s.host, Path: "/sso/saml/" + slug + "/acs",
		Body: samltest.PostForm("", doc, relay).Encode(), Header: h})
}

// sessionToken returns the session cookie an ACS answer set ("" when none).
func sessionToken(r *testutil.Response) string {
	for _, c := range r.Cookies() {
		if c.Name == "__Host-gatehouse" && c.Value != "" {
			return c.Value
		}
	}
	return ""
}

// ssoSessions counts the tenant's sessions created through SSO.
func (s *site) ssoSessions(t testing.TB) int {
	t.Helper()
	var n int
	if err := s.d.Admin.QueryRow(context.Background(), `SELECT count(*) FROM sessions WHERE tenant_id = $1 AND 'saml' = ANY(methods)`, s.t.ID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// lastFailure is the reason of the tenant's latest sso.login_failed audit event.
func (s *site) lastFailure(t testing.TB) string {
	t.Helper()
	var reason string
	err := s.d.Admin.QueryRow(context.Background(), `SELECT coalesce(details->>'reason', '') FROM audit_events
		WHERE tenant_id = $1 AND action = 'sso.login_failed' ORDER BY occurred_at DESC, id DESC LIMIT 1`, s.t.ID).Scan(&reason)
	if err != nil {
		return ""
	}
	return reason
}

// newIdP makes a test IdP and a connection to it.
func (s *site) connect(t testing.TB, idp *samltest.IdP, extra map[string]any) conn {
	t.Helper()
	body := map[string]any{"name": "Test IdP " + uuid.NewString()[:6], "provider": "generic",
		"idp_metadata_xml": string(idp.Metadata("https://idp.example/sso", "https://idp.example/slo"))}
	for k, v := range extra {
		body[k] = v
	}
	return s.createConn(t, body)
}

// response is a valid signed response to p for the connection.
func response(t testing.TB, idp *samltest.IdP, c conn, requestID, nameID string, mut func(*samltest.Response)) []byte {
	t.Helper()
	r := idp.NewResponse(time.Now(), c.ACSURL, c.SPEntityID, requestID, nameID)
	if mut != nil {
		mut(&r)
	}
	doc, err := idp.Sign(r, samltest.SignOptions{SignAssertion: true})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func mustIdP(t testing.TB, entity string) *samltest.IdP {
	t.Helper()
	idp, err := samltest.NewIdP(entity)
	if err != nil {
		t.Fatal(err)
	}
	return idp
}

func b64(der []byte) string { return base64.StdEncoding.EncodeToString(der) }
