// Package domainverify proves that a tenant controls an email domain: the tenant publishes
// a DNS TXT record at "_gatehouse.<domain>" whose value is a token Gatehouse issued, and
// Check looks it up.
//
// A TXT record may consist of several character-strings; they are concatenated before
// comparing (RFC 7208 §3.3 convention). Several TXT records may exist at the name; any one
// equal to the token (after trimming surrounding whitespace) verifies the domain.
package domainverify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/miekg/dns"
)

// Sentinel errors; Check and NormalizeDomain wrap them with detail, test with errors.Is.
var (
	// ErrNotFound means the lookup succeeded but no TXT record equals the token
	// (NXDOMAIN, no TXT records, or none matching).
	ErrNotFound = errors.New("domainverify: verification record not found")
	// ErrLookup means the DNS lookup itself failed (timeout, SERVFAIL, network error…).
	ErrLookup = errors.New("domainverify: DNS lookup failed")
	// ErrInvalidDomain means the domain is not a syntactically valid hostname.
	ErrInvalidDomain = errors.New("domainverify: invalid domain")
	// ErrInvalidToken means Check was called with an empty token.
	ErrInvalidToken = errors.New("domainverify: invalid token")
)

const (
	defaultTimeout = 3 * time.Second
	// recordPrefix is the label under which the verification record lives.
	recordPrefix = "_gatehouse."
	// Limits for the "found" detail in ErrNotFound messages.
	maxDetailValues = 3
	maxDetailLen    = 100
)

// Verifier looks up TXT records through a configurable resolver. It is safe for
// concurrent use.
type Verifier struct {
	server   string        // "host:port" queried directly; "" means use resolver
	timeout  time.Duration // bounds each Check
	resolver *net.Resolver // used when server == ""
	udp, tcp *dns.Client   // used when server != ""
}

// New returns a Verifier. server is "" for the system resolver (net.DefaultResolver), or
// "host:port" of a DNS server to query directly over UDP (falling back to TCP when the
// answer is truncated), e.g. "127.0.0.1:5353". timeout bounds each lookup (3s when <= 0).
func New(server string, timeout time.Duration) *Verifier {
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	return &Verifier{
		server:   server,
		timeout:  timeout,
		resolver: net.DefaultResolver,
		udp:      &dns.Client{Net: "udp", Timeout: timeout},
		tcp:      &dns.Client{Net: "tcp", Timeout: timeout},
	}
}

// RecordName returns the name of the verification TXT record for domain:
// "_gatehouse." + domain.
func RecordName(domain string) string {
	return recordPrefix + domain
}

// Check reports nil when a TXT record at RecordName(domain) equals token. domain is
// normalised with NormalizeDomain first (ErrInvalidDomain if that fails); an empty token
// yields ErrInvalidToken. Otherwise errors wrap ErrNotFound (nothing matching was
// published; the message lists what was found) or ErrLookup (the lookup failed).
func (v *Verifier) Check(ctx context.Context, domain, token string) error {
	domain, err := NormalizeDomain(domain)
	if err != nil {
		return err
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return fmt.Errorf("%w: empty token", ErrInvalidToken)
	}
	name := RecordName(domain)

	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	var values []string
	if v.server != "" {
		values, err = v.lookupDirect(ctx, name)
	} else {
		values, err = v.lookupSystem(ctx, name)
	}
	if err != nil {
		return err
	}
	return match(name, values, token)
}

// match returns nil if one of values equals token after trimming, or ErrNotFound
// describing what was found.
func match(name string, values []string, token string) error {
	if len(values) == 0 {
		return fmt.Errorf("%w: no TXT records at %s", ErrNotFound, name)
	}
	for _, v := range values {
		if strings.TrimSpace(v) == token {
			return nil
		}
	}
	return fmt.Errorf("%w: no TXT record at %s matches the token; found %s",
		ErrNotFound, name, describe(values))
}

// describe summarises values for an error message: at most maxDetailValues values, each
// cut to maxDetailLen bytes, quoted so control characters cannot leak into logs.
func describe(values []string) string {
	parts := make([]string, 0, maxDetailValues+1)
	for i, v := range values {
		if i == maxDetailValues {
			parts = append(parts, fmt.Sprintf("(+%d more)", len(values)-maxDetailValues))
			break
		}
		parts = append(parts, fmt.Sprintf("%q", truncate(v, maxDetailLen)))
	}
	return fmt.Sprintf("%d: %s", len(values), strings.Join(parts, ", "))
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
