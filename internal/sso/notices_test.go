package sso_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/mail"
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
	// CertificateNotices returned after its transaction committed, and the mail is enqueued
	// in it: the outbox holds every notice it will ever send. Admins who are not owners get
	// none.
	notice := queuedMail{Template: mail.TplSSOCertificate, To: "owner@certs.example", Jobs: 1}
	if diff := cmp.Diff([]queuedMail{notice}, s.queuedMails(t)); diff != "" {
		t.Fatalf("mails queued after two runs at the 30-day threshold (-want +got):\n%s", diff)
	}
	if got := s.certNoticeDays(t, c.ID); got != 30 {
		t.Fatalf("cert_notice_days %d after the 30-day notice, want 30", got)
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
	if diff := cmp.Diff([]queuedMail{notice, notice}, s.queuedMails(t)); diff != "" {
		t.Fatalf("mails queued after two more runs at the 7-day threshold (-want +got):\n%s", diff)
	}
	if got := s.certNoticeDays(t, c.ID); got != 7 {
		t.Fatalf("cert_notice_days %d after the 7-day notice, want 7", got)
	}
}

// queuedMail is one row of the mail outbox with the number of River send jobs for it.
type queuedMail struct {
	Template, To string
	Jobs         int
}

// queuedMails returns the tenant's outbox in the order the mails were enqueued, each with
// its send jobs: what the committed transactions will ever send, whether or not a worker
// has delivered it yet.
func (s *site) queuedMails(t testing.TB) []queuedMail {
	t.Helper()
	rows, err := s.d.Admin.Query(context.Background(), `
		SELECT o.template, o.to_address, count(j.id)
		FROM mail_outbox o
		LEFT JOIN river_job j ON j.kind = 'mail.send' AND j.args->>'tenant_id' = o.tenant_id::text AND j.args->>'outbox_id' = o.id::text
		WHERE o.tenant_id = $1
		GROUP BY o.tenant_id, o.id ORDER BY o.created_at, o.id`, s.t.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[queuedMail])
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// certNoticeDays is the threshold (30 or 7 days) of the last expiry notice of a connection.
func (s *site) certNoticeDays(t testing.TB, connID string) int {
	t.Helper()
	var days *int
	if err := s.d.Admin.QueryRow(context.Background(), `SELECT cert_notice_days FROM sso_connections WHERE tenant_id = $1 AND id = $2`, s.t.ID, connID).Scan(&days); err != nil {
		t.Fatal(err)
	}
	if days == nil {
		return 0
	}
	return *days
}
