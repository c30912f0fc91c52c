package sso_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestMetadataURLRefresh: a connection made from a metadata URL on a local HTTPS server;
// the periodic refresh picks up the IdP's new certificate (rotation: logins signed with
// the new key work); a failed refresh keeps the last good metadata and tells the admin.
func TestMetadataURLRefresh(t *testing.T) {
	t.Parallel()
	idp := mustIdP(t, "https://idp.example/rotating")
	var mu sync.Mutex
	doc, status := idp.Metadata("https://idp.example/sso", ""), 200
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(status)
		_, _ = w.Write(doc)
	}))
	t.Cleanup(ts.Close)
	srv, d := newServer(t, testutil.WithConfig(func(c *config.Config) { c.OutboundRootCAs = testutil.CertPool(ts); c.OutboundAllowPrivate = true }))
	s := newSite(t, srv, d)
	c := s.createConn(t, map[string]any{"name": "Rotating", "idp_metadata_url": ts.URL + "/metadata"})
	oldFP := c.IdP.Certificates[0].SHA256

	// The IdP rotates its key and publishes the new certificate.
	rotated := mustIdP(t, idp.EntityID)
	mu.Lock()
	doc = rotated.Metadata("https://idp.example/sso", "")
	mu.Unlock()
	refresh := func() error {
		tenants, err := srv.App.Tenants.List(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return srv.App.SSO.RefreshMetadata(t.Context(), []tenant.Tenant{findTenant(tenants, s.t.Slug)})
	}
	if err := refresh(); err != nil {
		t.Fatal(err)
	}
	c = s.getConn(t, c.ID)
	if c.IdP.Certificates[0].SHA256 == oldFP || c.MetadataError != nil {
		t.Fatalf("refresh did not pick up the new certificate: %+v", c)
	}
	p := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
	if r := s.post(t, c.Slug, response(t, rotated, c, p.RequestID, "rot@example.org", nil), p.Relay, p.Browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("login with the rotated key: %d %s", r.StatusCode, r.Body)
	}

	// The IdP's metadata endpoint breaks: the last good metadata stays, with a warning.
	for _, broken := range []struct {
		status int
		body   []byte
	}{{500, []byte("oops")}, {200, []byte("<not-metadata/>")}} {
		mu.Lock()
		status, doc = broken.status, broken.body
		mu.Unlock()
		if err := refresh(); err != nil {
			t.Fatalf("refresh reports per-connection failures on the connection, not as an error: %v", err)
		}
		got := s.getConn(t, c.ID)
		if got.IdP.Certificates[0].SHA256 != c.IdP.Certificates[0].SHA256 {
			t.Fatal("a failed refresh replaced the metadata")
		}
		var body struct {
			Connection struct {
				MetadataError *string `json:"metadata_error"`
			}
		}
		s.call(t, "GET", "/api/v1/admin/sso/connections/"+c.ID, s.admin, nil).JSON(t, &body)
		if body.Connection.MetadataError == nil || *body.Connection.MetadataError == "" {
			t.Fatalf("no warning for the admin after a %d", broken.status)
		}
		p := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
		if r := s.post(t, c.Slug, response(t, rotated, c, p.RequestID, "rot@example.org", nil), p.Relay, p.Browser); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("login after a failed refresh: %d", r.StatusCode)
		}
	}
	page := s.call(t, "GET", "/admin/sso/"+c.ID, s.admin, nil)
	if !strings.Contains(string(page.Body), "last metadata refresh failed") {
		t.Fatalf("portal does not show the refresh failure: %d", page.StatusCode)
	}
}

// TestMetadataURLRules: outside dev, metadata URLs must be https and public.
func TestMetadataURLRules(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t)
	s := newSite(t, srv, d)
	for _, u := range []string{"http://idp.example/metadata", "https://127.0.0.1:1/metadata", "https://10.1.2.3/metadata", "https://[::1]:1/metadata", "file:///etc/passwd"} {
		r := s.call(t, "POST", "/api/v1/admin/sso/connections", s.admin, map[string]any{"name": "Bad", "idp_metadata_url": u})
		if r.StatusCode != 400 || r.ErrorCode() != "metadata_fetch_failed" {
			t.Errorf("%s: %d %s", u, r.StatusCode, r.Body)
		}
	}
}

func findTenant(ts []tenant.Tenant, slug string) tenant.Tenant {
	for _, t := range ts {
		if t.Slug == slug {
			return t
		}
	}
	return tenant.Tenant{}
}
