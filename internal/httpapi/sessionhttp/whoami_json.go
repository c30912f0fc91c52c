package sessionhttp

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// appendWhoami writes the whoami body exactly as encoding/json would marshal it (the field
// order of the whoami struct, RFC 3339 times with nanoseconds, HTML-safe strings), without
// reflection: GET /api/v1/session is the hot path of every app that uses Gatehouse.
// TestWhoamiEncoding holds it equal to encoding/json.
func appendWhoami(b []byte, w *whoami) []byte {
	s := &w.Session
	b = append(b, `{"session":{"id":"`...)
	b = appendUUID(b, s.ID)
	b = append(b, `","created_at":`...)
	b = appendTime(b, s.CreatedAt)
	b = append(b, `,"last_active_at":`...)
	b = appendTime(b, s.LastActiveAt)
	b = append(b, `,"expires_at":`...)
	b = appendTime(b, s.ExpiresAt)
	b = append(b, `,"auth_time":`...)
	b = appendTime(b, s.AuthTime)
	b = append(b, `,"methods":`...)
	if s.Methods == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, m := range s.Methods {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, m)
		}
		b = append(b, ']')
	}
	b = append(b, `,"aal":`...)
	b = appendString(b, s.AAL)
	b = append(b, `,"assurance":`...)
	b = appendString(b, s.Assurance)
	u := &w.User
	b = append(b, `},"user":{"id":"`...)
	b = appendUUID(b, u.ID)
	b = append(b, `","email":`...)
	b = appendString(b, u.Email)
	b = append(b, `,"name":`...)
	b = appendString(b, u.Name)
	b = append(b, `,"status":`...)
	b = appendString(b, u.Status)
	b = append(b, `,"email_verified":`...)
	b = strconv.AppendBool(b, u.EmailVerified)
	b = append(b, `,"email_verified_at":`...)
	if u.EmailVerifiedAt == nil {
		b = append(b, "null"...)
	} else {
		b = appendTime(b, *u.EmailVerifiedAt)
	}
	b = append(b, `,"created_at":`...)
	b = appendTime(b, u.CreatedAt)
	b = append(b, `},"tenant":{"slug":`...)
	b = appendString(b, w.Tenant.Slug)
	b = append(b, `,"name":`...)
	b = appendString(b, w.Tenant.Name)
	return append(b, "}}\n"...)
}

// appendUUID appends id in its canonical form (what uuid.UUID.String returns) without
// building the string.
func appendUUID(b []byte, id uuid.UUID) []byte {
	const digits = "0123456789abcdef"
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, digits[c>>4], digits[c&0x0f])
	}
	return b
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendString quotes s the way encoding/json does with HTML escaping on.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
