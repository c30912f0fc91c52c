package platformhttp

import (
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// LandingView is the base host's page: what Gatehouse is and an example tenant host.
type LandingView struct{ Example string }

// HandleLanding is the base host's page.
func HandleLanding(rs *kit.Responder, baseDomain string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rs.Page(w, r, http.StatusOK, "landing", "Gatehouse", LandingView{Example: "acme." + baseDomain})
	}
}

// HandleTenantHome is a tenant host's first page.
func HandleTenantHome(rs *kit.Responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rs.Page(w, r, http.StatusOK, "tenant_home", "Welcome", nil)
	}
}

// HandleTenantInfo answers the public facts of the host's tenant (for hosted pages and
// client SDKs): never its policy internals or id.
func HandleTenantInfo(rs *kit.Responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		rs.JSON(w, http.StatusOK, map[string]any{"tenant": map[string]any{
			"slug": t.Slug, "name": t.Name,
			"signup_enabled":    t.Policy.Signup.Enabled,
			"verification_mode": t.Policy.Verification.Mode,
		}})
	}
}

// RequireOperator guards the platform API with GATEHOUSE_OPERATOR_TOKEN. Tokens are compared
// as SHA-256 digests in constant time, so neither content nor length leaks through timing.
func RequireOperator(rs *kit.Responder, token string) func(http.Handler) http.Handler {
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
				rs.Error(w, r, kit.ErrUnauthorized)
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

func HandlePlatformListTenants(rs *kit.Responder, tenants *tenant.Service) http.HandlerFunc {
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

func HandlePlatformGetTenant(rs *kit.Responder, tenants *tenant.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, err := tenants.Get(r.Context(), chi.URLParam(r, "slug"))
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"tenant": toPlatformTenant(t)})
	}
}

func HandlePlatformCreateTenant(rs *kit.Responder, tenants *tenant.Service, accounts *account.Service) http.HandlerFunc {
	type request struct {
		Slug       string          `json:"slug"`
		Name       string          `json:"name"`
		AdminEmail string          `json:"admin_email"`
		Policy     json.RawMessage `json:"policy"` // decoded strictly by the tenant package
	}
	return func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := kit.DecodeJSON(r, &req); err != nil {
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

// HandlePlatformDeleteTenant offboards a tenant: suspended at once, every row purged after
// ?grace= (a Go duration, default 720h; 0 purges now).
func HandlePlatformDeleteTenant(rs *kit.Responder, tenants *tenant.Service) http.HandlerFunc {
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

//go:embed templates/*.html
var templates embed.FS

// Templates are this package's pages.
func Templates() fs.FS {
	sub, _ := fs.Sub(templates, "templates")
	return sub
}
