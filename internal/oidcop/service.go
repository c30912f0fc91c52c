// Package oidcop makes each tenant an OpenID Provider (issue 17, docs/apps.md): its apps
// (OAuth clients), signing keys, authorization requests, tokens and consent grants, and the
// storage that github.com/zitadel/oidc/v3/pkg/op runs the protocol on. The issuer is the
// tenant's own origin; every query runs inside the tenant's transaction under row-level
// security, so a client or token of one tenant does not exist on another's issuer.
package oidcop

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/outbound"
	"github.com/gatehouse-id/gatehouse/internal/secretbox"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// Deps are the service's dependencies, all required.
type Deps struct {
	Store    *store.Store
	Box      *secretbox.Box
	URLs     tenant.URLs
	Outbound *outbound.Client
	Sessions *session.Service // RP-initiated logout ends sessions through it
	Now      func() time.Time
	Logger   *slog.Logger
}

// Service is the OpenID Provider of every tenant.
type Service struct {
	store    *store.Store
	box      *secretbox.Box
	urls     tenant.URLs
	out      *outbound.Client
	sessions *session.Service
	now      func() time.Time
	logger   *slog.Logger
	keys     *keyring
}

// NewService returns the service. Errors: a missing dependency.
func NewService(d Deps) (*Service, error) {
	if d.Store == nil || d.Box == nil || d.Outbound == nil || d.Sessions == nil || d.Now == nil || d.Logger == nil || d.URLs.BaseDomain == "" {
		return nil, errors.New("oidcop: store, secret box, URLs, outbound client, sessions, clock and logger are required")
	}
	return &Service{store: d.Store, box: d.Box, urls: d.URLs, out: d.Outbound, sessions: d.Sessions, now: d.Now, logger: d.Logger,
		keys: &keyring{store: d.Store, box: d.Box, now: d.Now, cache: map[uuid.UUID]*tenantKeys{}}}, nil
}

// Issuer is the tenant's issuer: its origin (scheme, host, port when not the default).
func (s *Service) Issuer(t tenant.Tenant) string { return s.urls.Link(t.Slug, "", nil) }

type tenantKey struct{}

// WithTenant puts the tenant whose issuer a request addresses into ctx (the HTTP layer does
// it before the protocol handlers run; storage calls read it).
func WithTenant(ctx context.Context, t tenant.Tenant) context.Context {
	return context.WithValue(ctx, tenantKey{}, t)
}

func tenantFrom(ctx context.Context) (tenant.Tenant, error) {
	t, ok := ctx.Value(tenantKey{}).(tenant.Tenant)
	if !ok || t.ID == uuid.Nil {
		return tenant.Tenant{}, errors.New("oidcop: no tenant in the request context")
	}
	return t, nil
}

// RotateKeys publishes a new signing key for the tenant; it signs once every node has
// published it (gatehouse tenant rotate-keys). The previous key stays published until
// every token it signed has expired.
func (s *Service) RotateKeys(ctx context.Context, t tenant.Tenant) (kid string, activeFrom time.Time, err error) {
	return s.keys.rotate(ctx, t.ID)
}
