package sso_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestPortalUploadAndPostBinding: the portal creates a connection from an uploaded
// metadata file and shows the values to copy; an IdP that only offers HTTP-POST gets an
// auto-posting form whose CSP allows a form to that IdP only.
func TestPortalUploadAndPostBinding(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t)
	s := newSite(t, srv, d)
	idp := mustIdP(t, "https://post-only.example/idp")

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("name", "Uploaded IdP")
	_ = mw.WriteField("provider", "generic")
	_ = mw.WriteField("domains", "upload.example, second.example")
	fw, _ := mw.CreateFormFile("idp_metadata_file", "metadata.xml")
	_, _ = fw.Write(idp.Metadata("https://post-only.example/sso", ""))
	_ = mw.Close()
	r := srv.Do(t, testutil.Request{Method: "POST", Host: s.host, Path: "/admin/sso", Body: body.Bytes(),
		Header: http.Header{"Content-Type": {mw.FormDataContentType()}, "Authorization": {"Bearer " + s.admin}}})
	loc := r.Header.Get("Location")
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/admin/sso/") {
		t.Fatalf("upload: %d %s %s", r.StatusCode, loc, r.Body)
	}
	page := s.call(t, "GET", strings.TrimSuffix(loc, "?created=1"), s.admin, nil)
	for _, want := range []string{"/sso/saml/uploaded-idp/acs", "/sso/saml/uploaded-idp/metadata", "_gatehouse.upload.example", "data-copy", "Test connection"} {
		if !strings.Contains(string(page.Body), want) {
			t.Fatalf("connection page lacks %q", want)
		}
	}

	// A POST-only IdP (manual fields): the login answers with an auto-posting form.
	pem := "-----BEGIN CERTIFICATE-----\n" + b64(idp.CertDER) + "\n-----END CERTIFICATE-----"
	c := s.createConn(t, map[string]any{"name": "Post Only", "idp_entity_id": idp.EntityID, "idp_sso_url": "https://post-only.example/sso",
		"idp_sso_binding": "post", "idp_certificates": []string{pem}})
	lr := s.call(t, "GET", "/sso/saml/"+c.Slug+"/login", "", nil)
	csp := lr.Header.Get("Content-Security-Policy")
	if lr.StatusCode != 200 || !strings.Contains(string(lr.Body), `action="https://post-only.example/sso"`) ||
		!strings.Contains(string(lr.Body), `name="SAMLRequest"`) || !strings.Contains(csp, "form-action https://post-only.example") {
		t.Fatalf("POST binding: %d %q %s", lr.StatusCode, csp, lr.Body)
	}
}

// TestPortalFieldErrors: the connection forms name a problem beside its field in words for
// people (not "Invalid …: field.path"), keep what was typed, and answer 4xx.
func TestPortalFieldErrors(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t)
	s := newSite(t, srv, d)
	form := func(path string, v url.Values) *testutil.Response {
		return s.call(t, "POST", path, s.admin, v.Encode(), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
	}
	first := form("/admin/sso", url.Values{"name": {"Okta"}, "provider": {"okta"}})
	if first.StatusCode != http.StatusSeeOther {
		t.Fatalf("create a draft: %d %s", first.StatusCode, first.Body)
	}
	connPath := strings.TrimSuffix(first.Header.Get("Location"), "?created=1")
	if page := s.call(t, "GET", first.Header.Get("Location"), s.admin, nil); !strings.Contains(string(page.Body), "Draft created") ||
		!strings.Contains(string(page.Body), `id="sso-test-pending"`) {
		t.Fatalf("draft page: %s", page.Body)
	}

	cases := []struct {
		name, path string
		form       url.Values
		status     int
		field      string // the error element beside the field
		want       string
	}{
		{"identifier taken", "/admin/sso", url.Values{"name": {"Okta two"}, "slug": {"okta"}, "provider": {"okta"}},
			http.StatusConflict, "sso-slug-error", "Another connection already uses this identifier."},
		{"name missing", "/admin/sso", url.Values{"name": {"  "}, "provider": {"okta"}},
			http.StatusBadRequest, "sso-name-error", "A name of 1 to 200 characters is required."},
		{"no metadata in step 2", connPath, url.Values{"step": {"metadata"}, "idp_metadata_url": {""}},
			http.StatusBadRequest, "sso-metadata-error", "Give the IdP&#39;s metadata URL"},
		{"unreadable metadata", connPath, url.Values{"step": {"metadata"}, "idp_metadata_xml": {`<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example/x"/>`}},
			http.StatusBadRequest, "sso-metadata-error", "The IdP metadata could not be read: no SAML 2.0 IDPSSODescriptor."},
		{"enabling a draft", connPath, url.Values{"settings": {"1"}, "name": {"Okta"}, "enabled": {"on"}},
			http.StatusConflict, "s-enabled-error", "This connection has no IdP metadata yet"},
		{"bad landing path", connPath, url.Values{"settings": {"1"}, "name": {"Okta"}, "default_redirect": {"https://evil.example/"}},
			http.StatusBadRequest, "s-redirect-error", "A path on this host, such as /."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := form(tc.path, tc.form)
			body := string(r.Body)
			if r.StatusCode != tc.status || !strings.Contains(body, `id="`+tc.field+`">`+tc.want) || strings.Contains(body, "(default_redirect)") {
				t.Fatalf("%d, want %d with %q beside the field:\n%s", r.StatusCode, tc.status, tc.want, body)
			}
		})
	}
	// What was typed stays in the form.
	r := form("/admin/sso", url.Values{"name": {"Okta two"}, "slug": {"okta"}, "provider": {"okta"}})
	if !strings.Contains(string(r.Body), `value="Okta two"`) || !strings.Contains(string(r.Body), `value="okta"`) {
		t.Fatalf("typed values lost: %s", r.Body)
	}
	// Deleting without the right identifier is refused and keeps the connection.
	if r := form(connPath+"/delete", url.Values{"confirm": {"okt"}}); r.StatusCode != http.StatusBadRequest ||
		!strings.Contains(string(r.Body), `id="sso-delete-error">Type the identifier okta exactly`) {
		t.Fatalf("wrong confirmation: %d %s", r.StatusCode, r.Body)
	}
	if r := s.call(t, "GET", connPath, s.admin, nil); r.StatusCode != 200 {
		t.Fatalf("connection after a refused delete: %d", r.StatusCode)
	}
}
