package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

var (
	errNotFound         = apperr.New(apperr.NotFound, "not_found", "There is nothing here.")
	errMethodNotAllowed = apperr.New(apperr.MethodNotAllowed, "method_not_allowed", "This method is not allowed here.")
)

// byHost dispatches on the effective host: base domain, a tenant, or 404 tenant_not_found
// for anything else (unknown, suspended, or not under the base domain).
func byHost(rs *kit.Responder, baseDomain string, resolver *tenant.Resolver, base, tenantHost http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind, slug := tenant.ParseHost(kit.Info(r.Context()).Host, baseDomain)
		switch kind {
		case tenant.HostBase:
			base.ServeHTTP(w, r)
		case tenant.HostTenant:
			t, err := resolver.Lookup(r.Context(), slug)
			if err != nil {
				rs.Error(w, r, err)
				return
			}
			kit.SetTenant(r.Context(), t)
			tenantHost.ServeHTTP(w, r)
		default:
			rs.Error(w, r, tenant.ErrNotFound)
		}
	})
}

// handleHealthz answers while the process runs.
func handleHealthz(rs *kit.Responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rs.JSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

// handleReadyz answers when the database is reachable and the schema current.
func handleReadyz(rs *kit.Responder, ready Readiness) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			rs.JSON(w, http.StatusServiceUnavailable, map[string]any{"error": map[string]string{
				"code": "not_ready", "message": err.Error()}})
			return
		}
		rs.JSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}
