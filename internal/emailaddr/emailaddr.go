// Package emailaddr normalises and validates email addresses the way Gatehouse stores them:
// trimmed, domain lower-cased and converted to its ASCII (IDNA) form, local part kept as
// typed (uniqueness is case-insensitive in the database).
package emailaddr

import (
	"net/mail"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
)

// MaxLength is the longest address accepted (RFC 5321 path limit).
const MaxLength = 254

// ErrInvalid is returned for anything that is not a plain mailbox address.
var ErrInvalid = apperr.New(apperr.Invalid, "invalid_email", "Enter a valid email address.")

// Normalize returns the canonical form of s or ErrInvalid.
func Normalize(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > MaxLength || !utf8.ValidString(s) || strings.ContainsAny(s, " \t\r\n<>\"(),;:\\[]") {
		return "", ErrInvalid
	}
	at := strings.LastIndexByte(s, '@')
	if at < 1 || at == len(s)-1 {
		return "", ErrInvalid
	}
	local, domain := s[:at], s[at+1:]
	if len(local) > 64 || strings.Contains(local, "@") {
		return "", ErrInvalid
	}
	ascii, err := idna.Lookup.ToASCII(strings.ToLower(strings.TrimSuffix(domain, ".")))
	if err != nil || !strings.Contains(ascii, ".") {
		return "", ErrInvalid
	}
	out := local + "@" + ascii
	if len(out) > MaxLength {
		return "", ErrInvalid
	}
	if a, err := mail.ParseAddress(out); err != nil || a.Address != out {
		return "", ErrInvalid
	}
	return out, nil
}

// Domain returns the domain part of a normalised address.
func Domain(addr string) string {
	return addr[strings.LastIndexByte(addr, '@')+1:]
}
