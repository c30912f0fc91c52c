package oidcop

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// Grant is a third-party app the user let in ("Apps with access").
type Grant struct {
	AppID     uuid.UUID `json:"app_id"`
	AppName   string    `json:"app_name"`
	ClientID  string    `json:"client_id"`
	Scopes    []string  `json:"scopes"`
	GrantedAt time.Time `json:"granted_at"`
}

// ErrGrantNotFound answers an app the user has not let in.
var ErrGrantNotFound = apperr.New(apperr.NotFound, "not_found", "That app has no access to your account.")

// ListGrants returns the apps the user let in.
func (s *Service) ListGrants(ctx context.Context, t tenant.Tenant, userID uuid.UUID) ([]Grant, error) {
	out := []Grant{}
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		rows, err := q.ListUserGrants(ctx, userID)
		out = out[:0]
		for _, r := range rows {
			out = append(out, Grant{AppID: r.AppID, AppName: r.Name, ClientID: r.ClientID, Scopes: r.Scopes, GrantedAt: r.CreatedAt})
		}
		return err
	}, store.ReadOnly(), store.Idempotent())
	return out, err
}

// RevokeGrant takes an app's access back: the consent is forgotten (the next sign-in asks
// again) and every token the app holds for the user stops at once. Errors: not_found.
func (s *Service) RevokeGrant(ctx context.Context, t tenant.Tenant, p session.Principal, appID uuid.UUID, who audit.Who) error {
	var revoked []uuid.UUID
	defer func() { s.dropTokens(revoked) }() // this node at once; the others by notification
	return s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		revoked = nil
		app, err := q.GetApp(ctx, appID)
		if err != nil {
			return ErrGrantNotFound
		}
		n, err := q.DeleteGrant(ctx, sqlcgen.DeleteGrantParams{UserID: p.UserID, AppID: appID})
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrGrantNotFound
		}
		ids, err := q.RevokeUserAppTokens(ctx, sqlcgen.RevokeUserAppTokensParams{UserID: &p.UserID, AppID: appID})
		if err != nil {
			return err
		}
		revoked = ids
		if err := notifyRevoked(ctx, q, tokenPayloads(ids)...); err != nil {
			return err
		}
		return audit.Record(ctx, q, who, audit.Event{Action: audit.AppConsentRevoked, SubjectID: p.UserID, SubjectLabel: p.Email,
			Details: map[string]any{"client_id": app.ClientID, "app": app.Name}})
	})
}
