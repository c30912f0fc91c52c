package sso

import (
	"context"
	"errors"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/outbound"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// ErrMetadataFetch answers a metadata URL that could not be fetched or is not allowed.
var ErrMetadataFetch = apperr.New(apperr.Invalid, "metadata_fetch_failed", "The metadata URL could not be fetched.")

// FetchMetadata downloads a metadata document (at most MaxMetadataBytes) through the
// outbound client. The reason in the error's details is fit for the admin: never the
// dialer's message with addresses and ports.
func (s *Service) FetchMetadata(ctx context.Context, raw string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	body, err := s.out.Get(ctx, raw, "metadata URLs", "application/samlmetadata+xml, application/xml, text/xml", MaxMetadataBytes)
	if err != nil {
		return nil, ErrMetadataFetch.WithDetails(map[string]any{"reason": outbound.Reason(err)})
	}
	return body, nil
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
		if err := s.refreshOIDC(ctx, t); err != nil {
			firstErr = errors.Join(firstErr, err)
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
