package domainverify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/miekg/dns"
)

// lookupDirect queries v.server for the TXT records at name over UDP, retrying over TCP
// when the UDP answer is truncated. It returns one value per TXT record, with the
// record's character-strings concatenated.
func (v *Verifier) lookupDirect(ctx context.Context, name string) ([]string, error) {
	fqdn := dns.Fqdn(name)
	req := new(dns.Msg)
	req.SetQuestion(fqdn, dns.TypeTXT)
	req.RecursionDesired = true

	resp, _, err := v.udp.ExchangeContext(ctx, req, v.server)
	if resp != nil && resp.Truncated {
		// A truncated answer may also fail to unpack; TCP gets the whole answer either way.
		resp, _, err = v.tcp.ExchangeContext(ctx, req, v.server)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: TXT %s via %s: %w", ErrLookup, name, v.server, err)
	}

	switch resp.Rcode {
	case dns.RcodeSuccess:
		return txtValues(resp, fqdn), nil
	case dns.RcodeNameError:
		return nil, fmt.Errorf("%w: %s does not exist (NXDOMAIN)", ErrNotFound, name)
	default:
		return nil, fmt.Errorf("%w: TXT %s via %s: server answered %s",
			ErrLookup, name, v.server, dns.RcodeToString[resp.Rcode])
	}
}

// lookupSystem resolves the TXT records at name with v.resolver. The standard library
// already concatenates the character-strings of each record.
func (v *Verifier) lookupSystem(ctx context.Context, name string) ([]string, error) {
	// The trailing dot makes the name absolute so resolv.conf search domains are not tried.
	values, err := v.resolver.LookupTXT(ctx, dns.Fqdn(name))
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
		}
		return nil, fmt.Errorf("%w: TXT %s: %w", ErrLookup, name, err)
	}
	return values, nil
}

// txtValues returns the TXT records in resp's answer section owned by fqdn or by a name
// it is aliased to through CNAME records in the same answer (as recursive resolvers
// return them). Each value is the record's character-strings, unescaped and concatenated.
func txtValues(resp *dns.Msg, fqdn string) []string {
	owners := map[string]bool{dns.CanonicalName(fqdn): true}
	for grown := true; grown; {
		grown = false
		for _, rr := range resp.Answer {
			c, ok := rr.(*dns.CNAME)
			if ok && owners[dns.CanonicalName(c.Hdr.Name)] && !owners[dns.CanonicalName(c.Target)] {
				owners[dns.CanonicalName(c.Target)] = true
				grown = true
			}
		}
	}

	var values []string
	for _, rr := range resp.Answer {
		t, ok := rr.(*dns.TXT)
		if !ok || !owners[dns.CanonicalName(t.Hdr.Name)] {
			continue
		}
		var b strings.Builder
		for _, s := range t.Txt {
			b.WriteString(unescapeTXT(s))
		}
		values = append(values, b.String())
	}
	return values
}

// unescapeTXT turns a character-string in miekg/dns presentation form (`\"`, `\\`,
// `\DDD`) back into its raw bytes.
func unescapeTXT(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		i++
		if i == len(s) {
			break
		}
		if n, ok := decimalByte(s[i:]); ok {
			b.WriteByte(n)
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// decimalByte parses a leading three-digit decimal escape (000–255).
func decimalByte(s string) (byte, bool) {
	if len(s) < 3 {
		return 0, false
	}
	n := 0
	for _, c := range []byte(s[:3]) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if n > 255 {
		return 0, false
	}
	return byte(n), true
}

// escapeTXT is the inverse of unescapeTXT: it renders raw bytes in the presentation form
// miekg/dns packs into the wire format.
func escapeTXT(raw string) string {
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c > '~':
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
