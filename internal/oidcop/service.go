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

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/outbound"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
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
	Limiter  *ratelimit.Limiter // client secret checks share the credential limiter
	Sessions *session.Service   // RP-initiated logout ends sessions through it
	Now      func() time.Time
	Logger   *slog.Logger
	// Listener and Cache: with both, verified access tokens and apps are cached on this
	// node and dropped on every node when they change (cache.go); without, every request
	// reads the database.
	Listener *store.Listener
	Cache    CacheConfig
}

// Service is the OpenID Provider of every tenant.
type Service struct {
	store    *store.Store
	box      *secretbox.Box
	urls     tenant.URLs
	out      *outbound.Client
	limit    *ratelimit.Limiter
	sessions *session.Service
	now      func() time.Time
	logger   *slog.Logger
	keys     *keyring
	at       *atCrypto
	cache    *cache // nil: no cache
}

// NewService returns the service. Errors: a missing dependency.
func NewService(d Deps) (*Service, error) {
	if d.Store == nil || d.Box == nil || d.Outbound == nil || d.Limiter == nil || d.Sessions == nil || d.Now == nil || d.Logger == nil || d.URLs.BaseDomain == "" {
		return nil, errors.New("oidcop: store, secret box, URLs, outbound client, limiter, sessions, clock and logger are required")
	}
	s := &Service{store: d.Store, box: d.Box, urls: d.URLs, out: d.Outbound, limit: d.Limiter, sessions: d.Sessions, now: d.Now, logger: d.Logger,
		keys: &keyring{store: d.Store, box: d.Box, now: d.Now, cache: map[uuid.UUID]*tenantKeys{}}}
	s.at = &atCrypto{s: s, pending: map[string]pendingAT{}}
	if d.Listener != nil && d.Cache.Size > 0 && d.Cache.TTL > 0 {
		c := newCache(d.Cache, d.Listener.Healthy)
		s.cache = c
		d.Listener.Handle(RevokedChannel, c.drop, c.clear)
		d.Listener.Handle(session.RevokedChannel, c.dropSessionPayload, c.clear)
		d.Listener.Handle(authz.ChangedChannel, func(string) { c.clear() }, c.clear)  // roles are in the claims
		d.Listener.Handle(tenant.ChangedChannel, func(string) { c.clear() }, c.clear) // so is the slug
	}
	return s, nil
}

// CachedTokens is how many verified access tokens and apps this node holds (0 without a
// cache).
func (s *Service) CachedTokens() (tokens, apps int) { return s.cache.sizes() }

// Issuer is the tenant's issuer: its origin (scheme, host, port when not the default).
func (s *Service) Issuer(t tenant.Tenant) string { return s.urls.Link(t.Slug, "", nil) }

type requestKey struct{}

// request is what the protocol's storage calls know of the HTTP request.
type request struct {
	t   tenant.Tenant
	who audit.Who // the caller's address, user agent and request id (the actor is filled per event)
}

// WithTenant puts the tenant whose issuer a request addresses, and who is asking, into ctx
// (the HTTP layer does it before the protocol handlers run; storage calls read it).
func WithTenant(ctx context.Context, t tenant.Tenant, who audit.Who) context.Context {
	return context.WithValue(ctx, requestKey{}, request{t: t, who: who})
}

func tenantFrom(ctx context.Context) (tenant.Tenant, error) {
	r, ok := ctx.Value(requestKey{}).(request)
	if !ok || r.t.ID == uuid.Nil {
		return tenant.Tenant{}, errors.New("oidcop: no tenant in the request context")
	}
	return r.t, nil
}

func callerFrom(ctx context.Context) audit.Who {
	r, _ := ctx.Value(requestKey{}).(request)
	return r.who
}
