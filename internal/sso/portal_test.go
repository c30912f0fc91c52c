package sso_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
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
