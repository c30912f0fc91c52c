package main

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/mail"
)

// mailbox follows the directory mailer of a running Gatehouse (GATEHOUSE_MAIL=dir:DIR,
// `gatehouse dev`'s DATA/mail) and hands each address's verification or password-reset
// link to whoever waits for it. It reads only files it has not seen, so a long run does not re-read the mailbox.
type mailbox struct {
	dir     string
	mu      sync.Mutex
	seen    map[string]bool
	waiting map[string]chan string
	early   map[string]string // arrived before anyone waited
	dupes   int               // second verification (or reset) mails for one address
}

func newMailbox(dir string) (*mailbox, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("-mailbox: %w", err)
	}
	m := &mailbox{dir: dir, seen: map[string]bool{}, waiting: map[string]chan string{}, early: map[string]string{}}
	// Mail that is already there belongs to earlier runs.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		m.seen[e.Name()] = true
	}
	return m, nil
}

func (m *mailbox) run(ctx context.Context) {
	t := time.NewTicker(15 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		entries, err := os.ReadDir(m.dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			name := e.Name()
			if !strings.HasSuffix(name, ".eml") || strings.HasPrefix(name, ".") || m.seen[name] {
				continue
			}
			m.seen[name] = true
			c, err := mail.ReadFile(filepath.Join(m.dir, name))
			if err != nil {
				continue
			}
			addr, err := netmail.ParseAddress(c.To)
			if err != nil {
				continue
			}
			for _, l := range c.Links {
				if strings.Contains(l, "/verify?token=") || strings.Contains(l, "/password/reset?token=") {
					m.deliver(strings.ToLower(addr.Address), l)
					break
				}
			}
		}
	}
}

func (m *mailbox) deliver(addr, link string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ch, ok := m.waiting[addr]; ok {
		delete(m.waiting, addr)
		ch <- link
		return
	}
	if _, ok := m.early[addr]; ok {
		m.dupes++
		return
	}
	m.early[addr] = link
}

// expect registers interest in addr's verification (or reset) link before the request
// that sends it.
func (m *mailbox) expect(addr string) func(context.Context, time.Duration) (string, error) {
	addr = strings.ToLower(addr)
	ch := make(chan string, 1)
	m.mu.Lock()
	if l, ok := m.early[addr]; ok {
		delete(m.early, addr)
		ch <- l
	} else {
		m.waiting[addr] = ch
	}
	m.mu.Unlock()
	return func(ctx context.Context, timeout time.Duration) (string, error) {
		select {
		case l := <-ch:
			return l, nil
		case <-time.After(timeout):
			m.forget(addr)
			return "", fmt.Errorf("no verification or reset mail within %s", timeout)
		case <-ctx.Done():
			m.forget(addr)
			return "", ctx.Err()
		}
	}
}

func (m *mailbox) forget(addr string) {
	m.mu.Lock()
	delete(m.waiting, strings.ToLower(addr))
	m.mu.Unlock()
}

// inflateRequest decodes a Redirect-binding SAML message.
func inflateRequest(s string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("SAMLRequest: %w", err)
	}
	return io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(raw)), 1<<20))
}
