package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/smtp"
	"net/textproto"
	"net/url"
	"time"
)

// SMTPSender delivers over SMTP: smtp://user:pass@host:587 upgrades with STARTTLS (required
// unless the host is a loopback address), smtps://user:pass@host:465 uses implicit TLS.
type SMTPSender struct {
	addr     string
	host     string
	implicit bool
	auth     smtp.Auth
}

// NewSMTPSender parses the GATEHOUSE_MAIL URL.
func NewSMTPSender(spec string) (*SMTPSender, error) {
	u, err := url.Parse(spec)
	if err != nil || u.Hostname() == "" {
		return nil, errors.New("GATEHOUSE_MAIL: invalid smtp URL")
	}
	s := &SMTPSender{host: u.Hostname(), implicit: u.Scheme == "smtps"}
	port := u.Port()
	if port == "" {
		port = map[bool]string{true: "465", false: "587"}[s.implicit]
	}
	s.addr = net.JoinHostPort(s.host, port)
	if u.User != nil {
		pw, _ := u.User.Password()
		s.auth = smtp.PlainAuth("", u.User.Username(), pw, s.host)
	}
	return s, nil
}

// Send delivers one message.
func (s *SMTPSender) Send(ctx context.Context, m Message) (string, error) {
	raw, err := Build(m, time.Now())
	if err != nil {
		return "", err
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	var conn net.Conn
	if s.implicit {
		conn, err = (&tls.Dialer{NetDialer: &d, Config: &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12}}).DialContext(ctx, "tcp", s.addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", s.addr)
	}
	if err != nil {
		return "", fmt.Errorf("smtp: connect: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(time.Minute))
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		conn.Close()
		return "", fmt.Errorf("smtp: hello: %w", err)
	}
	defer c.Close()
	if !s.implicit {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(&tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12}); err != nil {
				return "", fmt.Errorf("smtp: starttls: %w", err)
			}
		} else if !isLoopback(s.host) {
			return "", errors.New("smtp: server does not offer STARTTLS; refusing to send in clear text")
		}
	}
	if s.auth != nil {
		if err := c.Auth(s.auth); err != nil {
			return "", classifySMTP(fmt.Errorf("smtp: auth: %w", err))
		}
	}
	if err := c.Mail(extractAddr(m.From)); err != nil {
		return "", classifySMTP(fmt.Errorf("smtp: MAIL FROM: %w", err))
	}
	if err := c.Rcpt(extractAddr(m.To)); err != nil {
		return "", classifySMTP(fmt.Errorf("smtp: RCPT TO: %w", err))
	}
	w, err := c.Data()
	if err != nil {
		return "", classifySMTP(fmt.Errorf("smtp: DATA: %w", err))
	}
	if _, err := w.Write(raw); err != nil {
		return "", fmt.Errorf("smtp: write: %w", err)
	}
	if err := w.Close(); err != nil {
		return "", classifySMTP(fmt.Errorf("smtp: end of data: %w", err))
	}
	_ = c.Quit()
	return "", nil
}

// classifySMTP: 5xx replies are permanent, 4xx temporary.
func classifySMTP(err error) error {
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 {
		return &PermanentError{Err: err}
	}
	return err
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func extractAddr(s string) string {
	if a, err := parseAddress(s); err == nil {
		return a
	}
	return s
}
