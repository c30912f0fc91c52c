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

// LogoutCookie binds an SP-initiated LogoutRequest to the browser that sent it, so that
// only the IdP's answer to that request (InResponseTo) counts as a sign-out there. The
// answer may be a cross-site POST, so the cookie is SameSite=None (Secure, host-only).
const LogoutCookie = "__Host-gatehouse-slo"

// Logout is what signing out of an SSO session means at its IdP.
type Logout struct {
	// SSO: the session came from a connection (the IdP may still have a session).
	SSO bool
	// RedirectURL is the signed LogoutRequest to send the browser to ("" when the IdP
	// publishes no single logout endpoint with the Redirect binding).
	RedirectURL string
	// RequestID is the LogoutRequest's ID, to check the IdP's answer against.
	RequestID string
}

// LogoutRedirect is the SP-initiated LogoutRequest for a session that came from SSO, when
// the IdP publishes a single logout endpoint with the Redirect binding. The Gatehouse
// session is revoked by the caller either way.
func (s *Service) LogoutRedirect(ctx context.Context, t tenant.Tenant, p session.Principal) (Logout, error) {
	if p.Session.SSOConnectionID == nil {
		return Logout{}, nil
	}
	out := Logout{SSO: true}
	if p.Session.NameID == "" {
		return out, nil
	}
	var c sqlcgen.SSOConnection
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		row, err := q.GetSSOConnection(ctx, *p.Session.SSOConnectionID)
		c = row
		return err
	}, store.ReadOnly(), store.Idempotent())
	if errors.Is(err, store.ErrNotFound) {
		return out, nil // connection gone: nothing to tell
	}
	if err != nil {
		return out, fmt.Errorf("logout request: %w", err)
	}
	if c.Protocol == ProtocolOIDC {
		return s.oidcLogout(t, c)
	}
	m, err := s.load(t, c)
	if err != nil {
		return out, fmt.Errorf("logout request: %w", err)
	}
	if m.idp.SLORedirect == "" {
		return out, nil
	}
	sp := s.serviceProvider(ctx, t, m, false)
	var id string
	u, err := sp.MakeRedirectLogoutRequest(p.Session.NameID, "", func(r *saml.LogoutRequest) {
		id = r.ID
		if p.Session.SessionIndex != "" {
			r.SessionIndex = &saml.SessionIndex{Value: p.Session.SessionIndex}
		}
	})
	if err != nil {
		return out, fmt.Errorf("logout request: %w", err)
	}
	out.RedirectURL, out.RequestID = u.String(), id
	return out, nil
}

// LogoutAnswered checks the IdP's LogoutResponse (at the connection's /slo) to the
// LogoutRequest requestID: signed by the connection's IdP, addressed to us, in response to
// that request, with status Success. Errors: sso_failed (reason invalid_logout_response).
func (s *Service) LogoutAnswered(ctx context.Context, t tenant.Tenant, slug string, r *http.Request, requestID string) error {
	c, err := s.bySlug(ctx, t, slug)
	if err != nil {
		return err
	}
	m, err := s.load(t, c)
	if err != nil {
		return fmt.Errorf("logout response: %w", err)
	}
	sp := s.serviceProvider(ctx, t, m, false)
	if _, err := sp.ParseLogoutResponse(r, []string{requestID}); err != nil {
		var ire *saml.InvalidResponseError
		msg := err.Error()
		if errors.As(err, &ire) && ire.PrivateErr != nil {
			msg = ire.PrivateErr.Error()
		}
		s.logger.Info("sso logout response refused", "tenant", t.Slug, "connection", slug, "err", clipMsg(msg))
		return ErrSSOFailed.WithDetails(map[string]any{"reason": "invalid_logout_response"})
	}
	return nil
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
