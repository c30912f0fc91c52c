// Package scim is SCIM 2.0 provisioning (RFC 7643, RFC 7644; issue 19, docs/scim.md): each
// tenant's directories (one per IdP that pushes users, e.g. Okta or Entra ID), their bearer
// tokens, and the /scim/v2 protocol over the tenant's users and the directory's groups.
// Effects go through the owners of the data: accounts are the tenant's users (a directory
// lists and adopts existing accounts), suspension ends sessions through the session service
// (and with them every OIDC token), DELETE starts the account deletion lifecycle, and group
// membership maps to roles through the SSO connection's group → role mapping.
package scim

import (
	"errors"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/telemetry"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// Deps are the service's dependencies, all required.
type Deps struct {
	Store    *store.Store
	URLs     tenant.URLs
	Sessions *session.Service
	Accounts *account.Service
	Authz    *authz.Service
	Limiter  *ratelimit.Limiter
	Now      func() time.Time
	Logger   *slog.Logger
	Meter    metric.Meter // optional: request outcomes
}

// Service runs every tenant's directories.
type Service struct {
	store    *store.Store
	urls     tenant.URLs
	sessions *session.Service
	accounts *account.Service
	authz    *authz.Service
	limit    *ratelimit.Limiter
	now      func() time.Time
	logger   *slog.Logger
	requests *telemetry.Outcomes
}

// NewService returns the service. Errors: a missing dependency.
func NewService(d Deps) (*Service, error) {
	if d.Store == nil || d.Sessions == nil || d.Accounts == nil || d.Authz == nil || d.Limiter == nil || d.Now == nil || d.Logger == nil || d.URLs.BaseDomain == "" {
		return nil, errors.New("scim: store, URLs, sessions, accounts, authz, limiter, clock and logger are required")
	}
	return &Service{store: d.Store, urls: d.URLs, sessions: d.Sessions, accounts: d.Accounts, authz: d.Authz,
		limit: d.Limiter, now: d.Now, logger: d.Logger,
		requests: telemetry.NewOutcomes(d.Meter, "gatehouse.scim.requests", "SCIM requests by resource, method and result")}, nil
}

// BasePath is where the protocol lives on every tenant host.
const BasePath = "/scim/v2"

// BaseURL is the SCIM base URL of a tenant, the value to paste into the IdP.
func (s *Service) BaseURL(t tenant.Tenant) string { return s.urls.Link(t.Slug, BasePath, nil) }
