package ssohttp

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/sso"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// connAction answers f's result for the connection named in the URL: as {key: result}
// with status, or with status alone when key is "".
func connAction(rs *kit.Responder, status int, key string, f func(r *http.Request, t tenant.Tenant, id uuid.UUID) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := uuid.Parse(chi.URLParam(r, "id"))
		if err != nil {
			rs.Error(w, r, sso.ErrNotFound)
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		v, err := f(r, t, id)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		if key == "" {
			w.WriteHeader(status)
			return
		}
		rs.JSON(w, status, map[string]any{key: v})
	}
}

func HandleAdminListSSO(rs *kit.Responder, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		list, err := svc.List(r.Context(), t)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"connections": list})
	}
}

func HandleAdminCreateSSO(rs *kit.Responder, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in sso.Input
		if err := kit.DecodeJSON(r, &in); err != nil {
			rs.Error(w, r, err)
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		c, err := svc.Create(r.Context(), t, in, kit.Who(r))
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusCreated, map[string]any{"connection": c})
	}
}

func HandleAdminGetSSO(rs *kit.Responder, svc *sso.Service) http.HandlerFunc {
	return connAction(rs, http.StatusOK, "connection", func(r *http.Request, t tenant.Tenant, id uuid.UUID) (any, error) {
		return svc.Get(r.Context(), t, id)
	})
}

func HandleAdminPatchSSO(rs *kit.Responder, svc *sso.Service) http.HandlerFunc {
	return connAction(rs, http.StatusOK, "connection", func(r *http.Request, t tenant.Tenant, id uuid.UUID) (any, error) {
		var in sso.Input
		if err := kit.DecodeJSON(r, &in); err != nil {
			return nil, err
		}
		return svc.Update(r.Context(), t, id, in, kit.Who(r))
	})
}

func HandleAdminDeleteSSO(rs *kit.Responder, svc *sso.Service) http.HandlerFunc {
	return connAction(rs, http.StatusNoContent, "", func(r *http.Request, t tenant.Tenant, id uuid.UUID) (any, error) {
		return nil, svc.Delete(r.Context(), t, id, kit.Who(r))
	})
}

func HandleAdminRotateSSOKey(rs *kit.Responder, svc *sso.Service) http.HandlerFunc {
	return connAction(rs, http.StatusOK, "connection", func(r *http.Request, t tenant.Tenant, id uuid.UUID) (any, error) {
		return svc.RotateKey(r.Context(), t, id, kit.Who(r))
	})
}

func HandleAdminDropPrevSSOKey(rs *kit.Responder, svc *sso.Service) http.HandlerFunc {
	return connAction(rs, http.StatusNoContent, "", func(r *http.Request, t tenant.Tenant, id uuid.UUID) (any, error) {
		return nil, svc.DropPreviousKey(r.Context(), t, id)
	})
}

func HandleAdminSSOAttempts(rs *kit.Responder, svc *sso.Service) http.HandlerFunc {
	return connAction(rs, http.StatusOK, "attempts", func(r *http.Request, t tenant.Tenant, id uuid.UUID) (any, error) {
		if _, err := svc.Get(r.Context(), t, id); err != nil {
			return nil, err
		}
		return svc.Attempts(r.Context(), t, id, 50)
	})
}

func HandleAdminListDomains(rs *kit.Responder, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		list, err := svc.Domains(r.Context(), t)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"domains": list})
	}
}

func HandleAdminVerifyDomain(rs *kit.Responder, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		d, err := svc.VerifyDomain(r.Context(), t, chi.URLParam(r, "domain"), kit.Who(r))
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"domain": d})
	}
}
