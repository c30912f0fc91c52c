package sso_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/sso/samltest"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// TestCertificateExpiryNotices: an IdP certificate expiring within 30 days shows on the
// portal overview and is mailed to the owners once per threshold (30, then 7 days).
func TestCertificateExpiryNotices(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t)
	s := newSite(t, srv, d)
	s.person(t, "owner@certs.example", authz.Owner)
	idp, err := samltest.NewIdPWithValidity("https://idp.example/expiring", time.Now().Add(-24*time.Hour), time.Now().Add(20*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	c := s.connect(t, idp, nil)
	notices := func() {
		if err := srv.App.SSO.CertificateNotices(t.Context(), []tenant.Tenant{s.t}); err != nil {
			t.Fatal(err)
		}
	}
	gauge := func(expired, within7d, within30d int) {
		t.Helper()
		if err := srv.App.SSO.CountCertificateExpiries(t.Context(), []tenant.Tenant{s.t}, []tenant.Tenant{s.t}); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		srv.App.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		for kind, want := range map[string]int{"expired": expired, "within_7d": within7d, "within_30d": within30d} {
			re := regexp.MustCompile(`(?m)^gatehouse_sso_certificates\{[^}]*expiry="` + kind + `"[^}]*\} (\d+)$`)
			m := re.FindStringSubmatch(rec.Body.String())
			if m == nil || m[1] != strconv.Itoa(want) {
				t.Fatalf("gatehouse_sso_certificates{expiry=%q}: %v, want %d", kind, m, want)
			}
		}
	}
	gauge(0, 0, 1)
	notices()
	notices() // the 30-day notice goes out once
	m := srv.WaitMail(t, "owner@certs.example", "signing certificate")
	if !strings.Contains(m.Text, "/admin/sso/"+c.ID) {
		t.Fatalf("notice without a link to the connection: %s", m.Text)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(srv.Mails(t, "owner@certs.example")); n != 1 {
		t.Fatalf("%d notices, want 1", n)
	}
	if got := srv.Mails(t, s.adminEmail); len(got) != 0 {
		t.Fatalf("admins who are not owners got %d notices", len(got))
	}
	page := s.call(t, "GET", "/admin", s.admin, nil)
	if page.StatusCode != http.StatusOK || !strings.Contains(string(page.Body), "signing certificate expires on") {
		t.Fatalf("overview: %d %s", page.StatusCode, page.Body)
	}
	// Inside 7 days: the second notice.
	if _, err := d.Admin.Exec(t.Context(), `UPDATE sso_connections SET idp_cert_not_after = now() + interval '5 days' WHERE id = $1`, c.ID); err != nil {
		t.Fatal(err)
	}
	gauge(0, 1, 0)
	notices()
	notices()
	deadline := time.Now().Add(5 * time.Second)
	for len(srv.Mails(t, "owner@certs.example")) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(srv.Mails(t, "owner@certs.example")); n != 2 {
		t.Fatalf("%d notices after the 7-day threshold, want 2", n)
	}
}
