// Package mail renders Gatehouse's emails from templates and delivers them: Amazon SES v2,
// SMTP, a directory of .eml files (dev), or the log. Delivery goes through the outbox
// (outbox.go): a row written in the same transaction as the change that causes the mail,
// and a River job that sends it with retries.
package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/google/uuid"
)

// Message is one email.
type Message struct {
	From             string
	To               string
	Subject          string
	Text             string
	HTML             string
	ConfigurationSet string // SES configuration set, optional
	// TenantID is whose mail it is. Providers never see it; the dev mailbox files it so a
	// tenant host shows only that tenant's mail.
	TenantID uuid.UUID
}

// Sender delivers messages. It returns the provider's message id.
type Sender interface {
	Send(ctx context.Context, m Message) (string, error)
}

// PermanentError marks a rejection that retrying cannot fix (invalid recipient, unverified
// sender, message rejected): the job stops instead of retrying.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// IsPermanent reports whether err is a permanent rejection.
func IsPermanent(err error) bool {
	var pe *PermanentError
	return errors.As(err, &pe)
}

// NewSender builds the sender named by GATEHOUSE_MAIL: "ses", "smtp://…", "smtps://…",
// "dir:/path" or "log".
func NewSender(ctx context.Context, spec string, logger *slog.Logger) (Sender, error) {
	switch {
	case spec == "" || spec == "log":
		return &LogSender{Logger: logger}, nil
	case spec == "ses":
		return NewSESSender(ctx)
	case strings.HasPrefix(spec, "smtp://"), strings.HasPrefix(spec, "smtps://"):
		return NewSMTPSender(spec)
	case strings.HasPrefix(spec, "dir:"):
		return NewDirSender(strings.TrimPrefix(spec, "dir:"))
	}
	return nil, fmt.Errorf("GATEHOUSE_MAIL: %q is not ses, smtp://…, smtps://…, dir:/path or log", spec)
}

// LogSender writes a line per message (recipient and subject only: bodies hold one-time
// links) and delivers nothing. For servers that have no mail configured yet.
type LogSender struct{ Logger *slog.Logger }

// Send logs the message.
func (s *LogSender) Send(ctx context.Context, m Message) (string, error) {
	s.Logger.WarnContext(ctx, "mail not delivered: GATEHOUSE_MAIL=log", "to_domain", domainOf(m.To), "subject", m.Subject)
	return "log", nil
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return ""
}
