package mail_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/mail"
)

// fakeSMTP is a minimal SMTP server on loopback that records one conversation.
type fakeSMTP struct {
	ln       net.Listener
	mu       sync.Mutex
	auth     string
	from, to string
	data     string
	rcptCode string // reply to RCPT TO, default "250 OK"
}

func newFakeSMTP(t *testing.T) *fakeSMTP {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSMTP{ln: ln, rcptCode: "250 OK"}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return f
}

func (f *fakeSMTP) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	w := func(s string) { _, _ = c.Write([]byte(s + "\r\n")) }
	w("220 fake ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		cmd := strings.ToUpper(line)
		f.mu.Lock()
		switch {
		case strings.HasPrefix(cmd, "EHLO"):
			w("250-fake\r\n250 AUTH PLAIN")
		case strings.HasPrefix(cmd, "AUTH PLAIN"):
			raw, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(line[len("AUTH PLAIN"):]))
			f.auth = string(raw)
			w("235 OK")
		case strings.HasPrefix(cmd, "MAIL FROM:"):
			f.from = line[len("MAIL FROM:"):]
			w("250 OK")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			f.to = line[len("RCPT TO:"):]
			w(f.rcptCode)
		case cmd == "DATA":
			w("354 go on")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil || l == ".\r\n" {
					break
				}
				b.WriteString(l)
			}
			f.data = b.String()
			w("250 queued")
		case cmd == "QUIT":
			w("221 bye")
			f.mu.Unlock()
			return
		default:
			w("250 OK")
		}
		f.mu.Unlock()
	}
}

func TestSMTPSender(t *testing.T) {
	f := newFakeSMTP(t)
	s, err := mail.NewSMTPSender("smtp://mailer:s3cret@" + f.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Send(context.Background(), mail.Message{From: "Acme <no-reply@acme.example>", To: "bob@example.com",
		Subject: "Hello", Text: "text part", HTML: "<p>html part</p>"})
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.auth != "\x00mailer\x00s3cret" || f.from != "<no-reply@acme.example>" || f.to != "<bob@example.com>" {
		t.Fatalf("auth %q from %q to %q", f.auth, f.from, f.to)
	}
	for _, want := range []string{"Subject: Hello", "text part", "<p>html part</p>", "multipart/alternative"} {
		if !strings.Contains(f.data, want) {
			t.Errorf("message lacks %q:\n%s", want, f.data)
		}
	}
}

func TestSMTPPermanentRejection(t *testing.T) {
	f := newFakeSMTP(t)
	f.rcptCode = "550 no such user"
	s, err := mail.NewSMTPSender("smtp://" + f.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Send(context.Background(), mail.Message{From: "a@acme.example", To: "nobody@example.com", Subject: "x", Text: "x", HTML: "x"})
	if err == nil || !mail.IsPermanent(err) {
		t.Fatalf("550 must be a permanent error: %v", err)
	}
	f.rcptCode = "451 try later"
	_, err = s.Send(context.Background(), mail.Message{From: "a@acme.example", To: "nobody@example.com", Subject: "x", Text: "x", HTML: "x"})
	if err == nil || mail.IsPermanent(err) {
		t.Fatalf("451 must be a temporary error: %v", err)
	}
}
