// Package httpapi is Gatehouse's HTTP surface: the middleware chain, tenant resolution by
// host, the JSON API under /api/v1 with its stable error codes, and the HTML pages.
package httpapi

import (
	"context"
	"github.com/gatehouse-id/gatehouse/internal/sso"
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/web"
)

// Config is what the HTTP layer needs from the configuration.
type Config struct {
	BaseDomain     string
	OperatorToken  string
	TrustedProxies []netip.Prefix
	DevMailDir     string // dev only: serve /_dev/mail from this directory
}

// Readiness reports whether the server can take traffic (database reachable, schema current).
type Readiness func(ctx context.Context) error

// NewServer builds the handler with every dependency given explicitly.
func NewServer(
	logger *slog.Logger,
	cfg Config,
	tp trace.TracerProvider,
	mp metric.MeterProvider,
	pages *web.Renderer,
	ready Readiness,
	tenants *tenant.Service,
	resolver *tenant.Resolver,
	sessions *session.Service,
	accounts *account.Service,
	steps *stepup.Service,
	st *store.Store,
	az *authz.Service,
	ssoSvc *sso.Service,
) (http.Handler, chi.Routes) {
	rs := &responder{logger: logger, pages: pages}
	ad := adminDeps{store: st, tenants: tenants, sessions: sessions, authz: az, sso: ssoSvc}
	rt := routeTable(rs, cfg, pages, ready, tenants, resolver, sessions, accounts, steps, ad)
	var h http.Handler = rt.mux
	obs := newObserver(logger, tp, mp)
	for _, mw := range []func(http.Handler) http.Handler{
		limitBody(maxBodyBytes),
		crossOrigin(rs),
		securityHeaders,
		recoverer(rs),
		obs.middleware,
		requestInfo(cfg.TrustedProxies),
	} {
		h = mw(h)
	}
	return h, rt.tenantHost
}
