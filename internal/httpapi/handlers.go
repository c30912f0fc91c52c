package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/web"
)

var (
	errNotFound         = apperr.New(apperr.NotFound, "not_found", "There is nothing here.")
	errMethodNotAllowed = apperr.New(apperr.MethodNotAllowed, "method_not_allowed", "This method is not allowed here.")
)

// byHost dispatches on the effective host: base domain, a tenant, or 404 tenant_not_found
// for anything else (unknown, suspended, or not under the base domain).
func byHost(rs *responder, baseDomain string, resolver *tenant.Resolver, base, tenantHost http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind, slug := tenant.ParseHost(Info(r.Context()).Host, baseDomain)
		switch kind {
		case tenant.HostBase:
			base.ServeHTTP(w, r)
		case tenant.HostTenant:
			t, err := resolver.Lookup(r.Context(), slug)
			if err != nil {
				rs.Error(w, r, err)
				return
			}
			setTenant(r.Context(), t)
			tenantHost.ServeHTTP(w, r)
		default:
			rs.Error(w, r, tenant.ErrNotFound)
		}
	})
}

func handleHealthz(rs *responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rs.JSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

func handleReadyz(rs *responder, ready Readiness) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			rs.JSON(w, http.StatusServiceUnavailable, errorBody{Error: errorObject{
				Code: "not_ready", Message: err.Error()}})
			return
		}
		rs.JSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}

func handleLanding(rs *responder, pages *web.Renderer, baseDomain string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := pages.Render(w, http.StatusOK, "landing", web.Page{Title: "Gatehouse", RequestID: Info(r.Context()).ID,
			Data: map[string]string{"Example": "acme." + baseDomain}})
		if err != nil {
			rs.Error(w, r, err)
		}
	}
}

func handleTenantHome(rs *responder, pages *web.Renderer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		renderPage(rs, pages, w, r, http.StatusOK, "tenant_home", "Welcome", nil)
	}
}

// handleTenantInfo answers the public facts of the host's tenant (for hosted pages and
// client SDKs): never its policy internals or id.
func handleTenantInfo(rs *responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		rs.JSON(w, http.StatusOK, map[string]any{"tenant": map[string]any{
			"slug": t.Slug, "name": t.Name,
			"signup_enabled":    t.Policy.Signup.Enabled,
			"verification_mode": t.Policy.Verification.Mode,
		}})
	}
}

// requireOperator guards the platform API with GATEHOUSE_OPERATOR_TOKEN. Tokens are compared
// as SHA-256 digests in constant time, so neither content nor length leaks through timing.
func requireOperator(rs *responder, token string) func(http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if token == "" {
				rs.Error(w, r, apperr.New(apperr.Forbidden, "platform_api_disabled", "The platform API is disabled: set GATEHOUSE_OPERATOR_TOKEN."))
				return
			}
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			sum := sha256.Sum256([]byte(got))
			if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse-platform"`)
				rs.Error(w, r, errUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

type platformTenant struct {
	ID         string     `json:"id"`
	Slug       string     `json:"slug"`
	Name       string     `json:"name"`
	Status     string     `json:"status"`
	Policy     any        `json:"policy"`
	PurgeAfter *time.Time `json:"purge_after,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
}

func toPlatformTenant(t tenant.Tenant) platformTenant {
	return platformTenant{ID: t.ID.String(), Slug: t.Slug, Name: t.Name, Status: t.Status,
		Policy: t.Policy, PurgeAfter: t.PurgeAfter, CreatedAt: t.CreatedAt}
}

func handlePlatformListTenants(rs *responder, tenants *tenant.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		list, err := tenants.List(r.Context())
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		out := make([]platformTenant, 0, len(list))
		for _, t := range list {
			out = append(out, toPlatformTenant(t))
		}
		rs.JSON(w, http.StatusOK, map[string]any{"tenants": out})
	}
}

func handlePlatformGetTenant(rs *responder, tenants *tenant.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, err := tenants.Get(r.Context(), chi.URLParam(r, "slug"))
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"tenant": toPlatformTenant(t)})
	}
}

func handlePlatformCreateTenant(rs *responder, tenants *tenant.Service, accounts *account.Service) http.HandlerFunc {
	type request struct {
		Slug       string          `json:"slug"`
		Name       string          `json:"name"`
		AdminEmail string          `json:"admin_email"`
		Policy     json.RawMessage `json:"policy"` // decoded strictly by the tenant package
	}
	return func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decodeJSON(r, &req); err != nil {
			rs.Error(w, r, err)
			return
		}
		in := tenant.CreateInput{Slug: req.Slug, Name: req.Name, AdminEmail: req.AdminEmail}
		if len(req.Policy) > 0 {
			p, err := tenant.ParsePolicy(req.Policy, true)
			if err != nil {
				rs.Error(w, r, err)
				return
			}
			in.Policy = &p
		}
		created, err := tenants.Create(r.Context(), in)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		out := map[string]any{"tenant": toPlatformTenant(created.Tenant)}
		if created.AdminUserID != uuid.Nil {
			out["admin_user_id"] = created.AdminUserID.String()
			link, err := accounts.IssueSetupLink(r.Context(), created.Tenant, created.AdminUserID)
			if err != nil {
				rs.Error(w, r, err)
				return
			}
			out["setup_url"] = link
		}
		rs.JSON(w, http.StatusCreated, out)
	}
}

// handlePlatformDeleteTenant offboards a tenant: suspended at once, every row purged after
// ?grace= (a Go duration, default 720h; 0 purges now).
func handlePlatformDeleteTenant(rs *responder, tenants *tenant.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		grace := 720 * time.Hour
		if g := r.URL.Query().Get("grace"); g != "" {
			d, err := time.ParseDuration(g)
			if err != nil {
				rs.Error(w, r, apperr.New(apperr.Invalid, "invalid_grace", "grace is a duration such as 720h or 0s."))
				return
			}
			grace = d
		}
		t, err := tenants.Delete(r.Context(), chi.URLParam(r, "slug"), grace)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusAccepted, map[string]any{"tenant": toPlatformTenant(t)})
	}
}
