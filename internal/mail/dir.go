package mail

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
)

// DirSender writes every message as an .eml file into a directory: `gatehouse dev`'s
// mailbox, shown at /_dev/mail.
type DirSender struct{ Dir string }

// NewDirSender creates dir when needed.
func NewDirSender(dir string) (*DirSender, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("GATEHOUSE_MAIL dir: %w", err)
	}
	return &DirSender{Dir: dir}, nil
}

// Send writes the message atomically (temporary file, then rename).
func (s *DirSender) Send(_ context.Context, m Message) (string, error) {
	now := time.Now()
	raw, err := Build(m, now)
	if err != nil {
		return "", err
	}
	if m.TenantID != uuid.Nil {
		raw = append([]byte(tenantHeader+": "+m.TenantID.String()+"\r\n"), raw...)
	}
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	id := now.UTC().Format("20060102T150405.000000000") + "-" + hex.EncodeToString(rb[:])
	tmp := filepath.Join(s.Dir, "."+id+".tmp")
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return "", fmt.Errorf("write mail: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.Dir, id+".eml")); err != nil {
		return "", fmt.Errorf("write mail: %w", err)
	}
	return id, nil
}

// tenantHeader names the tenant of a captured message (dev mailbox only).
const tenantHeader = "X-Gatehouse-Tenant"

// Captured is a message read back from a mail directory.
type Captured struct {
	ID       string    `json:"id"`
	TenantID uuid.UUID `json:"tenant_id"`
	To       string    `json:"to"`
	From     string    `json:"from"`
	Subj     string    `json:"subject"`
	Text     string    `json:"text"`
	HTML     string    `json:"html"`
	Links    []string  `json:"links"`
	SentAt   time.Time `json:"sent_at"`
}

var linkRe = regexp.MustCompile(`https?://[^\s"'<>]+`)

// ReadTenantDir returns the messages of one tenant in dir, newest first.
func ReadTenantDir(dir string, tenantID uuid.UUID) ([]Captured, error) {
	all, err := ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := make([]Captured, 0, len(all))
	for _, c := range all {
		if c.TenantID == tenantID {
			out = append(out, c)
		}
	}
	return out, nil
}

// ReadDir returns the messages in dir, newest first.
func ReadDir(dir string) ([]Captured, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil {
		return nil, err
	}
	sort.Sort(sort.Reverse(sort.StringSlice(names)))
	out := make([]Captured, 0, len(names))
	for _, n := range names {
		c, err := readEML(n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// ReadFile reads one message written by DirSender (quoted-printable decoded, links found).
func ReadFile(path string) (Captured, error) { return readEML(path) }

func readEML(path string) (Captured, error) {
	f, err := os.Open(path)
	if err != nil {
		return Captured{}, err
	}
	defer f.Close()
	msg, err := mail.ReadMessage(f)
	if err != nil {
		return Captured{}, err
	}
	dec := new(mime.WordDecoder)
	subj, _ := dec.DecodeHeader(msg.Header.Get("Subject"))
	c := Captured{ID: strings.TrimSuffix(filepath.Base(path), ".eml"), To: msg.Header.Get("To"), From: msg.Header.Get("From"), Subj: subj}
	c.TenantID, _ = uuid.Parse(msg.Header.Get(tenantHeader))
	if d, err := msg.Header.Date(); err == nil {
		c.SentAt = d
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return Captured{}, err
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Captured{}, err
		}
		body, err := io.ReadAll(p) // multipart decodes quoted-printable itself
		if err != nil {
			return Captured{}, err
		}
		text := strings.ReplaceAll(string(body), "\r\n", "\n")
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
			c.HTML = text
		} else {
			c.Text = text
		}
	}
	c.Links = linkRe.FindAllString(c.Text, -1)
	if c.Links == nil {
		c.Links = []string{}
	}
	return c, nil
}
