package sso

import (
	"context"
	"crypto/tls"
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

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// ErrMetadataFetch answers a metadata URL that could not be fetched or is not allowed.
var ErrMetadataFetch = apperr.New(apperr.Invalid, "metadata_fetch_failed", "The metadata URL could not be fetched.")

var errPrivateAddress = errors.New("resolves to a private, loopback or link-local address")

// metadataClient fetches IdP metadata: timeouts, no redirects to other schemes, and
// (outside dev) https only to public addresses, checked on the address actually dialled.
func metadataClient(allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		if allowPrivate {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return errPrivateAddress
		}
		if !publicAddr(ap.Addr()) {
			return errPrivateAddress
		}
		return nil
	}}
	tr := &http.Transport{DialContext: dialer.DialContext, TLSHandshakeTimeout: 5 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second, MaxIdleConns: 4, IdleConnTimeout: 30 * time.Second, Proxy: nil}
	return &http.Client{Transport: tr, Timeout: 15 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 3 {
			return errTooManyRedirects
		}
		if req.URL.Scheme != "https" && !allowPrivate {
			return errInsecureRedirect
		}
		return nil
	}}
}

// blocked are the ranges that are not the public internet, beyond what netip classifies.
var blocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("240.0.0.0/4"), netip.MustParsePrefix("::/96"),
	netip.MustParsePrefix("100::/64"), netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("fc00::/7"),
}

// publicAddr reports whether a is a public unicast address. IPv6 forms that embed an
// IPv4 address (mapped, NAT64, 6to4) are judged by that address.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if a.Is6() {
		b := a.As16()
		switch {
		case netip.MustParsePrefix("64:ff9b::/96").Contains(a), netip.MustParsePrefix("64:ff9b:1::/48").Contains(a):
			return publicAddr(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
		case netip.MustParsePrefix("2002::/16").Contains(a):
			return publicAddr(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
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

// FetchMetadata downloads a metadata document (at most MaxMetadataBytes).
func (s *Service) FetchMetadata(ctx context.Context, raw string) ([]byte, error) {
	fail := func(reason string) error { return ErrMetadataFetch.WithDetails(map[string]any{"reason": reason}) }
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fail("not an absolute URL")
	}
	if u.Scheme != "https" && !s.cfg.AllowPrivateMetadata {
		return nil, fail("metadata URLs must use https")
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fail("not a valid URL")
	}
	req.Header.Set("Accept", "application/samlmetadata+xml, application/xml, text/xml")
	resp, err := s.fetch.Do(req)
	if err != nil {
		return nil, fail(fetchReason(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fail(fmt.Sprintf("the server answered %d", resp.StatusCode))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxMetadataBytes+1))
	if err != nil {
		return nil, fail("the connection broke while the document was read")
	}
	if len(body) > MaxMetadataBytes {
		return nil, fail("the document is larger than 512 KiB")
	}
	return body, nil
}

// errTooManyRedirects and errInsecureRedirect stop the metadata client's redirects.
var (
	errTooManyRedirects = errors.New("too many redirects")
	errInsecureRedirect = errors.New("redirect to a non-https URL")
)

// fetchReason names the class of a failed fetch. The dialer's and resolver's own messages
// are never shown: they carry internal addresses, resolver names and ports.
func fetchReason(err error) string {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	var opErr *net.OpError
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
	case errors.As(err, &certErr), errors.As(err, &recErr):
		return "the server's TLS certificate could not be verified"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "the connection was refused"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return "the server could not be reached"
	}
	var uerr *url.Error
	if errors.As(err, &uerr) && uerr.Timeout() {
		return "the server did not answer in time"
	}
	if errors.As(err, &uerr) && strings.Contains(uerr.Err.Error(), "tls") {
		return "the TLS handshake failed"
	}
	return "the connection failed"
}

// RefreshMetadata re-fetches the metadata of every connection with a URL, in every
// tenant. A failed fetch or a document that no longer parses keeps the last good
// metadata and records the error for the admin.
func (s *Service) RefreshMetadata(ctx context.Context, tenants []tenant.Tenant) error {
	var firstErr error
	for _, t := range tenants {
		var conns []sqlcgen.SSOConnection
		if err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
			var err error
			conns, err = q.ListSSOConnectionsWithMetadataURL(ctx)
			return err
		}, store.ReadOnly(), store.Idempotent()); err != nil {
			firstErr = errors.Join(firstErr, err)
			continue
		}
		for _, c := range conns {
			if err := s.refreshOne(ctx, t, c); err != nil {
				firstErr = errors.Join(firstErr, err)
			}
		}
	}
	return firstErr
}

func (s *Service) refreshOne(ctx context.Context, t tenant.Tenant, c sqlcgen.SSOConnection) error {
	doc, err := s.FetchMetadata(ctx, *c.MetadataURL)
	var idp IdP
	if err == nil {
		idp, err = ParseMetadata(doc, c.IdPEntityID)
	}
	if err == nil && idp.EntityID != c.IdPEntityID {
		err = errors.New("the document now names another IdP (" + clipMsg(idp.EntityID) + ")")
	}
	if err != nil {
		msg := refreshReason(err)
		s.logger.Warn("sso metadata refresh failed", "tenant", t.Slug, "connection", c.Slug, "reason", msg)
		return s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
			if err := q.SetSSOMetadataError(ctx, sqlcgen.SetSSOMetadataErrorParams{ID: c.ID, MetadataError: &msg}); err != nil {
				return err
			}
			return audit.Record(ctx, q, audit.Who{ActorLabel: "system"}, audit.Event{Action: audit.SSOMetadataRefresh,
				Details: map[string]any{"connection_id": c.ID, "reason": msg}})
		})
	}
	now := s.now()
	err = s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		_, err := q.UpdateSSOConnection(ctx, sqlcgen.UpdateSSOConnectionParams{ID: c.ID, Name: c.Name, Provider: c.Provider,
			IdPMetadata: string(doc), IdPEntityID: idp.EntityID, IdPCertNotAfter: idp.EarliestExpiry(), MetadataURL: c.MetadataURL,
			MetadataFetchedAt: &now, NameIDFormat: c.NameIDFormat, JIT: c.JIT, Enforce: c.Enforce, AllowIdPInitiated: c.AllowIdPInitiated,
			DefaultRedirect: c.DefaultRedirect, AttributeMapping: c.AttributeMapping, RoleMapping: c.RoleMapping, Enabled: c.Enabled})
		return err
	})
	s.forget(c.ID)
	return err
}

func refreshReason(err error) string {
	if ae := apperr.From(err); ae != nil && ae.Details != nil {
		if r, ok := ae.Details["reason"].(string); ok {
			return clipMsg(ae.Message + " " + r)
		}
	}
	return clipMsg(err.Error())
}
