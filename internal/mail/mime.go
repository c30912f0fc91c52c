package mail

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
)

// Build renders m as an RFC 5322 message with a multipart/alternative text and HTML body.
func Build(m Message, now time.Time) ([]byte, error) {
	for _, h := range []string{m.From, m.To, m.Subject} {
		if strings.ContainsAny(h, "\r\n") {
			return nil, &PermanentError{Err: fmt.Errorf("header value contains a line break")}
		}
	}
	if _, err := mail.ParseAddress(m.To); err != nil {
		return nil, &PermanentError{Err: fmt.Errorf("recipient: %w", err)}
	}
	var rb [12]byte
	_, _ = rand.Read(rb[:])
	boundary := "gatehouse-" + hex.EncodeToString(rb[:])
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\n", m.From)
	fmt.Fprintf(&b, "To: %s\r\n", m.To)
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", m.Subject))
	fmt.Fprintf(&b, "Date: %s\r\n", now.UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@gatehouse>\r\n", hex.EncodeToString(rb[:]))
	b.WriteString("MIME-Version: 1.0\r\n")
	fmt.Fprintf(&b, "Content-Type: multipart/alternative; boundary=%q\r\n\r\n", boundary)
	for _, part := range []struct{ ctype, body string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		fmt.Fprintf(&b, "--%s\r\nContent-Type: %s; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n", boundary, part.ctype)
		qp := quotedprintable.NewWriter(&b)
		if _, err := qp.Write([]byte(part.body)); err != nil {
			return nil, err
		}
		qp.Close()
		b.WriteString("\r\n")
	}
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return b.Bytes(), nil
}

func parseAddress(s string) (string, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", err
	}
	return a.Address, nil
}
