// Package outbound is the one HTTP client for every URL a tenant or an operator typed:
// SAML metadata URLs, webhook endpoints, OIDC issuers and back-channel logout URIs. One
// switch governs it (GATEHOUSE_OUTBOUND_ALLOW_PRIVATE, API.md "Outbound requests"): off,
// only https to public addresses, checked on the address actually dialled (so a DNS
// answer that changes between check and use cannot reach the inside); on (gatehouse
// dev, tests), http and loopback/private addresses too. Failures carry a reason in words
// of its own, never the dialer's or resolver's message with addresses and ports.
package outbound

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
)

// Config sets the switch.
type Config struct {
	// AllowPrivate lets URLs be plain http and reach loopback and private addresses.
	AllowPrivate bool
	// RootCAs replaces the system roots (tests that serve TLS on loopback); nil = system.
	RootCAs *x509.CertPool
	// Timeout bounds a whole request, body included (default 15 s).
	Timeout time.Duration
	// Resolver resolves host names (nil = the system's). The address rule applies to the
	// address dialled whatever the resolver answered.
	Resolver *net.Resolver
}

// Client makes outbound requests. Safe for concurrent use.
type Client struct {
	http         *http.Client
	allowPrivate bool
}

// Error is a refused or failed outbound request. Reason is fit to show to the admin who
// typed the URL.
type Error struct {
	Reason string
	Err    error
}

func (e *Error) Error() string { return "outbound: " + e.Reason }
func (e *Error) Unwrap() error { return e.Err }

// Reason returns the admin-facing reason of err ("the connection failed" when err is not
// an outbound error).
func Reason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return "the connection failed"
}

var (
	errPrivateAddress   = errors.New("resolves to a private, loopback or link-local address")
	errTooManyRedirects = errors.New("too many redirects")
	errInsecureRedirect = errors.New("redirect to a non-https URL")
)

// New returns the client.
func New(cfg Config) *Client {
	if cfg.Timeout == 0 {
		cfg.Timeout = 15 * time.Second
	}
	allow := cfg.AllowPrivate
	dialer := &net.Dialer{Timeout: 5 * time.Second, Resolver: cfg.Resolver, Control: func(_, address string, _ syscall.RawConn) error {
		if allow {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !PublicAddr(ap.Addr()) {
			return errPrivateAddress
		}
		return nil
	}}
	tr := &http.Transport{DialContext: dialer.DialContext, TLSHandshakeTimeout: 5 * time.Second,
		TLSClientConfig:       &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
		ResponseHeaderTimeout: 10 * time.Second, MaxIdleConns: 16, MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second,
		Proxy: nil, ForceAttemptHTTP2: true}
	return &Client{allowPrivate: allow, http: &http.Client{Transport: tr, Timeout: cfg.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errTooManyRedirects
			}
			if req.URL.Scheme != "https" && !allow {
				return errInsecureRedirect
			}
			return nil
		}}}
}

// AllowPrivate reports the switch.
func (c *Client) AllowPrivate() bool { return c.allowPrivate }

// CheckURL parses raw and applies the switch's scheme rule (the address rule applies
// when dialling). what names the URL in the reason ("metadata URLs", "webhook URLs").
func (c *Client) CheckURL(raw, what string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil {
		return nil, &Error{Reason: "not an absolute http(s) URL without credentials", Err: err}
	}
	if u.Scheme != "https" && !c.allowPrivate {
		return nil, &Error{Reason: what + " must use https"}
	}
	return u, nil
}

// Do sends req. A failure is an *Error with a reason; a response of any status is not a
// failure (the caller decides).
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" && !c.allowPrivate {
		return nil, &Error{Reason: "the URL must use https"}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &Error{Reason: classify(err), Err: err}
	}
	return resp, nil
}

// HTTPClient returns an *http.Client that goes through the same rules, for libraries that
// take one (go-oidc, oauth2). Its errors are the library's; use Reason on them.
func (c *Client) HTTPClient() *http.Client {
	return &http.Client{Transport: roundTripper{c}, Timeout: c.http.Timeout}
}

type roundTripper struct{ c *Client }

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" && !rt.c.allowPrivate {
		return nil, &Error{Reason: "the URL must use https"}
	}
	resp, err := rt.c.http.Transport.RoundTrip(req)
	if err != nil {
		return nil, &Error{Reason: classify(err), Err: err}
	}
	return resp, nil
}

// Get fetches raw with GET and returns a 200 body of at most max bytes.
func (c *Client) Get(ctx context.Context, raw, what, accept string, max int64) ([]byte, error) {
	u, err := c.CheckURL(raw, what)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, &Error{Reason: "not a valid URL", Err: err}
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &Error{Reason: fmt.Sprintf("the server answered %d", resp.StatusCode)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, &Error{Reason: "the connection broke while the document was read", Err: err}
	}
	if int64(len(body)) > max {
		return nil, &Error{Reason: fmt.Sprintf("the document is larger than %s", size(max))}
	}
	return body, nil
}

func size(n int64) string {
	if n < 1<<10 {
		return fmt.Sprintf("%d bytes", n)
	}
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// classify names the class of a failed request.
func classify(err error) string {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	var opErr *net.OpError
	var uerr *url.Error
	switch {
	case errors.Is(err, errPrivateAddress):
		return "the host " + errPrivateAddress.Error()
	case errors.Is(err, errTooManyRedirects):
		return "the server redirected more than 3 times"
	case errors.Is(err, errInsecureRedirect):
		return "the server redirected to a URL that is not https"
	case errors.As(err, &dnsErr):
		return "the host name does not resolve"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "the server did not answer in time"
	case errors.Is(err, context.Canceled):
		return "the request was cancelled"
	case errors.As(err, &certErr), errors.As(err, &recErr):
		return "the server's TLS certificate could not be verified"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "the connection was refused"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return "the server could not be reached"
	case errors.As(err, &uerr) && uerr.Timeout():
		return "the server did not answer in time"
	case errors.As(err, &uerr) && strings.Contains(uerr.Err.Error(), "tls"):
		return "the TLS handshake failed"
	}
	return "the connection failed"
}

// blocked are the ranges that are not the public internet, beyond what netip classifies.
var blocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("240.0.0.0/4"), netip.MustParsePrefix("::/96"),
	netip.MustParsePrefix("100::/64"), netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("fc00::/7"),
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	nat64Wide = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// PublicAddr reports whether a is a public unicast address. IPv6 forms that embed an
// IPv4 address (mapped, NAT64, 6to4) are judged by that address.
func PublicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64.Contains(a), nat64Wide.Contains(a):
			return PublicAddr(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
		case sixToFour.Contains(a):
			return PublicAddr(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
		}
	}
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsUnspecified() ||
		a.IsMulticast() || a.IsInterfaceLocalMulticast() || !a.IsGlobalUnicast() {
		return false
	}
	for _, p := range blocked {
		if p.Contains(a) {
			return false
		}
	}
	return true
}
