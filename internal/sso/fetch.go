package sso

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
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
		a := ap.Addr().Unmap()
		if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsUnspecified() ||
			a.IsMulticast() || a.IsInterfaceLocalMulticast() || netip.MustParsePrefix("100.64.0.0/10").Contains(a) {
			return errPrivateAddress
		}
		return nil
	}}
	tr := &http.Transport{DialContext: dialer.DialContext, TLSHandshakeTimeout: 5 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second, MaxIdleConns: 4, IdleConnTimeout: 30 * time.Second, Proxy: nil}
	return &http.Client{Transport: tr, Timeout: 15 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 3 {
			return errors.New("too many redirects")
		}
		if req.URL.Scheme != "https" && !allowPrivate {
			return errors.New("redirect to a non-https URL")
		}
		return nil
	}}
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
		if errors.Is(err, errPrivateAddress) {
			return nil, fail("the host " + errPrivateAddress.Error())
		}
		return nil, fail(clipMsg(strings.TrimPrefix(err.Error(), "Get ")))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fail(fmt.Sprintf("the server answered %d", resp.StatusCode))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxMetadataBytes+1))
	if err != nil {
		return nil, fail("reading the body: " + clipMsg(err.Error()))
	}
	if len(body) > MaxMetadataBytes {
		return nil, fail("the document is larger than 512 KiB")
	}
	return body, nil
}

// RefreshMetadata re-fetches the metadata of every connection with a URL, in every
// tenant. A failed fetch or a document that no longer parses keeps the last good
// metadata and records the error for the admin.
func (s *Service) RefreshMetadata(ctx context.Context, tenants []tenant.Tenant) error {
	var firstErr error
	for _, t := range tenants {
		var conns []sqlcgen.SsoConnection
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

func (s *Service) refreshOne(ctx context.Context, t tenant.Tenant, c sqlcgen.SsoConnection) error {
	doc, err := s.FetchMetadata(ctx, *c.MetadataUrl)
	var idp IdP
	if err == nil {
		idp, err = ParseMetadata(doc, c.IdpEntityID)
	}
	if err == nil && idp.EntityID != c.IdpEntityID {
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
			IdpMetadata: string(doc), IdpEntityID: idp.EntityID, IdpCertNotAfter: idp.EarliestExpiry(), MetadataUrl: c.MetadataUrl,
			MetadataFetchedAt: &now, NameIDFormat: c.NameIDFormat, Jit: c.Jit, Enforce: c.Enforce, AllowIdpInitiated: c.AllowIdpInitiated,
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
