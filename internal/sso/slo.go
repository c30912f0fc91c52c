package sso

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/crewjam/saml"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// LogoutRedirect is the SP-initiated LogoutRequest for a session that came from SSO, when
// the IdP publishes a single logout endpoint with the Redirect binding ("" otherwise). The
// Gatehouse session is revoked by the caller either way.
func (s *Service) LogoutRedirect(ctx context.Context, t tenant.Tenant, p session.Principal) (string, error) {
	if p.Session.SSOConnectionID == nil || p.Session.NameID == "" {
		return "", nil
	}
	var c sqlcgen.SSOConnection
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		row, err := q.GetSSOConnection(ctx, *p.Session.SSOConnectionID)
		c = row
		return err
	}, store.ReadOnly(), store.Idempotent())
	if errors.Is(err, store.ErrNotFound) {
		return "", nil // connection gone: nothing to tell
	}
	if err != nil {
		return "", fmt.Errorf("logout request: %w", err)
	}
	m, err := s.load(t, c)
	if err != nil || m.idp.SLORedirect == "" {
		return "", err
	}
	sp := s.serviceProvider(ctx, t, m, false)
	u, err := sp.MakeRedirectLogoutRequest(p.Session.NameID, "", func(r *saml.LogoutRequest) {
		if p.Session.SessionIndex != "" {
			r.SessionIndex = &saml.SessionIndex{Value: p.Session.SessionIndex}
		}
	})
	if err != nil {
		return "", fmt.Errorf("logout request: %w", err)
	}
	return u.String(), nil
}

// IdPLogout handles an IdP-initiated LogoutRequest (Redirect or POST binding, signature
// required): every session of that NameID (and SessionIndex, when given) at this
// connection is revoked on every node. It returns where to send the LogoutResponse.
func (s *Service) IdPLogout(ctx context.Context, t tenant.Tenant, slug string, r *http.Request, who audit.Who) (string, error) {
	c, err := s.bySlug(ctx, t, slug)
	if err != nil {
		return "", err
	}
	if isDraft(c) {
		return "", ErrSSOFailed.WithDetails(map[string]any{"reason": "invalid_logout_request"})
	}
	m, err := s.load(t, c)
	if err != nil {
		return "", err
	}
	sp := s.serviceProvider(ctx, t, m, false)
	lr, err := sp.ValidateLogoutRequest(r)
	if err != nil {
		s.logger.Info("sso logout refused", "tenant", t.Slug, "connection", slug, "err", clipMsg(err.Error()))
		return "", ErrSSOFailed.WithDetails(map[string]any{"reason": "invalid_logout_request"})
	}
	if lr.NameID == nil {
		return "", ErrSSOFailed.WithDetails(map[string]any{"reason": "invalid_logout_request"})
	}
	var hashes [][]byte
	nameID := strings.TrimSpace(lr.NameID.Value) // stored trimmed at sign-in
	revoke := func(idx *string) error {
		var revoked [][]byte // of the attempt that commits (the store may retry)
		err := s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
			h, err := s.sessions.RevokeSAMLTx(ctx, tx, q, c.ID, nameID, idx)
			if err != nil {
				return err
			}
			revoked = h
			return audit.Record(ctx, q, who, audit.Event{Action: audit.SSOLogout, Details: map[string]any{
				"connection_id": c.ID, "sessions": len(h), "initiator": "idp"}})
		})
		if err == nil {
			hashes = append(hashes, revoked...)
		}
		return err
	}
	indexes := lr.AllSessionIndexes()
	if len(indexes) == 0 {
		err = revoke(nil)
	}
	for _, si := range indexes {
		v := strings.TrimSpace(si.Value)
		if err = revoke(&v); err != nil {
			break
		}
	}
	s.sessions.Invalidate(hashes)
	if err != nil {
		return "", err
	}
	dest := m.idp.SLORedirect
	if dest == "" {
		return "", nil
	}
	u, err := sp.MakeRedirectLogoutResponse(lr.ID, r.FormValue("RelayState"))
	if err != nil {
		return "", fmt.Errorf("logout response: %w", err)
	}
	return u.String(), nil
}
