package testutil

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/mail"
)

// Mail is a captured message.
type Mail = mail.Captured

// WaitMail waits (up to 10 s) for a message to `to` whose subject contains subject, and
// returns the newest such message. It fails the test when none arrives.
func (s *Server) WaitMail(tb testing.TB, to, subject string) Mail {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		msgs, err := mail.ReadDir(s.MailDir)
		if err != nil {
			tb.Fatalf("read mailbox: %v", err)
		}
		for _, m := range msgs {
			if strings.EqualFold(m.To, to) && strings.Contains(m.Subj, subject) {
				return m
			}
		}
		if time.Now().After(deadline) {
			var got []string
			for _, m := range msgs {
				got = append(got, m.To+": "+m.Subj)
			}
			tb.Fatalf("no mail to %s with subject %q; mailbox: %v", to, subject, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Mails returns every captured message to `to`.
func (s *Server) Mails(tb testing.TB, to string) []Mail {
	tb.Helper()
	msgs, err := mail.ReadDir(s.MailDir)
	if err != nil {
		tb.Fatalf("read mailbox: %v", err)
	}
	var out []Mail
	for _, m := range msgs {
		if strings.EqualFold(m.To, to) {
			out = append(out, m)
		}
	}
	return out
}

// TokenFrom returns the token query parameter of the first link in m whose path is path.
func TokenFrom(tb testing.TB, m Mail, path string) string {
	tb.Helper()
	for _, l := range m.Links {
		u, err := url.Parse(l)
		if err == nil && u.Path == path && u.Query().Get("token") != "" {
			return u.Query().Get("token")
		}
	}
	tb.Fatalf("no %s link in mail %q: %v", path, m.Subj, m.Links)
	return ""
}
