package mail_test

import (
	"context"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/mail"
)

func TestDirSenderRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := mail.NewDirSender(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := mail.Message{From: "Acme <no-reply@acme.example>", To: "bob@example.com", Subject: "Bestätigen Sie — ✓",
		Text: "Hello Bob,\nopen https://acme.example.com/verify?token=abc_DEF-123 now. A long line " + strings.Repeat("x", 200),
		HTML: `<p>Hello <a href="https://acme.example.com/verify?token=abc_DEF-123">confirm</a></p>`}
	if _, err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got, err := mail.ReadDir(dir)
	if err != nil || len(got) != 1 {
		t.Fatalf("read: %v %d", err, len(got))
	}
	c := got[0]
	if c.To != m.To || c.Subj != m.Subject || strings.TrimRight(c.Text, "\r\n") != m.Text || strings.TrimRight(c.HTML, "\r\n") != m.HTML {
		t.Fatalf("round trip changed the message:\n%+v", c)
	}
	if len(c.Links) != 1 || c.Links[0] != "https://acme.example.com/verify?token=abc_DEF-123" {
		t.Fatalf("links: %v", c.Links)
	}
}

func TestBuildRefusesHeaderInjection(t *testing.T) {
	for _, m := range []mail.Message{
		{From: "a@example.com", To: "b@example.com\r\nBcc: evil@example.com", Subject: "x"},
		{From: "a@example.com", To: "b@example.com", Subject: "x\r\nBcc: evil@example.com"},
		{From: "a@example.com", To: "not an address", Subject: "x"},
	} {
		if _, err := mail.Build(m, timeNow()); err == nil || !mail.IsPermanent(err) {
			t.Errorf("Build(%q, %q) = %v, want a permanent error", m.To, m.Subject, err)
		}
	}
}

func TestTemplatesRender(t *testing.T) {
	ts, err := mail.LoadTemplates()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{mail.TplVerifyEmail, mail.TplSignupExisting, mail.TplResetPassword, mail.TplPasswordChanged, mail.TplChangeEmail, mail.TplEmailChanged} {
		subj, text, html, err := ts.Render(name, mail.Data{Tenant: `Acme <script>`, Email: "a@example.com", NewEmail: "b@example.com",
			Link: "https://acme.example.com/x?token=t", Link2: "https://acme.example.com/y", Expires: "24 hours"})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.Contains(subj, "Acme") || !strings.Contains(text, "https://acme.example.com/") || !strings.Contains(html, "https://acme.example.com/") {
			t.Errorf("%s: subject %q, text %q", name, subj, text)
		}
		if strings.Contains(html, "<script>") {
			t.Errorf("%s: tenant name not escaped in HTML", name)
		}
	}
}
