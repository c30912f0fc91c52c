// Package httpapi is Gatehouse's HTTP surface: the middleware chain, tenant resolution by
// host, the JSON API under /api/v1 with its stable error codes, and the HTML pages.
package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"reflect"

	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/accounthttp"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/adminhttp"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/oidchttp"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/passkeyhttp"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/platformhttp"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/scimhttp"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/sessionhttp"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/ssohttp"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/stepuphttp"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/webhookhttp"
	"github.com/gatehouse-id/gatehouse/internal/oidcop"
	"github.com/gatehouse-id/gatehouse/internal/passkey"
	"github.com/gatehouse-id/gatehouse/internal/scim"
	"github.com/gatehouse-id/gatehouse/internal/sso"
	"github.com/gatehouse-id/gatehouse/internal/webhooks"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
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

// Pages is the renderer of every page: the shared layout and each domain's templates.
func Pages() (*web.Renderer, error) {
	return web.NewRenderer(accounthttp.Templates(), sessionhttp.Templates(), stepuphttp.Templates(), ssohttp.Templates(),
		adminhttp.Templates(), platformhttp.Templates(), oidchttp.Templates(), scimhttp.Templates(), passkeyhttp.Templates(), webhookhttp.Templates())
}

// NewServer builds the handler with every dependency given explicitly; a missing one is
// refused (nothing is silently switched off).
func NewServer(
	logger *slog.Logger,
	cfg Config,
	tp trace.TracerProvider,
	mp metric.MeterProvider,
	ready Readiness,
	tenants *tenant.Service,
	resolver *tenant.Resolver,
	sessions *session.Service,
	accounts *account.Service,
	steps *stepup.Service,
	adm *admin.Service,
	az *authz.Service,
	ssoSvc *sso.Service,
	opSvc *oidcop.Service,
	scimSvc *scim.Service,
	passkeys *passkey.Service,
	hooks *webhooks.Service,
) (http.Handler, chi.Routes, error) {
	for name, dep := range map[string]any{"tracer provider": tp, "meter provider": mp, "readiness": ready, "tenants": tenants,
		"resolver": resolver, "sessions": sessions, "accounts": accounts, "step-up": steps, "admin": adm, "authz": az, "sso": ssoSvc,
		"oidc provider": opSvc, "scim": scimSvc, "passkeys": passkeys, "webhooks": hooks} {
		if isNil(dep) {
			return nil, nil, fmt.Errorf("httpapi: %s is required", name)
		}
	}
	pages, err := Pages()
	if err != nil {
		return nil, nil, err
	}
	rs, err := kit.NewResponder(logger, pages)
	if err != nil {
		return nil, nil, err
	}
	ad, err := adminhttp.NewDeps(adm, tenants, sessions, az, ssoSvc)
	if err != nil {
		return nil, nil, err
	}
	proto, err := opSvc.NewProtocol()
	if err != nil {
		return nil, nil, err
	}
	rt := routeTable(rs, cfg, ready, tenants, resolver, sessions, accounts, steps, ad, oidcDeps{svc: opSvc, proto: proto}, scimSvc, passkeys, hooks)
	var h http.Handler = rt.mux
	obs := kit.NewObserver(logger, tp, mp)
	for _, mw := range []func(http.Handler) http.Handler{
		kit.LimitBody(kit.MaxBodyBytes),
		kit.ValidQuery(rs),
		kit.CrossOrigin(rs),
		kit.SecurityHeaders,
		kit.Recoverer(rs),
		obs.Middleware,
		kit.WithRequestInfo(cfg.TrustedProxies),
	} {
		h = mw(h)
	}
	return h, rt.tenantHost, nil
}

// isNil reports a nil interface or a nil pointer, map or func inside one.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Func, reflect.Interface, reflect.Slice:
		return rv.IsNil()
	}
	return false
}
