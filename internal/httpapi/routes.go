package httpapi

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/web"
)

// routes is the table of contents of Gatehouse's HTTP surface. Health checks answer on any
// host; the base host serves the operator API and a landing page; every other route lives
// on a tenant host and sees the resolved tenant in its context.
func routes(rs *responder, cfg Config, pages *web.Renderer, ready Readiness, tenants *tenant.Service, resolver *tenant.Resolver) http.Handler {
	return routeTable(rs, cfg, pages, ready, tenants, resolver).mux
}

// routers are the three route tables: any host, the base host, tenant hosts.
type routers struct {
	mux, base, tenantHost chi.Router
}

func routeTable(rs *responder, cfg Config, pages *web.Renderer, ready Readiness, tenants *tenant.Service, resolver *tenant.Resolver) routers {
	notFound := func(w http.ResponseWriter, r *http.Request) {
		rs.Error(w, r, errNotFound)
	}
	methodNotAllowed := func(w http.ResponseWriter, r *http.Request) {
		rs.Error(w, r, errMethodNotAllowed)
	}

	base := chi.NewRouter()
	base.NotFound(notFound)
	base.MethodNotAllowed(methodNotAllowed)
	base.Get("/", handleLanding(rs, pages, cfg.BaseDomain))
	base.Route("/api/v1/platform", func(r chi.Router) {
		r.Use(requireOperator(rs, cfg.OperatorToken))
		r.Get("/tenants", handlePlatformListTenants(rs, tenants))
		r.Post("/tenants", handlePlatformCreateTenant(rs, tenants))
		r.Get("/tenants/{slug}", handlePlatformGetTenant(rs, tenants))
	})

	tenantHost := chi.NewRouter()
	tenantHost.NotFound(notFound)
	tenantHost.MethodNotAllowed(methodNotAllowed)
	tenantHost.Get("/", handleTenantHome(rs, pages))
	tenantHost.Get("/api/v1/tenant", handleTenantInfo(rs))

	mux := chi.NewRouter()
	mux.Get("/healthz", handleHealthz(rs))
	mux.Get("/readyz", handleReadyz(rs, ready))
	mux.Handle("/assets/*", cacheable(web.Static()))
	mux.NotFound(byHost(rs, cfg.BaseDomain, resolver, base, tenantHost).ServeHTTP)
	mux.MethodNotAllowed(byHost(rs, cfg.BaseDomain, resolver, base, tenantHost).ServeHTTP)
	return routers{mux: mux, base: base, tenantHost: tenantHost}
}

func cacheable(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}
